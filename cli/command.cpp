#include "cli/command.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/threads.h"
#include "nn/blas.h"

namespace cugmm::cli {

namespace {

std::string shown(const std::string& s) { return "'" + quote_value(s, 40) + "'"; }

// Decimal only, so that "064" is not octal and "0x40" not hex (CLI11's own conversion takes base 0).
bool parse_decimal(const std::string& s, long long& v) {
  if (s.empty() || s.find_first_not_of("+-0123456789") != std::string::npos) return false;
  errno = 0;
  char* end = nullptr;
  v = std::strtoll(s.c_str(), &end, 10);
  return errno == 0 && end == s.c_str() + s.size();
}

std::string format_number(double v) {
  char s[32];
  std::snprintf(s, sizeof s, "%.10g", v);  // 1000000, not 1e+06
  return s;
}

// Edit distance, for "did you mean".
size_t distance(const std::string& a, const std::string& b) {
  std::vector<size_t> d(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) d[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t prev = d[0];
    d[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cur = d[j];
      d[j] = std::min({d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] != b[j - 1])});
      prev = cur;
    }
  }
  return d[b.size()];
}

std::string unknown_option(const CLI::App& app, const std::string& word) {
  std::string key = word.substr(0, word.find('='));
  std::string bare = key.substr(key.find_first_not_of('-'));
  std::string best;
  size_t best_d = 3;  // further than this is not a typo
  for (const CLI::Option* o : app.get_options())
    for (const std::string& n : o->get_lnames()) {
      size_t d = distance(bare, n);
      if (n.rfind(bare, 0) == 0 && bare.size() >= 3) d = std::min<size_t>(d, 1);  // a prefix
      if (d < best_d) { best_d = d; best = n; }
    }
  std::string m = "unknown option " + quote_value(key, 40);
  if (!best.empty()) m += "; did you mean --" + best + "?";
  return m + " (see --help)";
}

}  // namespace

std::vector<float> parse_numbers(const std::string& text, const std::string& where) {
  std::vector<float> v;
  std::istringstream ss(text);
  std::string w;
  while (ss >> w) {
    if (w[0] == '#') break;
    char* end;
    const double x = std::strtod(w.c_str(), &end);
    if (*end != 0 || !std::isfinite(x)) throw Error(where + ": '" + quote_value(w) + "' is not a finite number");
    v.push_back(float(x));
  }
  return v;
}

CLI::Validator integer_in(long long lo, long long hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        long long v = 0;
        if (!parse_decimal(s, v)) {
          long long dummy;
          if (s.find_first_not_of("+-0123456789") == std::string::npos && !s.empty() && !parse_decimal(s, dummy))
            return shown(s) + " is out of range (" + std::to_string(lo) + " to " + std::to_string(hi) + ")";
          return "expects a whole number, not " + shown(s);
        }
        if (v < lo || v > hi)
          return std::to_string(v) + " is out of range (" + std::to_string(lo) + " to " + std::to_string(hi) + ")";
        s = std::to_string(v);  // CLI11 converts with base 0 next: "064" must not become octal 52
        return "";
      },
      std::to_string(lo) + ".." + std::to_string(hi));
}

CLI::Validator number_in(double lo, double hi, bool lo_open) {
  const std::string range = lo_open ? "above " + format_number(lo) + ", up to " + format_number(hi)
                                    : format_number(lo) + " to " + format_number(hi);
  const std::string brief = (lo_open ? ">" : "") + format_number(lo) + ".." + format_number(hi);
  return CLI::Validator(
      [lo, hi, lo_open, range](std::string& s) -> std::string {
        char* end = nullptr;
        double v = std::strtod(s.c_str(), &end);
        if (s.empty() || end != s.c_str() + s.size()) return "expects a number, not " + shown(s);
        if (!std::isfinite(v)) return shown(s) + " is not a finite number";
        if (v < lo || v > hi || (lo_open && v == lo)) return shown(s) + " is out of range (" + range + ")";
        return "";
      },
      brief);
}

