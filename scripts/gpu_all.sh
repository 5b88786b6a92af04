#!/usr/bin/env bash
# One command for a GPU machine: build (CUDA for this card), run every test (the GPU ones included) and
# every benchmark, and write a summary (summary.txt, summary.json, logs) into the directory given.
#   bash scripts/gpu_all.sh OUTDIR
# The GPU machines lent to this project have CUDA but none of Debian's -dev packages and no network:
# run `bash scripts/gpu_pack_debs.sh` on a networked machine first; it downloads the packages into
# .gpu-debs/, which this script unpacks into a private prefix (carry .gpu-debs along with the tree).
set -uo pipefail
out=${1:?usage: gpu_all.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
root=$(pwd)

if ! dpkg-query -W -f='${Status}' libfftw3-dev 2>/dev/null | grep -q "install ok installed"; then
  if [ -d .gpu-debs ]; then
    prefix=$root/.gpu-root
    mkdir -p "$prefix"
    for f in .gpu-debs/*.deb; do dpkg -x "$f" "$prefix"; done
    export CMAKE_PREFIX_PATH=$prefix/usr:${CMAKE_PREFIX_PATH:-}
    export CPATH=$prefix/usr/include:${CPATH:-}
    export LIBRARY_PATH=$prefix/usr/lib/x86_64-linux-gnu:${LIBRARY_PATH:-}
    export LD_LIBRARY_PATH=$prefix/usr/lib/x86_64-linux-gnu:$prefix/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}
    export PATH=$prefix/usr/bin:$PATH
  else
    bash scripts/setup.sh
  fi
fi
# Tests that use RELION's programs or Debian's python3-mrcfile as oracles skip themselves (saying so)
# where those are absent, here only; on CI they are installed and required.
export CUGMM_ALLOW_MISSING_ORACLES=1

build=build-gpu
archs=${CUGMM_CUDA_ARCHS:-native}  # the card in this machine
command -v nvidia-smi >/dev/null && nvidia-smi > "$out/nvidia-smi.txt" 2>&1
{ cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DCUGMM_CUDA=ON -DCUGMM_CUDA_ARCHS=$archs &&
  cmake --build $build -j"$(nproc)"; } > "$out/build.log" 2>&1
build_rc=$?
test_rc=1
if [ $build_rc -eq 0 ]; then
  # The GPU tests first (CUDA against the CPU oracle), then everything. Tests whose oracles are RELION's
  # programs or Debian's python3 modules fail where those are not installed: tests.log says which.
  (cd $build && ctest -L gpu --output-on-failure --timeout 900) > "$out/gpu_tests.log" 2>&1
  gpu_rc=$?
  (cd $build && ctest --output-on-failure -j4 --timeout 900) > "$out/tests.log" 2>&1
  test_rc=$?
fi

# Benchmarks run in one folder so their JSON files land together; summary.json gathers them.
mkdir -p "$out/bench"
bench_json=""
if [ $build_rc -eq 0 ]; then
  for b in $build/bench/bench_*; do
    [ -x "$b" ] || continue
    name=$(basename "$b")
    (cd "$out/bench" && timeout 1200 "$root/$b") > "$out/bench/$name.log" 2>&1
    echo "$name exit $?" >> "$out/bench/status.txt"
  done
  for j in "$out"/bench/*.json; do
    [ -f "$j" ] || continue
    bench_json+="${bench_json:+,}\"$(basename "$j" .json)\": $(cat "$j")"
  done
fi
tests_line=$(grep -E "tests passed|tests failed" "$out/tests.log" 2>/dev/null | tail -1)
gpu_line=$(grep -E "tests passed|tests failed" "$out/gpu_tests.log" 2>/dev/null | tail -1)
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
{
  echo "gpu: ${gpu:-none}"
  echo "build: exit $build_rc"
  echo "gpu tests: exit ${gpu_rc:-1}, $gpu_line"
  echo "all tests: exit $test_rc, $tests_line"
  grep -E "Skipped|Failed|\*\*\*" "$out/tests.log" 2>/dev/null
  cat "$out/bench/status.txt" 2>/dev/null
} > "$out/summary.txt"
printf '{"gpu": "%s", "build_exit": %d, "gpu_tests_exit": %d, "gpu_tests": "%s", "tests_exit": %d, "tests": "%s", "bench": {%s}}\n' \
  "${gpu:-none}" $build_rc ${gpu_rc:-1} "$gpu_line" $test_rc "$tests_line" "$bench_json" > "$out/summary.json"
# Bench logs and JSON are also folded into one file each, so few files travel back from a device run.
cat "$out"/bench/*.log > "$out/bench.log" 2>/dev/null
cat "$out/summary.txt"
[ $build_rc -eq 0 ] && [ "${gpu_rc:-1}" -eq 0 ] && [ $test_rc -eq 0 ]
