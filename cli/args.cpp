#include "cli/args.h"

#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "core/threads.h"
#include "nn/blas.h"

namespace cugmm::cli {

Args::Args(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") { help_ = true; continue; }
    if (a.rfind("--", 0) == 0 && a.size() > 2) {
      std::string key = a.substr(2);
      auto eq = key.find('=');
      if (eq != std::string::npos) {
        values_[key.substr(0, eq)] = key.substr(eq + 1);
      } else if (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
        values_[key] = argv[++i];  // a value; flags given a value are caught by flag()
      } else {
        flags_.insert(key);
      }
    } else {
      pos_.push_back(a);
    }
  }
}

void Args::note(const std::string& key, const std::string& def, const std::string& help) {
  used_.insert(key);
  if (!help.empty()) usage_ += "  --" + key + (def.empty() ? "" : " (" + def + ")") + "  " + help + "\n";
}

bool Args::flag(const std::string& key, const std::string& help) {
  note(key, "", help);
  if (values_.count(key)) {
    // `--flag positional` is parsed as a value; put the word back among the positionals.
    const std::string& v = values_[key];
    if (v == "true" || v == "1" || v == "yes") return true;
    if (v == "false" || v == "0" || v == "no") return false;
    pos_.push_back(v);
    values_.erase(key);
    return true;
  }
  return flags_.count(key) > 0;
}

std::string Args::str(const std::string& key, const std::string& def, const std::string& help) {
  note(key, def, help);
  if (flags_.count(key)) throw Error("--" + key + " needs a value");
  auto it = values_.find(key);
  return it == values_.end() ? def : it->second;
}

std::string Args::required(const std::string& key, const std::string& help) {
  note(key, "required", help);
  auto it = values_.find(key);
  if (it == values_.end() && !help_) throw Error("missing required option --" + key);
  return it == values_.end() ? "" : it->second;
}

double Args::num(const std::string& key, double def, const std::string& help) {
  std::string s = str(key, std::to_string(def), help);
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0') throw Error("--" + key + " expects a number, not '" + s + "'");
  return v;
}

long Args::integer(const std::string& key, long def, const std::string& help) {
  std::string s = str(key, std::to_string(def), help);
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (end == s.c_str() || *end != '\0') throw Error("--" + key + " expects an integer, not '" + s + "'");
  return v;
}

std::string Args::positional(size_t i, const std::string& name) {
  if (i >= pos_.size()) {
    if (help_) return "";
    throw Error("missing argument " + name);
  }
  return pos_[i];
}

void Args::threads() {
  int n = static_cast<int>(integer("threads", 0, "CPU threads (0 = all cores)"));
  set_threads(n);
  nn::set_blas_threads(n);  // BLAS and OpenMP must not oversubscribe
}

Device Args::device() {
  std::string d = str("device", "auto", "auto|cpu|cuda: where to compute");
  threads();
  if (help_) return Device::cpu;
  return pick_device(d);
}

void Args::finish(size_t max_positionals) {
  for (auto& kv : values_)
    if (!used_.count(kv.first)) throw Error("unknown option --" + kv.first);
  for (auto& f : flags_)
    if (!used_.count(f)) throw Error("unknown option --" + f);
  if (pos_.size() > max_positionals) throw Error("unexpected argument '" + pos_[max_positionals] + "'");
}

bool Args::done(const std::string& synopsis, size_t max_positionals) {
  if (help_) {
    std::printf("usage: %s\n\noptions:\n%s", synopsis.c_str(), usage_.c_str());
    return true;
  }
  finish(max_positionals);
  return false;
}

}  // namespace cugmm::cli
