// Messages and progress for long work: a bar on a terminal, periodic lines otherwise (logs, CI); or, for
// work a library caller started (engine/api), the caller's own callbacks and its cancel flag.
#pragma once
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

namespace cugmm {

void log_info(const std::string& msg);
void log_warn(const std::string& msg);
void set_quiet(bool quiet);  // silences info and progress on stderr, never warnings; jobs are not affected

// Where the messages and progress of one caller's work go and whether it should stop. Not a global: a
// JobScope makes it the job of the calling thread for a scope, and a Progress takes the job of the thread
// that makes it, so the OpenMP workers it is updated from report to that job too. Two engines on two
// threads therefore never see each other's callbacks or cancel flag. Without a job (the program, tests):
// stderr, and nothing stops the work but the program's own Ctrl-C handling (which sets a job's flag).
struct Job {
  std::function<void(bool warning, const std::string& msg)> log;  // null: stderr (as without a job)
  // Called as work advances (from the thread that updates the Progress, one call at a time per Progress);
  // returning false asks the work to stop (as cancel does). Null: progress goes to stderr.
  std::function<bool(const std::string& stage, size_t done, size_t total, const std::string& detail)> progress;
  std::atomic<bool> cancel{false};  // set from any thread (or a signal handler: lock-free)
};

class JobScope {
 public:
  explicit JobScope(Job* job);
  ~JobScope();
  JobScope(const JobScope&) = delete;
  JobScope& operator=(const JobScope&) = delete;

 private:
  Job* previous_;
};

Job* current_job();        // of the calling thread; null outside any JobScope
bool cancel_requested();   // the current job's flag (false without a job)
void throw_if_cancelled(); // throws cugmm::Cancelled when cancel_requested()

class Progress {
 public:
  // `cancellable`: add() throws cugmm::Cancelled once the job is cancelled (outside OpenMP parallel
  // regions; loops that run add() inside one check cancel_requested() themselves). Work that must stop at
  // a point of its own choosing (training: at a batch boundary, after a checkpoint) passes false.
  Progress(std::string label, size_t total, bool cancellable = true);
  ~Progress();
  void add(size_t n = 1, const std::string& extra = "");  // `extra`: e.g. the current loss
  void finish();

 private:
  void draw(bool final);
  Job* job_;
  bool cancellable_;
  std::string label_;
  size_t total_, done_ = 0;
  std::string extra_;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace cugmm
