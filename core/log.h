// Messages and progress for long work: a bar on a terminal, periodic lines otherwise (logs, CI).
#pragma once
#include <chrono>
#include <cstddef>
#include <string>

namespace cugmm {

void log_info(const std::string& msg);
void log_warn(const std::string& msg);
void set_quiet(bool quiet);  // silences info and progress, never warnings

class Progress {
 public:
  Progress(std::string label, size_t total);
  ~Progress();
  void add(size_t n = 1, const std::string& extra = "");  // `extra`: e.g. the current loss
  void finish();

 private:
  void draw(bool final);
  std::string label_;
  size_t total_, done_ = 0;
  std::string extra_;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace cugmm
