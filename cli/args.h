// A small command-line parser: `--key value`, `--key=value`, `--flag`, and positionals. Every option a
// command reads is recorded, so finish() can reject unknown or misspelled ones.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/device.h"

namespace cugmm::cli {

class Args {
 public:
  Args(int argc, char** argv, int first);

  bool flag(const std::string& key, const std::string& help = "");
  std::string str(const std::string& key, const std::string& def, const std::string& help = "");
  std::string required(const std::string& key, const std::string& help = "");
  double num(const std::string& key, double def, const std::string& help = "");
  long integer(const std::string& key, long def, const std::string& help = "");
  bool has(const std::string& key) const { return values_.count(key) || flags_.count(key); }

  const std::vector<std::string>& positionals() const { return pos_; }
  std::string positional(size_t i, const std::string& name);  // throws naming the missing argument

  // --device auto|cpu|cuda and --threads N, shared by every command that computes on either backend.
  Device device();
  // --threads N alone, for commands whose work runs only on the CPU (FFTW / OpenMP).
  void threads();

  bool help_requested() const { return help_; }
  std::string usage() const { return usage_; }
  // Throws on options that no accessor asked for, and on surplus positionals.
  void finish(size_t max_positionals);
  // Call after reading every option: with --help prints the synopsis and options and returns true (the
  // command then returns 0); otherwise checks the command line like finish() and returns false.
  bool done(const std::string& synopsis, size_t max_positionals);

 private:
  void note(const std::string& key, const std::string& def, const std::string& help);
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_, used_;
  std::vector<std::string> pos_;
  std::string usage_;
  bool help_ = false;
};

using CommandFn = int (*)(Args&);

// Each cli/cmd_*.cpp registers itself with a static RegisterCommand; cli/main.cpp dispatches.
struct RegisterCommand {
  RegisterCommand(const char* name, const char* summary, CommandFn fn);
};

// Runs a registered command as if typed: argv[0] is the command name. Used by `cugmm demo`, which is a
// sequence of the commands a user would type.
int run_command(const std::vector<std::string>& argv);

}  // namespace cugmm::cli
