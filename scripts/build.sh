#!/usr/bin/env bash
# Installs what the build needs, then configures and builds into ./build (or $CUGMM_BUILD_DIR).
# CUGMM_CUDA_ARCHS picks the GPU architectures (default: one, sm_75 compiled + PTX, to keep builds short
# on 2 cores; release builds leave it empty to use the full list in CMakeLists.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build=${CUGMM_BUILD_DIR:-build}
archs=${CUGMM_CUDA_ARCHS-75}
args=(-DCMAKE_BUILD_TYPE=Release)
[ -n "$archs" ] && args+=("-DCUGMM_CUDA_ARCHS=$archs")
cmake -S . -B "$build" "${args[@]}" >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
grep -E "cugmm: CUDA backend" "$build.configure.log" || true
cmake --build "$build" -j"$(nproc)"
