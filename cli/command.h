// The command-line layer over CLI11: each command declares typed options bound to variables, with
// validators that read the text as typed (decimal integers that never wrap, finite numbers in a
// documented range), then parse() checks the whole line: unknown options are named with the closest
// known one, --help prints every option with its default as a user would type it.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/comm.h"
#include "core/device.h"

namespace cugmm::cli {

// An integer in [lo, hi], written in decimal ("064" is 64, "0x40" and "1e3" are refused); values beyond
// 64 bits are refused, not saturated or wrapped.
CLI::Validator integer_in(long long lo, long long hi);
// A finite number in [lo, hi] (nan and inf refused); lo_open excludes lo itself ("> 0").
CLI::Validator number_in(double lo, double hi, bool lo_open = false);
// A plain file name: no directory part, not "." or "..".
CLI::Validator plain_name();

// Most threads --threads accepts: a few per core is already oversubscription, and libgomp fails beyond
// what the system can create (100,000 threads crashed it).
constexpr int kMaxThreadsPerCore = 4;
int max_threads();

// Whitespace-separated finite numbers ('#' ends the list: a comment); Error naming `where` and the word
// that is not one. Latent points on the command line and in files.
std::vector<float> parse_numbers(const std::string& text, const std::string& where);

class Command {
 public:
  // `args` are the words after the command name.
  Command(const std::string& name, const std::string& summary, std::vector<std::string> args);

  CLI::App app;

  CLI::Option* text(const std::string& flags, std::string& v, const std::string& help);
  CLI::Option* integer(const std::string& flags, int& v, const std::string& help, long long lo, long long hi);
  CLI::Option* integer(const std::string& flags, long long& v, const std::string& help, long long lo, long long hi);
  CLI::Option* number(const std::string& flags, double& v, const std::string& help, double lo, double hi,
                      bool lo_open = false);
  CLI::Option* flag(const std::string& flags, bool& v, const std::string& help);

  // --device auto|cpu|cuda and --threads N, for commands that compute on either backend; device() is the
  // choice, resolved after parse() (only these commands ever query CUDA).
  void device_options();
  // --threads N alone, for commands whose work runs only on the CPU (FFTW / OpenMP).
  void thread_options();
  Device device() const;

  // The job's processes (core/dist/launch.h, given by main): one unless started by mpirun. Commands that share
  // their work across ranks use it; the others run on every rank alike.
  Comm& comm() const { return *comm_; }
  void set_comm(Comm& comm) { comm_ = &comm; }

  // Parses the words. Returns true when --help was printed (the command then returns 0); throws
  // cugmm::Error for anything wrong on the line. Applies --threads and --debug.
  bool parse();

 private:
  std::vector<std::string> args_;
  SingleComm single_;
  Comm* comm_ = &single_;
  std::string device_choice_ = "auto";
  int threads_ = 0;
  bool debug_ = false;
  bool has_device_ = false;
};

using CommandFn = int (*)(Command&);

// Each cli/cmd_*.cpp registers itself with a static RegisterCommand; cli/main.cpp dispatches.
struct RegisterCommand {
  RegisterCommand(const char* name, const char* summary, CommandFn fn);
};

struct CommandInfo {
  const char* summary;
  CommandFn fn;
};
const std::map<std::string, CommandInfo>& commands();

// Runs a registered command as if typed: argv[0] is the command name. Used by `cugmm demo`, which is a
// sequence of the commands a user would type.
int run_command(const std::vector<std::string>& argv);

}  // namespace cugmm::cli
