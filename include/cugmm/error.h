// What every cugmm call throws: one exception hierarchy shared by the engine, the program and library
// callers, so a caller catches exactly the messages `cugmm` prints ("cugmm train: error: <what()>").
// Messages name the file, the record and what is wrong.
#pragma once
#include <stdexcept>
#include <string>

namespace cugmm {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An input file is wrong: names the file, the record (may be empty) and what is wrong.
struct InputError : Error {
  InputError(const std::string& file, const std::string& record, const std::string& what);
};

// The caller stopped the work (Engine::cancel, or a progress callback that returned false). Training
// stops at a batch boundary after writing a resumable checkpoint (TrainSettings::resume continues it).
struct Cancelled : Error {
  Cancelled();
};

}  // namespace cugmm
