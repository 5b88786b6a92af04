#!/usr/bin/env bash
# The fault campaign (issue 17 item 2): kills `cugmm train`, `fit-map`, `preprocess`, `reconstruct` and
# `analyze` with SIGKILL at random points, KILLS times each (default 20; CI passes 3), on small simulated
# data, and checks after each:
#   - right after the kill, every file under a final name is whole (model.ckpt: its CRC-32; every other
#     output: identical to an uninterrupted run's) and a checkpoint has lost at most one epoch;
#   - the next run (train --resume when a checkpoint exists, otherwise the same command again, in place)
#     succeeds and gives exactly the uninterrupted run's outputs: train resumes bit for bit; fit-map, when
#     the kill left its checkpoint (fit-map.ckpt: CRC-32 whole, at or past the last round the log says was
#     done), must log that it resumes and end with the same files; the others are redone;
#   - no temporary (`.NAME.cugmm-tmp-PID-N`) survives that later run.
# Then, for train: a full disk (a small tmpfs filled mid-run) and an output made read-only mid-run (the
# tmpfs remounted read-only) must stop the run with a clear error, keep the last good checkpoint, leave no
# temporary behind, and resume to the same result once space is back; fit-map, reconstruct and analyze
# writing to a full tmpfs must stop with a clear error and leave no temporary. Needs root for the tmpfs (CI
# is root); without it those checks are reported skipped. Prints the kills per command and the failures.
set -uo pipefail
cd "$(dirname "$0")/.."
kills=${1:-20}
exe=$(realpath "${CUGMM_BUILD_DIR:-build}/cugmm")
[ -x "$exe" ] || { echo "faults: $exe not built (bash scripts/build.sh)" >&2; exit 2; }
work=$(mktemp -d /tmp/cugmm-faults-XXXXXX)
cd "$work"
fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
ckpt_ok() { python3 -c "import sys,zlib;d=open(sys.argv[1],'rb').read();sys.exit(len(d)<4 or zlib.crc32(d[:-4])!=int.from_bytes(d[-4:],'little'))" "$1"; }
ckpt_epoch() { grep -ao '"epoch":[0-9]*' "$1" | head -1 | grep -o '[0-9]*$'; }
ckpt_round() { grep -ao '"round":[0-9]*' "$1" | head -1 | grep -o '[0-9]*$'; }
# Same file; MRC headers are compared without their labels (bytes 224..1023 hold the writing time), JSON
# not at all (timings).
same() {
  case $1 in
    *.mrc) cmp -s <(head -c 224 "$1"; tail -c +1025 "$1") <(head -c 224 "$2"; tail -c +1025 "$2") ;;
    *.json|*.png) true ;;
    *) cmp -s "$1" "$2" ;;
  esac
}
temps_in() { find "$1" -name '*.cugmm-tmp-*' 2>/dev/null; }
# Sleeps a random fraction of 1.1 x the uninterrupted run's time, then kills: some kills land after the end;
# killed_mid counts those that did not.
kill_at_random() {  # seconds log cmd...
  local secs=$1 log=$2; shift 2
  # The delay is drawn before the start: an interpreter started after it would take its own time first.
  local delay=$(awk -v s="$secs" -v r="$RANDOM" 'BEGIN { srand(r); printf "%.3f", (0.02 + 1.08 * rand()) * s }')
  "$@" >"$log" 2>&1 & local pid=$!
  sleep "$delay"
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  [ $? -eq 137 ] && killed_mid=$((killed_mid + 1))  # killed, not already finished
}
killed_mid=0
timed() { local t0=$(date +%s.%N); "$@" >/dev/null 2>&1 || return 1; python3 -c "print($(date +%s.%N)-$t0)"; }

# ---- data: a 12-Gaussian model; 2,000 particles at box 16 (train, then analyze of the trained run), 1,500 at
# box 64 (preprocess, reconstruct), its map at box 32 (fit-map)
python3 - <<'PY'
import random
random.seed(1)
g = ["%.3f %.3f %.3f %.2f %.2f" % (random.uniform(-25, 25), random.uniform(-25, 25), random.uniform(-25, 25),
                                   random.uniform(0.5, 2), random.uniform(6, 9)) for _ in range(12)]
