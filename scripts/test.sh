#!/usr/bin/env bash
# The test command: installs, builds (CPU and, where nvcc exists, CUDA backends) and runs every test.
# GPU tests report themselves skipped where no GPU exists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
build=${CUGMM_BUILD_DIR:-build}
if command -v nvcc >/dev/null 2>&1 && ! grep -q "cugmm: CUDA backend ON" "$build.configure.log"; then
  echo "nvcc is present but the CUDA backend was not built" >&2; exit 1
fi
cd "$build" && ctest --output-on-failure -j"$(nproc)" --timeout 900
