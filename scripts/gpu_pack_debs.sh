#!/usr/bin/env bash
# Downloads the Debian packages the build needs (not installed: just the .deb files) into .gpu-debs/,
# for GPU machines that have CUDA but no network. scripts/gpu_all.sh unpacks them.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu-debs
cd .gpu-debs
pkgs="libjs-three zlib1g-dev libfftw3-dev libfftw3-single3 libfftw3-bin libopenblas-dev libopenblas0-pthread libopenblas-pthread-dev
      libtiff-dev libtiff6 libpng-dev libpng16-16 doctest-dev gemmi-dev tao-pegtl-dev nlohmann-json3-dev libgomp1
      libjpeg62-turbo libjbig0 libwebp7 liblerc4 libdeflate0 libzstd1 liblzma5 zlib1g libgfortran5"
apt-get download $pkgs >/dev/null
ls | wc -l
