#include "cugmm/version.h"

namespace cugmm {

const char* version() { return CUGMM_VERSION_STRING; }

}  // namespace cugmm
