// `cugmm <command> [options]`: dispatches to the commands that cli/cmd_*.cpp register.
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cli/args.h"
#include "core/error.h"

namespace cugmm::cli {

namespace {
struct Entry { const char* summary; CommandFn fn; };
std::map<std::string, Entry>& registry() {
  static std::map<std::string, Entry> r;
  return r;
}
}  // namespace

RegisterCommand::RegisterCommand(const char* name, const char* summary, CommandFn fn) {
  registry()[name] = {summary, fn};
}

int run_command(const std::vector<std::string>& argv) {
  auto it = registry().find(argv.at(0));
  if (it == registry().end()) throw Error("no command '" + argv[0] + "'");
  std::vector<std::string> words(argv);
  std::vector<char*> ptrs{const_cast<char*>("cugmm")};
  for (auto& w : words) ptrs.push_back(w.data());
  Args args(int(ptrs.size()), ptrs.data(), 2);
  return it->second.fn(args);
}

}  // namespace cugmm::cli

static void print_commands() {
  std::printf("usage: cugmm <command> [options]   (cugmm <command> --help for its options)\n\ncommands:\n");
  for (auto& kv : cugmm::cli::registry()) std::printf("  %-12s %s\n", kv.first.c_str(), kv.second.summary);
}

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "help")) {
    print_commands();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) { std::printf("cugmm 0.1.0\n"); return 0; }
  auto it = cugmm::cli::registry().find(argv[1]);
  if (it == cugmm::cli::registry().end()) {
    std::fprintf(stderr, "cugmm: unknown command '%s'\n\n", argv[1]);
    print_commands();
    return 2;
  }
  try {
    cugmm::cli::Args args(argc, argv, 2);
    return it->second.fn(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cugmm %s: error: %s\n", argv[1], e.what());
    return 1;
  }
}
