#!/usr/bin/env bash
# Downloads the Debian packages the build and tests need (not installed: just the .deb files) into
# .gpu-debs/, for GPU machines that have CUDA, a C++ compiler, CMake and Python but none of Debian's -dev
# packages and no network. scripts/gpu_all.sh unpacks them into a private prefix with dpkg -x.
#
# The pack is the dependency closure of NEED minus what such a machine already has (BASE: the Essential
# and Priority-required packages plus build-essential, cmake and python3), computed by apt-get's own
# resolver against a dpkg status file that lists only BASE (taken from this machine's status, where BASE
# is installed). NODEPS packages come without their dependencies: libplplot-dev's Depends are the -dev
# packages of PLplot's static link and of its Qt / wxWidgets / Fortran bindings (~110 MiB), none of which a
# shared link against libplplot.so needs. The pack must stay well under 60 MiB: the working tree that
# travels to the GPU machine is limited to 64 MiB in all. It prints the list and the total.
set -euo pipefail
cd "$(dirname "$0")/.."
NEED="libfftw3-dev libopenblas-openmp-dev libopenblas0-openmp libtiff-dev doctest-dev gemmi-dev tao-pegtl-dev
      nlohmann-json3-dev libcli11-dev libeigen3-dev pkgconf libplplot17 plplot-driver-cairo fonts-dejavu-core
      libjs-three zlib1g-dev"
NODEPS="libplplot-dev"
BASE_SEEDS="build-essential cmake python3"
LIMIT_MIB=50

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# BASE: the installed closure of the seeds and of every Essential / required package.
req=$(dpkg-query -Wf '${Package} ${Essential} ${Priority} ${db:Status-Status}\n' |
      awk '($2 == "yes" || $3 == "required") && $4 == "installed" {print $1}')
apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances $req $BASE_SEEDS 2>/dev/null |
  grep -v '^[ <]' | sed 's/:any$//; s/:amd64$//' | sort -u > "$work/closure"
dpkg-query -Wf '${Package}\n' | sort -u > "$work/installed"
comm -12 "$work/closure" "$work/installed" > "$work/base"
status() {  # the dpkg status stanzas of the packages in $work/base
  python3 - "$work/base" "$work/status" <<'PY'
import re, sys
base = set(open(sys.argv[1]).read().split())
st = open("/var/lib/dpkg/status").read().split("\n\n")
keep = [s for s in st if "Status: install ok installed" in s and
        (m := re.search(r"^Package: (\S+)", s, re.M)) and m.group(1) in base]
open(sys.argv[2], "w").write("\n\n".join(keep) + "\n\n")
PY
}
# apt-cache's closure skips virtual names (perl:any, ...): add what the resolver says is missing.
for round in 1 2 3 4 5 6; do
  status
  sim=$(apt-get -s -o Dir::State::status="$work/status" install --no-install-recommends $BASE_SEEDS 2>&1 || true)
  grep -q '^E:' <<<"$sim" || break
  grep -oE 'Depends: [a-z0-9.+-]+' <<<"$sim" | awk '{print $2}' >> "$work/base"
  sort -u -o "$work/base" "$work/base"
  [ $round -lt 6 ] || { echo "gpu_pack_debs: could not make a consistent BASE:"; echo "$sim" | tail; exit 1; }
done
apt-get -s -o Dir::State::status="$work/status" install --no-install-recommends $NEED > "$work/sim" 2>&1 ||
  { tail "$work/sim"; exit 1; }
pkgs=$( { awk '/^Inst/ {print $2}' "$work/sim"; echo $NODEPS | tr ' ' '\n'; } | sort -u)

rm -rf .gpu-debs
mkdir -p .gpu-debs
(cd .gpu-debs && apt-get download $pkgs >/dev/null)
echo "$pkgs" > .gpu-debs/PACKAGES
n=$(ls .gpu-debs/*.deb | wc -l)
kib=$(du -sk .gpu-debs | cut -f1)
echo "gpu_pack_debs: $n packages, $((kib / 1024)) MiB in .gpu-debs (limit $LIMIT_MIB MiB)"
[ $((kib / 1024)) -lt $LIMIT_MIB ] || { echo "gpu_pack_debs: the pack is too large to travel"; exit 1; }
