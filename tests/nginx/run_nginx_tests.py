#!/usr/bin/python3
"""Runs nginx's own test suite (nginx-tests, beside the repository in ../shared/ext) against
portico through portico-as-nginx.sh, two files at a time, and judges the result.

A file skipped for a module portico lacks (declared in modules-absent) is fine. A file that runs
must pass every subtest, except those listed in `expected-failures` (deliberate differences such
as the product name, and known gaps, each with its reason). The run fails on any other failing
subtest, and also on an expected failure that now passes (the list must stay true).

Prints one line per file that ran and the totals: files run / passed / skipped, subtests passed.
Usage: run_nginx_tests.py [--binary build/portico] [--suite DIR] [FILE.t ...]
"""

import argparse
import concurrent.futures
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FILE_TIMEOUT = 300


def load_expectations(path):
    """{file: {subtest name or "*": reason}} from lines `FILE.t: NAME  # reason`."""
    expected = {}
    reason = ""
    with open(path) as handle:
        for raw in handle:
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            if line.startswith("#"):
                reason = line.lstrip("# ").strip() or reason
                continue
            name, _, subtest = line.partition(":")
            expected.setdefault(name.strip(), {})[subtest.strip()] = reason
    return expected


def run_file(suite, path, env):
    """(path, status, passed, failed names, output): status "ok", "skip", "fail"."""
    try:
        proc = subprocess.run(["perl", path], cwd=suite, env=env, capture_output=True,
                              text=True, errors="replace", timeout=FILE_TIMEOUT)
        out, code = proc.stdout, proc.returncode
        err = proc.stderr
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err, code = "timed out after %d s" % FILE_TIMEOUT, -1
    if re.search(r"^1\.\.0 # SKIP", out, re.M):
        return path, "skip", 0, [], out
    planned = re.search(r"^1\.\.(\d+)", out, re.M)
    passed, failed = 0, []
    for m in re.finditer(r"^(not ok|ok) (\d+)(?: - ([^#\n]*))?\s*(#.*)?$", out, re.M):
        ok, number, name, directive = m.group(1), m.group(2), (m.group(3) or "").strip(), m.group(4) or ""
        if ok == "ok" or re.match(r"#\s*(TODO|SKIP)", directive, re.I):
            passed += 1
        else:
            failed.append(name or "#" + number)
    ran = passed + len(failed)
    if not planned or ran != int(planned.group(1)) or (code != 0 and not failed):
        failed.append("*")  # did not start, died, or a bad plan
    return path, "ok" if not failed else "fail", passed, failed, out + err


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "portico"))
    parser.add_argument("--suite", default=os.path.join(ROOT, "..", "shared", "ext", "nginx-tests"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    suite = os.path.abspath(args.suite)
    env = dict(os.environ)
    env["TEST_NGINX_BINARY"] = os.path.join(HERE, "portico-as-nginx.sh")
    env["PORTICO_REAL"] = os.path.abspath(args.binary)
    env.setdefault("TEST_NGINX_GLOBALS", "user root;" if os.geteuid() == 0 else "")
    files = args.files or sorted(f for f in os.listdir(suite) if f.endswith(".t"))
    expected = load_expectations(os.path.join(HERE, "expected-failures"))

    results = []
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for result in pool.map(lambda f: run_file(suite, f, env), files):
            results.append(result)

    problems = []
    ran = ok = skipped = subtests = 0
    for path, status, passed, failed, output in results:
        if status == "skip":
            skipped += 1
            continue
        ran += 1
        subtests += passed
        allowed = expected.get(path, {})
        unexpected = [n for n in failed if n not in allowed and "*" not in allowed]
        fixed = [n for n in allowed if n != "*" and n not in failed]
        if "*" in allowed and not failed:
            fixed.append("*")
        if not failed:
            ok += 1
        verdict = "ok" if not failed else "expected failures: %d" % len(failed)
        if unexpected or fixed:
            verdict = "FAILED"
            if unexpected:
                problems.append("%s: unexpected failures: %s" % (path, ", ".join(unexpected)))
            if fixed:
                problems.append("%s: listed in expected-failures but passed: %s" % (
                    path, ", ".join(fixed)))
            sys.stdout.write(output[-6000:] + "\n")
        print("%-40s %s (%d passed)" % (path, verdict, passed))
    for name in expected:
        if name not in [r[0] for r in results if r[1] != "skip"] and not args.files:
            problems.append("%s: listed in expected-failures but did not run" % name)
    print("nginx-tests: %d files: %d run, %d passed, %d with expected failures, %d skipped "
          "(a module portico lacks, or the file's own conditions: win32, unsafe, ...); %d subtests passed" % (
              len(results), ran, ok, ran - ok, skipped, subtests))
    for p in problems:
        print("PROBLEM: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
