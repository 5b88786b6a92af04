#define DOCTEST_CONFIG_IMPLEMENT
#include "support.h"

int main(int argc, char** argv) { return cugmm::test::run_tests(argc, argv); }
