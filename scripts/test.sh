#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test: unit and integration tests on the
# release build, nginx's own test suite (nginx-tests) against it, the same again under ASan+UBSan, and the
# fuzzers (request, configuration, uwsgi, PROXY protocol, upstream response, DNS response parsers) for a bounded time, with testssl.sh against the release build beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-120}
PY=/usr/bin/python3

# Whatever this run's tests leave behind when a suite ends abnormally (the session's own
# cleanup did not run) is killed on the way out: every process they start inherits this mark.
export PORTICO_TEST_RUN="run-$$-$RANDOM"
kill_test_leftovers() {
  local p
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qx "PORTICO_TEST_RUN=$PORTICO_TEST_RUN"; then
      kill -9 "${p#/proc/}" 2>/dev/null || true
    fi
  done
}
trap kill_test_leftovers EXIT
# Each suite has a wall-clock bound well above its usual time (integration ~11 min, ~21 under
# ASan; nginx-tests ~2), so a hang fails the run with its output instead of eating the CI budget;
# the integration runs list their slowest tests, to see where the suite's time goes.
bounded() { timeout --kill-after=30 "$@"; }

scripts/install-deps.sh

echo "== release build"
scripts/build.sh release
echo "== unit tests (release)"
ctest --test-dir build --output-on-failure -j2 --timeout 300
echo "== integration tests (release)"
PORTICO_BIN="$PWD/build/portico" bounded 30m $PY -m pytest -q -p no:cacheprovider --durations=12 \
  tests/integration
echo "== nginx-tests (nginx's own suite, ../shared/ext/nginx-tests)"
bounded 15m $PY tests/nginx/run_nginx_tests.py --binary build/portico

echo "== ASan+UBSan build"
scripts/build.sh asan
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
echo "== unit tests (ASan+UBSan)"
ctest --test-dir build-asan --output-on-failure -j2 --timeout 300
echo "== integration tests (ASan+UBSan)"
PORTICO_BIN="$PWD/build-asan/portico" PORTICO_SANITIZED=1 bounded 40m $PY -m pytest -q -p no:cacheprovider \
  --durations=12 tests/integration
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

scripts/build.sh fuzz
# testssl.sh (about two minutes of one core: bash forking openssl) runs beside the fuzzers, which
# use one core each in turn, so the two cores share the work; its output comes after theirs.
echo "== testssl.sh against the default TLS configuration (release build), in the background"
PORTICO_BIN="$PWD/build/portico" PORTICO_TESTSSL=1 $PY -m pytest -q -p no:cacheprovider \
  tests/integration/test_testssl.py >build/testssl.log 2>&1 &
testssl_pid=$!
trap 'kill "$testssl_pid" 2>/dev/null || true; kill_test_leftovers' EXIT
# A unit's -timeout is wall-clock: 30 s, so a machine paused under the run (a VM snapshot)
# is not taken for a hang; a real one still stops the fuzzer.
echo "== fuzzing the request parser for ${FUZZ_SECONDS}s"
mkdir -p build-fuzz/corpus
build-fuzz/tests/fuzz/parser_fuzz -max_total_time="$FUZZ_SECONDS" -timeout=30 -rss_limit_mb=2048 \
  -print_final_stats=1 build-fuzz/corpus tests/fuzz/corpus/parser 2>&1 | tail -n 15
# The configuration parser and the uwsgi decoder share the half the configuration parser had.
echo "== fuzzing the configuration parser for $((FUZZ_SECONDS / 4))s"
mkdir -p build-fuzz/corpus-conf
build-fuzz/tests/fuzz/conf_fuzz -max_total_time="$((FUZZ_SECONDS / 4))" -timeout=30 \
  -rss_limit_mb=2048 -print_final_stats=1 build-fuzz/corpus-conf tests/fuzz/corpus/conf 2>&1 | tail -n 8
echo "== fuzzing the uwsgi packet decoder for $((FUZZ_SECONDS / 4))s"
mkdir -p build-fuzz/corpus-uwsgi
build-fuzz/tests/fuzz/uwsgi_fuzz -max_total_time="$((FUZZ_SECONDS / 4))" -timeout=30 \
  -rss_limit_mb=2048 -print_final_stats=1 build-fuzz/corpus-uwsgi tests/fuzz/corpus/uwsgi 2>&1 | tail -n 8
echo "== fuzzing the PROXY protocol parser for $((FUZZ_SECONDS / 4))s"
mkdir -p build-fuzz/corpus-proxy-protocol
build-fuzz/tests/fuzz/proxy_protocol_fuzz -max_total_time="$((FUZZ_SECONDS / 4))" -timeout=30 \
  -rss_limit_mb=2048 -print_final_stats=1 build-fuzz/corpus-proxy-protocol \
  tests/fuzz/corpus/proxy_protocol 2>&1 | tail -n 8
echo "== fuzzing the upstream response parser for $((FUZZ_SECONDS / 4))s"
mkdir -p build-fuzz/corpus-upstream-response
build-fuzz/tests/fuzz/upstream_response_fuzz -max_total_time="$((FUZZ_SECONDS / 4))" -timeout=30 \
  -rss_limit_mb=2048 -print_final_stats=1 build-fuzz/corpus-upstream-response \
  tests/fuzz/corpus/upstream_response 2>&1 | tail -n 8
echo "== fuzzing the DNS response reader for $((FUZZ_SECONDS / 8))s"
mkdir -p build-fuzz/corpus-dns
build-fuzz/tests/fuzz/dns_fuzz -max_total_time="$((FUZZ_SECONDS / 8))" -timeout=30 \
  -rss_limit_mb=2048 -print_final_stats=1 build-fuzz/corpus-dns tests/fuzz/corpus/dns 2>&1 | tail -n 8
echo "== testssl.sh (waiting for it)"
if ! wait "$testssl_pid"; then
  cat build/testssl.log
  exit 1
fi
trap kill_test_leftovers EXIT
tail -n 1 build/testssl.log
echo "== all tests passed"
