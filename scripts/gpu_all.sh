#!/usr/bin/env bash
# One command for a GPU machine: build (CUDA for this card), run every test (the GPU ones included) and
# every benchmark (short forms), and write a summary into the directory given: summary.txt and
# summary.json (the card, each stage's exit status and time, each GPU test's result, each benchmark's
# headline figures), plus the logs. Budget: under 5 minutes on one GPU. Without a GPU (CUGMM_CUDA_ARCHS=75
# on a build machine) the GPU tests report themselves skipped and the benchmarks run on the CPU only.
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

# The pack, where it was carried, is used even when some of its packages look installed: the GPU image
# has a few of them (libfftw3-dev, Eigen) and not the rest (libtiff-dev, libjs-three, ...).
if [ -d .gpu-debs ] || ! dpkg-query -W -f='${Status}' libfftw3-dev 2>/dev/null | grep -q "install ok installed"; then
  if [ -d .gpu-debs ]; then
    # A private prefix made of the pack (scripts/gpu_pack_debs.sh says what is in it and why).
    prefix=$root/.gpu-root
    rm -rf "$prefix"
    mkdir -p "$prefix"
    for f in .gpu-debs/*.deb; do dpkg -x "$f" "$prefix"; done
    bash scripts/gpu_prefix_env.sh "$prefix" > "$prefix/env.sh"
    . "$prefix/env.sh"
  else
    bash scripts/setup.sh
  fi
fi
# Tests that use RELION's programs or Debian's python3-mrcfile as oracles skip themselves (saying so)
# where those are absent, here only; on CI they are installed and required.
export CUGMM_ALLOW_MISSING_ORACLES=1

build=build-gpu
archs=${CUGMM_CUDA_ARCHS:-native}  # the card in this machine
t0=$(date +%s)
command -v nvidia-smi >/dev/null && nvidia-smi > "$out/nvidia-smi.txt" 2>&1
{ cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DCUGMM_CUDA=ON -DCUGMM_CUDA_ARCHS=$archs &&
  cmake --build $build -j"$(nproc)"; } > "$out/build.log" 2>&1
build_rc=$?
t_build=$(( $(date +%s) - t0 ))
test_rc=1
gpu_rc=1
[ "${CUGMM_GPU_ALL_TESTS_S:-3600}" = 0 ] && test_rc=0  # skipped on purpose (below)
# The GPU tests first (CUDA against the CPU oracle), then the benchmarks, then every other test: what only
# a GPU machine can tell comes back first when a lease runs short. CUGMM_GPU_ALL_TESTS_S caps the last
# stage in seconds (0 skips it: CI runs those tests on every submission).
if [ $build_rc -eq 0 ]; then
  (cd $build && ctest -L gpu --output-on-failure --timeout 300) > "$out/gpu_tests.log" 2>&1
  gpu_rc=$?
fi
t_gpu=$(( $(date +%s) - t0 - t_build ))

# Benchmarks in their short forms, in one folder so their JSON files land together.
mkdir -p "$out/bench"
: > "$out/bench/status.txt"
if [ $build_rc -eq 0 ]; then
  for spec in "bench_devices bench_devices.json" "bench_mlp --quick" "bench_projector --quick" \
              "bench_reconstruct --quick" "bench_train --quick"; do
    set -- $spec
    name=$1; shift
    [ -x "$build/bench/$name" ] || { echo "$name missing" >> "$out/bench/status.txt"; continue; }
    (cd "$out/bench" && timeout 240 "$root/$build/bench/$name" "$@") > "$out/bench/$name.log" 2>&1
    echo "$name exit $?" >> "$out/bench/status.txt"
  done
fi
t_bench=$(( $(date +%s) - t0 - t_build - t_gpu ))

if [ $build_rc -eq 0 ] && [ "${CUGMM_GPU_ALL_TESTS_S:-3600}" != 0 ]; then  # 0: skip them
  # Tests whose oracles are RELION's programs or Debian's python3 modules skip themselves here (above).
  (cd $build && timeout "${CUGMM_GPU_ALL_TESTS_S:-3600}" ctest -LE gpu --output-on-failure -j"$(nproc)" \
     --timeout 300) > "$out/tests.log" 2>&1
  test_rc=$?
fi
t_tests=$(( $(date +%s) - t0 - t_build - t_gpu - t_bench ))
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)

# summary.txt and summary.json: the card, each stage's exit and time, each GPU test's result, each
# benchmark's headline figures.
if ! command -v python3 >/dev/null; then  # a bare machine: the essentials, without the per-figure lines
  { echo "gpu: ${gpu:-none}"; echo "build: exit $build_rc ($t_build s)"; echo "gpu tests: exit $gpu_rc";
    grep -E "Test +#" "$out/gpu_tests.log"; echo "all tests: exit $test_rc ($t_tests s)";
    echo "benchmarks ($t_bench s):"; cat "$out/bench/status.txt"; echo "(no python3: headline figures in bench/*.json)"
  } > "$out/summary.txt"
  printf '{"gpu": "%s", "build_exit": %d, "gpu_tests_exit": %d, "tests_exit": %d}\n' "${gpu:-none}" $build_rc \
    $gpu_rc $test_rc > "$out/summary.json"
else
GPU_NAME="${gpu:-none}" BUILD_RC=$build_rc GPU_RC=$gpu_rc TEST_RC=$test_rc T_BUILD=$t_build T_TESTS=$t_tests \
T_BENCH=$t_bench OUT="$out" python3 - <<'PY'
import glob, json, os, re
out = os.environ["OUT"]
def read(p):
    try:
        return open(p, errors="replace").read()
    except OSError:
        return ""
def results(log):  # ctest lines "1/3 Test #27: test_projector_cuda ....   Passed    1.2 sec"
    r = {}
    for m in re.finditer(r"Test +#\d+: (\S+) \.+\s*(\*+)?\s*([A-Za-z][A-Za-z ]*?)\s+[\d.]+ sec", log):
        r[m.group(1)] = m.group(3).strip()
    return r
def line(log):
    m = re.findall(r".*tests passed.*|.*tests failed.*", log)
    return m[-1].strip() if m else "not run"
gpu_log, all_log = read(f"{out}/gpu_tests.log"), read(f"{out}/tests.log")
bench = {}
for j in sorted(glob.glob(f"{out}/bench/*.json")):
    try:
        bench[os.path.basename(j)[:-5]] = json.load(open(j))
    except ValueError:
        bench[os.path.basename(j)[:-5]] = {"error": "unreadable JSON"}
head = []
for r in bench.get("bench_projector", {}).get("results", []):
    if "forward_backward_particles_per_s" in r:
        head.append(f"projector {r['device']} {r['strategy']} G={r['G']} box={r['box']}: "
                    f"{r['forward_particles_per_s']:.0f} fwd, {r['forward_backward_particles_per_s']:.0f} fwd+bwd particles/s")
for r in bench.get("bench_reconstruct", {}).get("backprojection", []):
    head.append(f"back-projection {r['device']} box={r['box']}: {r['particles_per_s']:.0f} particles/s, solve {r['solve_s']:.2f} s")
t = bench.get("bench_train", {})
if "particle_steps_per_s" in t:
    head.append(f"train {t['device']} G={t['job']['G']} box={t['job']['box']} batch={t['job']['batch']}: "
                f"{t['particle_steps_per_s']:.0f} particle-steps/s, {100 * t['fraction_of_blas_limit']:.0f}% of the "
                f"BLAS limit, non-GEMM {100 * t['non_gemm_share_of_step']:.0f}%, decode "
                f"{t['decode_ms_per_point']['total']:.1f} ms/point")
def walk(d, path=""):  # bench_mlp: every figure named like a rate or a fraction of peak
    if isinstance(d, dict):
        for k, v in d.items():
            yield from walk(v, f"{path}.{k}" if path else k)
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from walk(v, f"{path}[{i}]")
    elif isinstance(d, (int, float)) and re.search(r"gflop|per_s|peak_fraction|fraction", path, re.I):
        yield path, d
for k, v in list(walk(bench.get("bench_mlp", {})))[:12]:
    head.append(f"mlp {k}: {v:.4g}")
status = read(f"{out}/bench/status.txt").split("\n")
env = os.environ
summary = {
    "gpu": env["GPU_NAME"], "build_exit": int(env["BUILD_RC"]), "build_s": int(env["T_BUILD"]),
    "gpu_tests_exit": int(env["GPU_RC"]), "gpu_tests": results(gpu_log), "gpu_tests_line": line(gpu_log),
    "tests_exit": int(env["TEST_RC"]), "tests_line": line(all_log), "tests_s": int(env["T_TESTS"]),
    "tests_not_passed": {k: v for k, v in results(all_log).items() if v != "Passed"},
    "bench_status": [s for s in status if s], "bench_s": int(env["T_BENCH"]), "bench_headlines": head,
    "bench": bench,
}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=1)
with open(f"{out}/summary.txt", "w") as f:
    f.write(f"gpu: {summary['gpu']}\n")
    f.write(f"build: exit {summary['build_exit']} ({summary['build_s']} s)\n")
    f.write(f"gpu tests: exit {summary['gpu_tests_exit']}, {summary['gpu_tests_line']}\n")
    for k, v in summary["gpu_tests"].items():
        f.write(f"  {k}: {v}\n")
    f.write(f"all tests: exit {summary['tests_exit']}, {summary['tests_line']} ({summary['tests_s']} s)\n")
    for k, v in summary["tests_not_passed"].items():
        f.write(f"  {k}: {v}\n")
    f.write(f"benchmarks ({summary['bench_s']} s): {'; '.join(summary['bench_status'])}\n")
    for h in head:
        f.write(f"  {h}\n")
PY
fi
# Bench logs are also folded into one file, so few files travel back from a device run.
cat "$out"/bench/*.log > "$out/bench.log" 2>/dev/null
cat "$out/summary.txt"
[ $build_rc -eq 0 ] && [ $gpu_rc -eq 0 ] && [ $test_rc -eq 0 ]
