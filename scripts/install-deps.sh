#!/usr/bin/env bash
# Installs every Debian 12 package portico needs to build, test and serve its examples.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PACKAGES=(
  cmake ninja-build g++ clang libclang-rt-14-dev pkg-config
  libgtest-dev libgmock-dev zlib1g-dev libpcre2-dev libssl-dev libcrypt-dev libsystemd-dev systemd
  python3 python3-pytest python3-pytest-timeout python3-requests python3-websockets
  libpython3.11-dev python3-django python3-psycopg2 postgresql
  nginx curl slowhttptest gunicorn testssl.sh uwsgi uwsgi-plugin-python3 iproute2 util-linux
  # promtool checks the metrics; a real Prometheus scrapes them in the tests; headless
  # Chromium renders the status page; the man page and the .deb (packaging/)
  prometheus chromium groff-base dpkg-dev python3-yaml
  # the cluster test: app hosts share Django's cache and sessions in Redis
  redis-server python3-redis python3-django-redis
  # nginx-tests (../shared/ext/nginx-tests), nginx's own Perl suite
  perl openssl libio-socket-ssl-perl libnet-ssleay-perl libprotocol-websocket-perl libfcgi-perl
  libscgi-perl libgd-perl libcache-memcached-perl libcache-memcached-fast-perl libcryptx-perl
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian starts nginx on port 80 when it is installed; the tests run their own instances.
# So do Prometheus (port 9090) and Redis (6379).
if command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl stop nginx >/dev/null 2>&1 || true
  $SUDO systemctl stop prometheus >/dev/null 2>&1 || true
  $SUDO systemctl stop redis-server >/dev/null 2>&1 || true
fi