for name, hdr in (("m16.txt", "box_size 16 pixel_size 6"), ("m64.txt", "box_size 64 pixel_size 1.5"),
                  ("m32.txt", "box_size 32 pixel_size 3")):
    open(name, "w").write("# cugmm Gaussian model\n" + hdr + "\n" + "\n".join(g) + "\n")
PY
"$exe" simulate --models m16.txt --out d16 --count 2000 --snr 1 --threads 1 >/dev/null 2>&1 &&
"$exe" simulate --models m64.txt --out d64 --count 1500 --snr 1 --threads 1 >/dev/null 2>&1 &&
"$exe" render --model m32.txt --out map32.mrc --threads 1 >/dev/null 2>&1 || { echo "faults: simulate failed"; exit 2; }

T=(train --particles d16/particles.star --model m16.txt --epochs 15 --batch 32 --hidden 128 --depth 2 --threads 1 --device cpu)
P=(preprocess --particles d64/particles.star --threads 1)
R=(reconstruct --particles d64/particles.star --threads 1 --device cpu)
F=(fit-map map32.mrc --threads 1 --device cpu)
A=(analyze ref_train --threads 1 --device cpu)

# Every file under `killed` (temporaries aside; a checkpoint is checked by its CRC) is the same as in `ref`:
# nothing half-written under a final name.
whole_files() {  # killed ref what
  local f
  for f in $(cd "$1" 2>/dev/null && find . -type f ! -name '*.cugmm-tmp-*' ! -name '*.ckpt'); do
    [ -f "$2/$f" ] && same "$1/$f" "$2/$f" || bad "$3: $1/${f#./} differs from the uninterrupted run's"; done
}
# `out` holds exactly the files of `ref`, each the same.
same_tree() {  # out ref what
  diff -q <(cd "$1" && find . -type f | sort) <(cd "$2" && find . -type f | sort) >/dev/null ||
    bad "$3: other files than the uninterrupted run's: $(diff <(cd "$1" && find . -type f | sort) <(cd "$2" && find . -type f | sort) | head -3 | tr '\n' ' ')"
  whole_files "$1" "$2" "$3"
}
# Kill a command KILLS times, writing to out/; half of the kills land on a fresh directory, half on the
# previous (complete) run's, which the command then rewrites in place. fit-map's checkpoint, when a kill
# leaves one: whole, not behind the rounds the killed run logged as done (each round's checkpoint is
# written before its log line), and the next run resumes from it.
kill_and_redo() {  # name seconds ref cmd...
  local name=$1 secs=$2 ref=$3 i ck=out/fit-map.ckpt had done_rounds r; shift 3
  killed_mid=0 resumed=0
  for i in $(seq "$kills"); do
    [ $((i % 2)) -eq 1 ] && rm -rf out
    kill_at_random "$secs" killed.log "$exe" "$@" --out out
    whole_files out "$ref" "$name kill $i"
    had=0
    if [ -f $ck ]; then
      had=1
      ckpt_ok $ck || bad "$name kill $i: $ck under its final name is damaged"
      # The rounds logged as done ("round k/n:"), the last round's excepted (it writes no round-end state).
      done_rounds=$(grep -o 'round [0-9]*/[0-9]*:' killed.log | tr -d ':' | awk -F'[ /]' '$2 < $3 { d = $2 } END { print d + 0 }')
      r=$(ckpt_round $ck)
      [ "${r:-0}" -ge "$done_rounds" ] || bad "$name kill $i: the checkpoint resumes at round $((r + 1)) after $done_rounds rounds done"
    fi
    "$exe" "$@" --out out >next.log 2>&1 || { bad "$name kill $i: next run failed: $(tail -1 next.log)"; continue; }
    if [ $had -eq 1 ]; then
      grep -q 'resuming from round' next.log && resumed=$((resumed + 1)) ||
        bad "$name kill $i: the next run did not resume from $ck: $(grep -i 'resume' next.log | head -1)"
    fi
    same_tree out "$ref" "$name kill $i ($([ $had -eq 1 ] && echo resumed || echo redone))"
    [ -z "$(temps_in out)" ] || bad "$name kill $i: temporaries survive: $(temps_in out)"
  done
  echo "$name: $kills kills, $killed_mid of them mid-run$([ "$name" = fit-map ] && echo ", $resumed resumed from a checkpoint") (uninterrupted run ${secs}s)"
}

