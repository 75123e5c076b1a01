#!/bin/sh
# nginx-tests' view of portico: the suite's harness (lib/Test/Nginx.pm) asks `BINARY -V` which
# modules exist and which nginx version it is talking to. This wrapper answers as an nginx 1.22.1
# build (the behaviour portico follows) that was configured --without every module portico does
# not implement, so their files are skipped, and --with every module nginx builds only on request
# that portico implements (modules-present-optional); everything else goes to portico unchanged
# (exec: same PID, so the harness's signals reach portico).
# PORTICO_REAL selects the binary (default: build/portico beside this tests/ folder).
here=$(cd "$(dirname "$0")" && pwd)
real=${PORTICO_REAL:-$here/../../build/portico}

if [ "$#" -eq 1 ] && [ "$1" = "-V" ]; then
    without=$(grep -v '^#' "$here/modules-absent" | tr '\n' ' ')
    with=$(grep -v '^#' "$here/modules-present-optional" | tr '\n' ' ')
    {
        echo "nginx version: nginx/1.22.1 (portico)"
        "$real" -V 2>&1 | sed -n -e 's/^portico version: /portico version: /p' \
            -e '/^built with OpenSSL /p' -e '/^TLS SNI support enabled/p'
        echo "configure arguments: --with-pcre $with$without"
    } >&2
    exit 0
fi

exec "$real" "$@"
