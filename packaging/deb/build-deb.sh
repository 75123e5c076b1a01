#!/usr/bin/env bash
# Builds portico_VERSION_ARCH.deb from a configured build directory: `cmake --install` of that
# tree with prefix /usr into a staging root, a DEBIAN/control whose Depends dpkg-shlibdeps
# works out from the binary (plus the Python standard library the embedded interpreter
# imports), the files under /etc marked as conffiles, and maintainer scripts that keep systemd
# informed. Usage: packaging/deb/build-deb.sh BUILD_DIR [OUT_DIR]
set -euo pipefail
build=$(cd "${1:?usage: build-deb.sh BUILD_DIR [OUT_DIR]}" && pwd)
out=$(mkdir -p "${2:-.}" && cd "${2:-.}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
version=$(sed -n 's/^project(portico VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
arch=$(dpkg --print-architecture)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage="$work/stage"

# The install tree for /usr, whatever prefix the build was configured with.
DESTDIR="$stage" cmake --install "$build" --prefix /usr >/dev/null
gzip -9n "$stage/usr/share/man/man8/portico.8"
# Debian ships debug symbols apart (-dbgsym); the package carries the stripped binary.
strip --strip-unneeded "$stage/usr/bin/portico"
mkdir -p "$stage/usr/share/doc/portico"
cp "$root/README.md" "$stage/usr/share/doc/portico/"

# Shared-library dependencies, as debhelper would find them.
mkdir -p "$work/shlibs/debian"
printf 'Source: portico\n\nPackage: portico\nArchitecture: any\n' > "$work/shlibs/debian/control"
depends=$(cd "$work/shlibs" && dpkg-shlibdeps -O "$stage/usr/bin/portico" 2>/dev/null |
          sed -n 's/^shlibs:Depends=//p')
# libpython is linked in; its standard library is not.
depends="${depends:+$depends, }libpython3.11-stdlib, media-types | mime-support"

mkdir -p "$stage/DEBIAN"
size=$(du -sk "$stage/usr" "$stage/etc" | awk '{s += $1} END {print s}')
cat > "$stage/DEBIAN/control" <<CONTROL
Package: portico
Version: $version
Architecture: $arch
Maintainer: portico developers <portico@localhost>
Installed-Size: $size
Depends: $depends
Section: httpd
Priority: optional
Homepage: https://localhost/portico
Description: web server and WSGI application server in one process tree
 portico replaces nginx in front of gunicorn or uWSGI with one binary: a master
 supervising workers that each serve HTTP/1.1, TLS, static files and proxying
 and run the WSGI application in an embedded CPython. It reads nginx's
 configuration language (-c, -t, -s reload) and gunicorn's command line.
CONTROL
(cd "$stage" && find etc -type f | sed 's|^|/|' | sort) > "$stage/DEBIAN/conffiles"
cat > "$stage/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
SCRIPT
cat > "$stage/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl stop portico.service portico.socket >/dev/null 2>&1 || true
fi
exit 0
SCRIPT
cat > "$stage/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
SCRIPT
chmod 755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
deb="$out/portico_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
