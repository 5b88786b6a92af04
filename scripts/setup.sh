#!/usr/bin/env bash
# Installs the Debian packages that cugmm's build and tests need. Idempotent and quiet when all are present.
set -euo pipefail
pkgs=(cmake g++ make pkg-config ccache
      libfftw3-dev libopenblas-dev libopenblas-openmp-dev libtiff-dev doctest-dev gemmi-dev nlohmann-json3-dev
      relion python3-mrcfile python3-numpy python3-gemmi python3-tifffile python3-yaml
      tao-pegtl-dev libcli11-dev libplplot-dev plplot-driver-cairo fonts-dejavu-core libeigen3-dev
      zlib1g-dev libjs-three chromium
      libopenmpi-dev openmpi-bin  # MPI: data-parallel training (optional in the build, tested when present)
      clang-14 libclang-rt-14-dev libomp-14-dev)  # scripts/fuzz.sh: libFuzzer and sanitizer runtimes, clang's OpenMP
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v node >/dev/null || missing+=(nodejs)  # any node and npm on the PATH do; else Debian's
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The browser test's driver (tests/browser: playwright-core, pinned by its package-lock.json; it drives
# Debian's chromium and downloads no browser).
browser_dir="$(dirname "$0")/../tests/browser"
if ! cmp -s "$browser_dir/package-lock.json" "$browser_dir/node_modules/.cugmm-installed-lock" 2>/dev/null; then
  (cd "$browser_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent &&
   cp package-lock.json node_modules/.cugmm-installed-lock)
fi