CLI::Validator plain_name() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        if (s.empty() || s == "." || s == ".." || s.find('/') != std::string::npos || s.find('\0') != std::string::npos)
          return shown(s) + " is not a plain file name (no directories, not . or ..)";
        return "";
      },
      "NAME");
}

int max_threads() {
  int cores = int(std::thread::hardware_concurrency());
  return kMaxThreadsPerCore * std::max(cores, 1);
}

Command::Command(const std::string& name, const std::string& summary, std::vector<std::string> args)
    : app(summary, "cugmm " + name), args_(std::move(args)) {
  app.allow_extras(true);  // parse() names them, with a suggestion
  app.option_defaults()->always_capture_default();
  app.get_formatter()->column_width(34);
  app.add_flag("--debug", debug_, "errors with their source location; notes that are otherwise silent");
}

CLI::Option* Command::text(const std::string& flags, std::string& v, const std::string& help) {
  return app.add_option(flags, v, help);
}

CLI::Option* Command::integer(const std::string& flags, int& v, const std::string& help, long long lo, long long hi) {
  return app.add_option(flags, v, help)
      ->transform(integer_in(std::max<long long>(lo, INT32_MIN), std::min<long long>(hi, INT32_MAX)));
}

CLI::Option* Command::integer(const std::string& flags, long long& v, const std::string& help, long long lo,
                              long long hi) {
  return app.add_option(flags, v, help)->transform(integer_in(lo, hi));
}

CLI::Option* Command::number(const std::string& flags, double& v, const std::string& help, double lo, double hi,
                             bool lo_open) {
  return app.add_option(flags, v, help)->check(number_in(lo, hi, lo_open));
}

CLI::Option* Command::flag(const std::string& flags, bool& v, const std::string& help) {
  return app.add_flag(flags, v, help);
}

void Command::device_options() {
  has_device_ = true;
  app.add_option("--device", device_choice_, "where to compute (auto: a GPU when there is one)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  thread_options();
}

void Command::thread_options() {
  integer("--threads", threads_, "CPU threads (0 = all cores)", 0, max_threads());
}

Device Command::device() const { return pick_device(device_choice_); }

bool Command::parse() {
  // Unknown options first: a misspelt --particle should be named as such, not reported as a missing
  // --particles.
  bool help = false;
  for (const std::string& w : args_) {
    if (w == "--") break;
    if (w == "-h" || w == "--help") help = true;
    if (w.size() > 2 && w.compare(0, 2, "--") == 0 && !app.get_option_no_throw(w.substr(0, w.find('='))))
      if (!help) throw Error(unknown_option(app, w));
  }
  std::vector<std::string> reversed(args_.rbegin(), args_.rend());  // CLI11 takes the words last first
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    std::printf("%s", app.help().c_str());
    return true;
  } catch (const CLI::ParseError& e) {
    throw Error(e.what());
  }
  set_debug(debug_);
  for (const std::string& w : app.remaining())
    if (w.size() > 1 && w[0] == '-') throw Error(unknown_option(app, w));
  if (!app.remaining().empty()) throw Error("unexpected argument " + shown(app.remaining().front()) + " (see --help)");
  set_threads(threads_);
  nn::set_blas_threads(threads_);  // BLAS and OpenMP must not oversubscribe
  return false;
}

std::map<std::string, CommandInfo>& command_registry() {
  static std::map<std::string, CommandInfo> r;
  return r;
}

const std::map<std::string, CommandInfo>& commands() { return command_registry(); }

RegisterCommand::RegisterCommand(const char* name, const char* summary, CommandFn fn) {
  command_registry()[name] = {summary, fn};
}

int run_command(const std::vector<std::string>& argv) {
  auto it = commands().find(argv.at(0));
  if (it == commands().end()) throw Error("no command " + shown(argv[0]));
  Command cmd(argv[0], it->second.summary, std::vector<std::string>(argv.begin() + 1, argv.end()));
  return it->second.fn(cmd);
}

}  // namespace cugmm::cli
