// `cugmm <command> [options]`: dispatches to the commands that cli/cmd_*.cpp register. Whatever escapes
// a command becomes one line for the user: exceptions from the standard library or nlohmann::json carry
// texts ("stoll", "_M_range_check", "type_error.302") that mean nothing to a user, so they are mapped to
// what happened; the original text is shown only with --debug.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <vector>

#include "cli/command.h"
#include "core/error.h"

static void print_commands() {
  std::printf("usage: cugmm <command> [options]   (cugmm <command> --help for its options)\n\ncommands:\n");
  for (auto& kv : cugmm::cli::commands()) std::printf("  %-12s %s\n", kv.first.c_str(), kv.second.summary);
}

static int fail(const char* command, const std::string& what, const char* original = nullptr) {
  std::string m = what;
  if (original && cugmm::debug_enabled()) m += " [" + std::string(original) + "]";
  std::fprintf(stderr, "cugmm %s: error: %s\n", command, m.c_str());
  return 1;
}

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "help")) {
    print_commands();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) { std::printf("cugmm 0.1.0\n"); return 0; }
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
  } catch (const cugmm::Error& e) {
    return fail(name, e.what());
  } catch (const std::bad_alloc& e) {
    return fail(name, "out of memory: the input or options ask for more memory than this machine has", e.what());
  } catch (const nlohmann::json::exception& e) {
    return fail(name, "a JSON file does not have the expected structure", e.what());
  } catch (const std::filesystem::filesystem_error& e) {
    std::string m = e.code().message();
    if (!e.path1().empty()) m = e.path1().string() + ": " + m;
    return fail(name, m, e.what());
  } catch (const std::system_error& e) {
    return fail(name, "system error: " + e.code().message(), e.what());
  } catch (const std::out_of_range& e) {
    return fail(name, "a value in the input is out of range (internal check; run with --debug for details)", e.what());
  } catch (const std::invalid_argument& e) {
    return fail(name, "a value in the input could not be read as a number (run with --debug for details)", e.what());
  } catch (const std::length_error& e) {
    return fail(name, "a size in the input or options is too large", e.what());
  } catch (const std::exception& e) {
    return fail(name, "internal error (run with --debug for details)", e.what());
  }
}
