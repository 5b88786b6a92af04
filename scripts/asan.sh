#!/usr/bin/env bash
# The CPU-only tree under AddressSanitizer + UndefinedBehaviorSanitizer (Debug, -DCUGMM_CUDA=OFF) in
# build-asan/, then the whole ctest suite with leak detection on. Third-party leaks are suppressed by
# tests/lsan.supp (a reason per entry); cugmm's own are fixed. Extra arguments go to ctest (-R name, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
san="-fsanitize=address,undefined -fno-omit-frame-pointer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCUGMM_CUDA=OFF -DCMAKE_CXX_FLAGS="$san" -DCMAKE_C_FLAGS="$san" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
  > build-asan.configure.log
cmake --build build-asan -j"$(nproc)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd build-asan && ctest --output-on-failure --timeout 1800 "$@"
