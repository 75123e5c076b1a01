"""Installing portico: `cmake --install` lays out the binary, the man page, the default site and
the systemd units for the prefix given at install time; packaging/deb/build-deb.sh makes a .deb
that `dpkg -i` installs on this machine, whose default site passes `portico -t` and serves a
request, and that `dpkg --purge` removes again."""

import os
import re
import shutil
import subprocess
import urllib.request

import pytest

from servers import free_port, portico_binary
from wsgi_support import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_dir():
    directory = os.path.dirname(portico_binary())
    if not os.path.exists(os.path.join(directory, "CMakeCache.txt")):
        pytest.skip("PORTICO_BIN is not in a CMake build directory")
    return directory


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, timeout=300, **kwargs)


def test_cmake_install_lays_out_the_prefix(tmp_path):
    stage = str(tmp_path / "stage")
    result = run(["cmake", "--install", build_dir(), "--prefix", "/opt/portico"],
                 env=dict(os.environ, DESTDIR=stage))
    assert result.returncode == 0, result.stderr.decode()
    top = stage + "/opt/portico"
    for path in ("bin/portico", "share/man/man8/portico.8", "etc/portico/portico.conf",
                 "etc/portico/mime.types", "etc/portico/uwsgi_params",
                 "share/portico/html/index.html", "lib/systemd/system/portico.service",
                 "lib/systemd/system/portico.socket"):
        assert os.path.exists(os.path.join(top, path)), path
    assert os.access(top + "/bin/portico", os.X_OK)
    unit = open(top + "/lib/systemd/system/portico.service").read()
    assert "ExecStart=/opt/portico/bin/portico -c /opt/portico/etc/portico/portico.conf" in unit
    site = open(top + "/etc/portico/portico.conf").read()
    assert "root /opt/portico/share/portico/html;" in site
    # The man page renders without a warning.
    if shutil.which("groff"):
        man = run(["groff", "-man", "-Tutf8", "-ww", top + "/share/man/man8/portico.8"])
        assert man.returncode == 0 and man.stderr == b"", man.stderr.decode()
        text = re.sub(rb".\x08", b"", man.stdout)  # overstrike (bold) removed
        assert b"SYNOPSIS" in text and b"--metrics-bind" in text


@pytest.mark.skipif(os.environ.get("PORTICO_SANITIZED") == "1",
                    reason="the package is checked with the release build")
def test_deb_installs_serves_and_purges(tmp_path):
    if os.geteuid() != 0 or not shutil.which("dpkg-deb"):
        pytest.skip("needs root and dpkg")
    out = str(tmp_path / "out")
    built = run([os.path.join(ROOT, "packaging/deb/build-deb.sh"), build_dir(), out])
    assert built.returncode == 0, built.stderr.decode()
    deb = built.stdout.decode().strip().splitlines()[-1]
    info = run(["dpkg-deb", "--info", deb]).stdout.decode()
    assert "Package: portico" in info and "libpython3.11-stdlib" in info and "libssl3" in info
    listing = run(["dpkg-deb", "--contents", deb]).stdout.decode()
    assert "./usr/bin/portico" in listing and "./etc/portico/portico.conf" in listing
    installed = run(["dpkg", "-i", deb])
    assert installed.returncode == 0, installed.stdout.decode() + installed.stderr.decode()
    proc = None
    try:
        assert run(["dpkg-query", "-W", "-f=${Status}", "portico"]).stdout == b"install ok installed"
        check = run(["/usr/bin/portico", "-t", "-c", "/etc/portico/portico.conf"])
        assert check.returncode == 0, check.stderr.decode()
        assert b"syntax is ok" in check.stderr
        # The installed site as is, on a free port and with its pid file here.
        port = free_port()
        site = open("/etc/portico/portico.conf").read()
        site = site.replace("listen 8080;", "listen 127.0.0.1:%d;" % port)
        site = site.replace("pid /run/portico.pid;", "pid %s/portico.pid;" % tmp_path)
        site = site.replace("include mime.types;", "include /etc/portico/mime.types;")
        conf = tmp_path / "portico.conf"
        conf.write_text(site)
        proc = subprocess.Popen(["/usr/bin/portico", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

        def page():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=2) as r:
                    return r.read()
            except OSError:
                return None
        wait_until(lambda: page() is not None, 10.0)
        assert b"portico is serving." in page()
        with urllib.request.urlopen("http://127.0.0.1:%d/health/ready" % port, timeout=2) as r:
            assert r.status == 200
        proc.terminate()
        assert proc.wait(15) == 0
        proc = None
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        purged = run(["dpkg", "--purge", "portico"])
    assert purged.returncode == 0, purged.stderr.decode()
    assert not os.path.exists("/usr/bin/portico")
    assert not os.path.exists("/etc/portico/portico.conf")
