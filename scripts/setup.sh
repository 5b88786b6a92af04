#!/usr/bin/env bash
# Installs the Debian packages that cugmm's build and tests need. Idempotent and quiet when all are present.
set -euo pipefail
pkgs=(cmake g++ make pkg-config ccache
      libfftw3-dev libopenblas-dev libopenblas-openmp-dev libtiff-dev doctest-dev gemmi-dev nlohmann-json3-dev
      relion python3-mrcfile python3-numpy python3-gemmi python3-tifffile
      tao-pegtl-dev libcli11-dev libplplot-dev plplot-driver-cairo fonts-dejavu-core libeigen3-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "setup: installing ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