# ---- train: kill, check the checkpoint, resume, compare with a straight run
t_train=$(timed "$exe" "${T[@]}" --out ref_train) || { echo "faults: reference train failed"; exit 2; }
for i in $(seq "$kills"); do
  rm -rf run
  kill_at_random "$t_train" killed.log "$exe" "${T[@]}" --out run
  done_epochs=$(grep -o 'epoch [0-9]*/' killed.log | tail -1 | grep -o '[0-9]*' || echo 0)
  resume=()
  if [ -f run/model.ckpt ]; then
    ckpt_ok run/model.ckpt || bad "train kill $i: model.ckpt under its final name is damaged"
    e=$(ckpt_epoch run/model.ckpt)
    [ "${e:-0}" -ge $((done_epochs - 1)) ] || bad "train kill $i: checkpoint at epoch $e after $done_epochs epochs"
    resume=(--resume)
  fi
  "$exe" "${T[@]}" --out run "${resume[@]}" >next.log 2>&1 || { bad "train kill $i: next run failed: $(tail -1 next.log)"; continue; }
  cmp -s run/latent.txt ref_train/latent.txt || bad "train kill $i: resumed latent differs from the straight run's"
  [ -z "$(temps_in run)" ] || bad "train kill $i: temporaries survive: $(temps_in run)"
done
echo "train: $kills kills, $killed_mid of them mid-run (uninterrupted run ${t_train}s)"

# ---- preprocess, reconstruct, fit-map, analyze: kill, check final names, redo, compare
t_pre=$(timed "$exe" "${P[@]}" --out ref.cugmm-cache) || { echo "faults: reference preprocess failed"; exit 2; }
killed_mid=0
for i in $(seq "$kills"); do
  rm -f c.cugmm-cache  # a whole cache that answers the STAR is kept as it is: start each kill afresh
  kill_at_random "$t_pre" killed.log "$exe" "${P[@]}" --out c.cugmm-cache
  [ ! -f c.cugmm-cache ] || cmp -s c.cugmm-cache ref.cugmm-cache || bad "preprocess kill $i: a half-written cache under the final name"
  "$exe" "${P[@]}" --out c.cugmm-cache >next.log 2>&1 || bad "preprocess kill $i: next run failed: $(tail -1 next.log)"
  cmp -s c.cugmm-cache ref.cugmm-cache || bad "preprocess kill $i: redone cache differs"
  [ -z "$(temps_in .)" ] || bad "preprocess kill $i: temporaries survive: $(temps_in .)"
done
echo "preprocess: $kills kills, $killed_mid of them mid-run (uninterrupted run ${t_pre}s)"

t_rec=$(timed "$exe" "${R[@]}" --out ref_rec) || { echo "faults: reference reconstruct failed"; exit 2; }
kill_and_redo reconstruct "$t_rec" ref_rec "${R[@]}"
t_fit=$(timed "$exe" "${F[@]}" --out ref_fit) || { echo "faults: reference fit-map failed"; exit 2; }
kill_and_redo fit-map "$t_fit" ref_fit "${F[@]}"
t_an=$(timed "$exe" "${A[@]}" --out ref_an) || { echo "faults: reference analyze failed"; exit 2; }
kill_and_redo analyze "$t_an" ref_an "${A[@]}"

