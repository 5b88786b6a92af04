#!/usr/bin/env bash
# Prints the environment (export lines, for `.`) that makes a build use Debian packages unpacked with
# dpkg -x into PREFIX instead of installed ones (scripts/gpu_all.sh), and fixes up the unpacked tree:
# pkg-config files name /usr, and PLplot, fontconfig and pkgconf look in compiled-in /usr and /etc paths.
#   bash scripts/gpu_prefix_env.sh PREFIX > env; . ./env
set -euo pipefail
prefix=$(cd "${1:?usage: gpu_prefix_env.sh PREFIX}" && pwd)
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
lib=$prefix/usr/lib/$arch
# .pc files: prefix=/usr, libdir=/usr/lib/..., includedir=/usr/include/... -> the same under PREFIX.
for pc in "$lib"/pkgconfig/*.pc "$prefix"/usr/share/pkgconfig/*.pc; do
  [ -f "$pc" ] && sed -i -E "s#(^|[=\" ]|-I|-L)/usr/#\\1$prefix/usr/#g" "$pc"
done
# CMAKE_INCLUDE_PATH / CMAKE_LIBRARY_PATH: Debian's multiarch directories (tiff.h lives in include/<arch>),
# which CMake searches by itself only when the compiler is Debian's (CMAKE_LIBRARY_ARCHITECTURE).
# Debian's alternatives symlinks (libblas.so, libopenblas.so.0, ...) are made by maintainer scripts that
# dpkg -x does not run; cugmm links the OpenMP OpenBLAS by its own directory, so none are needed.
# Fonts for PLplot's cairo driver (pango through fontconfig): only the packed DejaVu.
mkdir -p "$prefix/etc/fonts" "$prefix/var/cache/fontconfig"
cat > "$prefix/etc/fonts/cugmm-fonts.conf" <<CONF
<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig>
  <dir>$prefix/usr/share/fonts</dir>
  <cachedir>$prefix/var/cache/fontconfig</cachedir>
  <include ignore_missing="yes">$prefix/etc/fonts/conf.d</include>
</fontconfig>
CONF
plver=$(ls -d "$lib"/plplot[0-9]* 2>/dev/null | head -1)
cat <<ENV
export CMAKE_PREFIX_PATH=$prefix/usr\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}
export CPATH=$prefix/usr/include:$prefix/usr/include/$arch\${CPATH:+:\$CPATH}
export CMAKE_INCLUDE_PATH=$prefix/usr/include/$arch\${CMAKE_INCLUDE_PATH:+:\$CMAKE_INCLUDE_PATH}
export CMAKE_LIBRARY_PATH=$lib\${CMAKE_LIBRARY_PATH:+:\$CMAKE_LIBRARY_PATH}
export LIBRARY_PATH=$lib\${LIBRARY_PATH:+:\$LIBRARY_PATH}
export LD_LIBRARY_PATH=$lib:$lib/openblas-openmp\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export PATH=$prefix/usr/bin:\$PATH
export PKG_CONFIG_LIBDIR=$lib/pkgconfig:$prefix/usr/share/pkgconfig
export PKG_CONFIG=$prefix/usr/bin/pkgconf
export FONTCONFIG_FILE=$prefix/etc/fonts/cugmm-fonts.conf
ENV
[ -n "$plver" ] && echo "export PLPLOT_DRV_DIR=$plver/drivers"
pllib=$(ls -d "$prefix"/usr/share/plplot[0-9]* 2>/dev/null | head -1)
[ -n "$pllib" ] && echo "export PLPLOT_LIB=$pllib"
true
