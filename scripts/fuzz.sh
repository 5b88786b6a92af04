#!/usr/bin/env bash
# Fuzzes every reader: builds tests/fuzz/ with clang, libFuzzer, ASan and UBSan into ./build-fuzz (or
# $CUGMM_FUZZ_BUILD_DIR), then runs each target for SECONDS (default 600, the campaign; CI passes 30),
# $CUGMM_FUZZ_JOBS at a time (default 2), from its seeds (tests/fuzz/seeds/TARGET) plus the corpus earlier
# runs grew (build-fuzz/corpus/TARGET). Prints per target the seconds, executions and findings; a crash
# input lands in build-fuzz/crashes/ and the script exits 1. Optional arguments after SECONDS: target names.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}; shift || true
bash scripts/setup.sh
build=${CUGMM_FUZZ_BUILD_DIR:-build-fuzz}
jobs=${CUGMM_FUZZ_JOBS:-2}
cxx=$(command -v clang++-14 || command -v clang++)
cc=$(command -v clang-14 || command -v clang)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" \
      -DCUGMM_FUZZ=ON -DCUGMM_CUDA=OFF -DCUGMM_BUILD_TESTS=OFF -DCUGMM_BUILD_BENCH=OFF \
      >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(mrc tiff star npy cs model pseudo_atoms checkpoint features particle_cache)
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}"
mkdir -p "$build/crashes" "$build/logs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# One thread per target: OpenMP's pool under ASan costs more than it gives on inputs this small.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# The targets write each input as a file under $TMPDIR: a directory of this run's own, removed at the end
# (a crashing target cannot remove its own).
TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/cugmm-fuzz-run-XXXXXX")
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
run_one() {
  local t=$1 corpus="$build/corpus/$1"
  mkdir -p "$corpus"
  # -rss_limit_mb: a reader must not allocate what the file cannot hold; -timeout: nor loop.
  nice -n 10 "$build/tests/fuzz/fuzz_$t" "$corpus" "tests/fuzz/seeds/$t" -max_total_time="$secs" \
    -rss_limit_mb=2048 -timeout=20 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$build/crashes/$t-" >"$build/logs/$t.log" 2>&1 || true
}
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait
status=0
printf '%-16s %8s %12s %8s %s\n' target seconds executions corpus findings
for t in "${targets[@]}"; do
  log="$build/logs/$t.log"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  took=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | awk '{print $5}' || true)
  size=$(ls "$build/corpus/$t" | wc -l)
  found=$(ls "$build/crashes" | grep -c "^$t-" || true)
  [ -z "$took" ] && took=$secs
  printf '%-16s %8s %12s %8s %s\n' "$t" "$took" "$execs" "$size" "$found"
  if [ "$found" != 0 ] || grep -qE 'ERROR: (AddressSanitizer|libFuzzer)|runtime error:' "$log"; then
    status=1
    # What was found, in the output itself: CI keeps its output, not build-fuzz/.
    grep -m1 -A8 -E 'ERROR: (AddressSanitizer|libFuzzer)|runtime error:' "$log" | sed "s/^/  $t: /" >&2 || true
  fi
done
[ $status -eq 0 ] || echo "fuzz: findings under $build/crashes (logs in $build/logs)" >&2
exit $status