# ---- a full disk and a read-only output, mid-run (train writes a checkpoint every epoch)
mid_run_fault() {  # name, action on the mounted directory once the first checkpoint exists
  local name=$1 action=$2 dir=$work/$1
  mkdir -p "$dir" && mount -t tmpfs -o size=4m tmpfs "$dir" || { echo "$name: skipped (cannot mount a tmpfs)"; return; }
  "$exe" "${T[@]}" --out "$dir/run" --cache "$work/shared.cugmm-cache" >"$name.log" 2>&1 & local pid=$!
  while kill -0 $pid 2>/dev/null && [ ! -f "$dir/run/model.ckpt" ]; do sleep 0.05; done
  # The fault must land while the run is alive: a remount is refused (busy) while a file is open for
  # writing, so it is retried between the run's writes until it takes or the run has ended.
  local injected=0
  while kill -0 $pid 2>/dev/null; do
    if eval "$action"; then injected=1; break; fi
    sleep 0.02
  done
  wait $pid; local rc=$?
  if [ $injected -eq 0 ]; then  # the run was too quick for this machine: nothing was tested, say so
    echo "$name: not injected (the run ended before the fault could be applied)"
    umount "$dir"; return
  fi
  [ $rc -ne 0 ] || bad "$name: the run did not stop (rc 0)"
  grep -qiE 'no space|read-only|cannot write|not writable' "$name.log" || bad "$name: unclear error: $(tail -1 "$name.log")"
  grep -qE 'Sanitizer|terminate called|what\(\)' "$name.log" && bad "$name: a crash, not an error"
  [ -f "$dir/run/model.ckpt" ] && ckpt_ok "$dir/run/model.ckpt" || bad "$name: the last good checkpoint is gone or damaged"
  echo "$name: $(grep -i 'error' "$name.log" | tail -1)"
  mount -o remount,rw "$dir"; rm -f "$dir/fill"
  [ -z "$(temps_in "$dir")" ] || bad "$name: temporaries left: $(temps_in "$dir")"
  "$exe" "${T[@]}" --out "$dir/run" --cache "$work/shared.cugmm-cache" --resume >"$name.next.log" 2>&1 &&
    cmp -s "$dir/run/latent.txt" ref_train/latent.txt || bad "$name: the resumed run does not give the straight run's latent"
  umount "$dir"
}
# The other commands, their output on a tmpfs half the size of what they write: they fail partway through.
full_disk_write() {  # name ref cmd...
  local name=$1 ref=$2 dir=$work/full_$1; shift 2
  local kb=$(( $(du -sk "$ref" | cut -f1) / 2 ))
  mkdir -p "$dir" && mount -t tmpfs -o size=${kb}k tmpfs "$dir" || { echo "$name full disk: skipped (cannot mount a tmpfs)"; return; }
  "$exe" "$@" --out "$dir/out" >"full_$name.log" 2>&1 && bad "$name full disk: the run did not stop (rc 0)"
  grep -qiE 'no space|cannot write' "full_$name.log" || bad "$name full disk: unclear error: $(tail -1 "full_$name.log")"
  grep -qE 'Sanitizer|terminate called|what\(\)' "full_$name.log" && bad "$name full disk: a crash, not an error"
  [ -z "$(temps_in "$dir")" ] || bad "$name full disk: temporaries left: $(temps_in "$dir")"
  echo "$name full disk (${kb} KiB): $(grep -iE 'no space|cannot write' "full_$name.log" | tail -1)"
  umount "$dir"
}
if [ "$(id -u)" -eq 0 ]; then
  mid_run_fault full_disk 'dd if=/dev/zero of="$dir/fill" bs=64k 2>/dev/null; true'
  mid_run_fault read_only 'mount -o remount,ro "$dir" 2>/dev/null'
  full_disk_write reconstruct ref_rec "${R[@]}"
  full_disk_write fit-map ref_fit "${F[@]}"
  full_disk_write analyze ref_an "${A[@]}"
else
  echo "full_disk, read_only: skipped (need root for the tmpfs)"
fi

cd / && rm -rf "$work"
[ $fail -eq 0 ] && echo "faults: all checks passed" || echo "faults: $fail failures"
[ $fail -eq 0 ]
