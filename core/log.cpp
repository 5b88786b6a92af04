#include "core/log.h"

#include <omp.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>

#include "core/error.h"

namespace cugmm {

namespace {
bool g_quiet = false;
std::mutex g_mutex;
thread_local Job* t_job = nullptr;
constexpr double kLineIntervalS = 10.0;  // without a terminal, one line this often
constexpr double kBarIntervalS = 0.1;
}  // namespace

void set_quiet(bool quiet) { g_quiet = quiet; }

JobScope::JobScope(Job* job) : previous_(t_job) { t_job = job; }
JobScope::~JobScope() { t_job = previous_; }
Job* current_job() { return t_job; }
bool cancel_requested() { return t_job && t_job->cancel.load(); }
void throw_if_cancelled() {
  if (cancel_requested()) throw Cancelled();
}

void log_info(const std::string& msg) {
  if (t_job && t_job->log) return t_job->log(false, msg);
  if (g_quiet) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "cugmm: %s\n", msg.c_str());
}

void log_warn(const std::string& msg) {
  if (t_job && t_job->log) return t_job->log(true, msg);
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "cugmm: warning: %s\n", msg.c_str());
}

Progress::Progress(std::string label, size_t total, bool cancellable)
    : job_(t_job), cancellable_(cancellable), label_(std::move(label)), total_(total), tty_(isatty(fileno(stderr)) != 0),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

Progress::~Progress() { finish(); }

void Progress::add(size_t n, const std::string& extra) {
  done_ += n;
  if (!extra.empty()) extra_ = extra;
  if (job_ && job_->progress) {
    if (!job_->progress(label_, done_, total_, extra_)) job_->cancel = true;
    if (cancellable_ && job_->cancel.load() && !omp_in_parallel()) throw Cancelled();
    return;
  }
  if (cancellable_ && job_ && job_->cancel.load() && !omp_in_parallel()) throw Cancelled();
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_).count();
  if (since >= (tty_ ? kBarIntervalS : kLineIntervalS)) {
    last_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final) {
  if (job_ && job_->progress) {
    if (final) job_->progress(label_, done_, total_, extra_);  // the last report; too late to stop
    return;
  }
  if (g_quiet) return;
  double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double frac = total_ ? double(done_) / double(total_) : 1.0;
  double rate = t > 0 ? done_ / t : 0;
  double eta = rate > 0 && total_ > done_ ? (total_ - done_) / rate : 0;
  std::lock_guard<std::mutex> lock(g_mutex);
  if (tty_) {
    const int width = 30;
    int filled = static_cast<int>(frac * width);
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r%s [%s] %zu/%zu %.0f/s eta %.0fs %s\033[K", label_.c_str(), bar.c_str(), done_,
                 total_, rate, eta, extra_.c_str());
    if (final) std::fputc('\n', stderr);
  } else {
    std::fprintf(stderr, "cugmm: %s %zu/%zu (%.0f%%) %.1fs %s\n", label_.c_str(), done_, total_, 100 * frac, t,
                 extra_.c_str());
  }
  std::fflush(stderr);
}

}  // namespace cugmm
