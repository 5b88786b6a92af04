// `cugmm <command> [options]`: dispatches to the commands that cli/cmd_*.cpp register. Whatever escapes
// a command becomes one line for the user (core/error.h user_message, which the library API uses too).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/error.h"
#include "cugmm/version.h"

static void print_commands() {
  std::printf("usage: cugmm <command> [options]   (cugmm <command> --help for its options)\n\ncommands:\n");
  for (auto& kv : cugmm::cli::commands()) std::printf("  %-12s %s\n", kv.first.c_str(), kv.second.summary);
}

static int fail(const char* command, const std::string& what) {
  std::fprintf(stderr, "cugmm %s: error: %s\n", command, what.c_str());
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "help")) {
    print_commands();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) { std::printf("cugmm %s\n", cugmm::version()); return 0; }
  auto it = cugmm::cli::commands().find(argv[1]);
  if (it == cugmm::cli::commands().end()) {
    std::fprintf(stderr, "cugmm: unknown command '%s'\n\n", cugmm::quote_value(argv[1], 40).c_str());
    print_commands();
    return 2;
  }
  const char* name = argv[1];
  try {
    cugmm::cli::Command cmd(name, it->second.summary, std::vector<std::string>(argv + 2, argv + argc));
    return it->second.fn(cmd);
  } catch (...) {
    return fail(name, cugmm::user_message(std::current_exception()));
  }
}
