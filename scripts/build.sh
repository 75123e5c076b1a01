#!/usr/bin/env bash
# Configures and builds one flavour of portico: release (build/), asan (build-asan/), fuzz (build-fuzz/).
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
case "$flavour" in
  release) cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
           ninja -C build ;;
  asan)    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPORTICO_SANITIZE=ON >/dev/null
           ninja -C build-asan ;;
  fuzz)    CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
             -DPORTICO_FUZZ=ON -DPORTICO_TESTS=OFF >/dev/null
           ninja -C build-fuzz parser_fuzz conf_fuzz uwsgi_fuzz proxy_protocol_fuzz upstream_response_fuzz dns_fuzz ;;
  *) echo "usage: scripts/build.sh [release|asan|fuzz]" >&2; exit 2 ;;
esac
