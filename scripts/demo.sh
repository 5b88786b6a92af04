#!/usr/bin/env bash
# The main job on the built-in example: installs, builds, runs `cugmm demo` into ./demo_out (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
out=${1:-demo_out}
"${CUGMM_BUILD_DIR:-build}/cugmm" demo --out "$out"
