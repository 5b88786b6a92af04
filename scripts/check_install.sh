#!/usr/bin/env bash
# Installs the built package into a scratch prefix and builds two external projects against it with
# find_package(cugmm): a tiny one that uses internal headers as before, and examples/ (the public API,
# include/cugmm/cugmm.h), which is then run: it trains on the built-in example from arrays in memory and
# decodes a point (about a minute on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${CUGMM_BUILD_DIR:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
mkdir -p "$tmp/app"
cat >"$tmp/app/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.25)
project(cugmm_consumer LANGUAGES C CXX)
find_package(cugmm REQUIRED)
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE cugmm::cugmm)
CM
cat >"$tmp/app/main.cpp" <<'CPP'
#include <cstdio>
#include "core/device.h"
#include "kernels/ctf.h"
int main() {
  cugmm::CtfParams p;
  auto c = cugmm::make_ctf_consts<double>(p);
  double v = cugmm::ctf_value(c, 0.0, 0.0);  // CTF(0) = amplitude contrast
  std::printf("consumer: CTF(0) = %.3f, cuda: %s\n", v, cugmm::cuda_available() ? "yes" : "no");
  return (v > 0.099 && v < 0.101) ? 0 : 1;
}
CPP
cmake -S "$tmp/app" -B "$tmp/app/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/app/build" >/dev/null
"$tmp/app/build/consumer"
echo "check_install: the installed package builds and links in an external project"

# The public API's example, built as a user would build it (only include/cugmm and the package).
cmake -S examples -B "$tmp/examples" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/examples" >/dev/null
"$tmp/examples/train_from_arrays" "$tmp/work" "${CUGMM_EXAMPLE_DEVICE:-auto}"
echo "check_install: examples/train_from_arrays built against the installed package and ran"
