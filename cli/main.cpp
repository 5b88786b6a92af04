// `cugmm <command> [options]`: dispatches to the commands that cli/cmd_*.cpp register. Whatever escapes
// a command becomes one line for the user (core/error.h user_message, which the library API uses too: texts
// such as "stoll" or "type_error.302" mapped to what happened, the original shown only with --debug).
//
// Under mpirun (core/dist/launch.h) every rank runs the command with the job's Comm; a rank that fails prints
// which rank it is and why, then ends the whole job (MPI_Abort), so no rank waits for it forever.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/error.h"
#include "core/log.h"
#include "core/dist/launch.h"
#include "cugmm/version.h"

static void print_commands() {
  std::printf("usage: cugmm <command> [options]   (cugmm <command> --help for its options)\n\ncommands:\n");
  for (auto& kv : cugmm::cli::commands()) std::printf("  %-12s %s\n", kv.first.c_str(), kv.second.summary);
}

int main(int argc, char** argv) {
  std::unique_ptr<cugmm::dist::Launch> launch;
  try {
    launch = std::make_unique<cugmm::dist::Launch>(argc, argv);
  } catch (const cugmm::Error& e) {
    std::fprintf(stderr, "cugmm: error: %s\n", e.what());
    return 1;
  }
  cugmm::Comm& comm = launch->comm();
  if (comm.rank() != 0) cugmm::set_quiet(true);  // one progress display; warnings still show
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
  const std::string who = comm.size() > 1 ? " (rank " + std::to_string(comm.rank()) + " of " +
                                                std::to_string(comm.size()) + ")" : std::string();
  auto fail = [&](const std::string& what) {
    std::fprintf(stderr, "cugmm %s%s: error: %s\n", name, who.c_str(), what.c_str());
    return 1;
  };
  int rc;
  try {
    cugmm::cli::Command cmd(name, it->second.summary, std::vector<std::string>(argv + 2, argv + argc));
    cmd.set_comm(comm);
    rc = it->second.fn(cmd);
  } catch (...) {
    rc = fail(cugmm::user_message(std::current_exception()));
  }
  // A failure on a rank of several (130, a requested stop, is every rank's together): end the job now.
  if (rc != 0 && rc != 130 && comm.size() > 1) comm.abort(rc);
  return rc;
}
