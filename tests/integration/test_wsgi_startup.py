"""Loading the WSGI app: MODULE[:CALLABLE], --pythonpath, --chdir, -e, and clear, fast failures."""

import json
import os
import subprocess

import pytest

from servers import free_port, portico_binary
from wsgi_support import APPS_DIR, start_wsgi

FAIL_WITHIN = 8.0  # seconds: an unloadable app must make portico exit at least this fast


def _run_expecting_failure(tmp_path, app, extra=()):
    """Runs portico in an unrelated directory; returns (exit code, stderr + error log text)."""
    error_log = tmp_path / "error.log"
    command = [portico_binary(), "--bind", "127.0.0.1:%d" % free_port(),
               "--error-logfile", str(error_log)] + list(extra) + [app]
    try:
        done = subprocess.run(command, cwd=str(tmp_path), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=FAIL_WITHIN)
    except subprocess.TimeoutExpired:
        pytest.fail("portico still running %.0f s after being given the unloadable app %r" % (FAIL_WITHIN, app))
    log = error_log.read_text("utf-8", "replace") if error_log.exists() else ""
    return done.returncode, done.stderr.decode("utf-8", "replace") + "\n" + log


def _body(server, target):
    with server.connect() as conn:
        response = conn.request("GET", target)
    assert response.status == 200, response
    return response.body


def test_missing_module_fails_fast(tmp_path):
    code, output = _run_expecting_failure(tmp_path, "no_such_module_4c1d:application",
                                          ["--pythonpath", APPS_DIR])
    assert code != 0
    assert "no_such_module_4c1d" in output, output


def test_module_raising_at_import_fails_fast(tmp_path):
    code, output = _run_expecting_failure(tmp_path, "broken_import", ["--pythonpath", APPS_DIR])
    assert code != 0
    assert "marker-broken-import-0d4e" in output, output
    assert "Traceback" in output or "RuntimeError" in output, output


def test_syntax_error_in_module_fails_fast(tmp_path):
    (tmp_path / "bad_syntax_mod.py").write_text("def application(:\n    pass\n")
    code, output = _run_expecting_failure(tmp_path, "bad_syntax_mod", ["--pythonpath", str(tmp_path)])
    assert code != 0
    assert "SyntaxError" in output, output


def test_missing_attribute_fails_fast(tmp_path):
    code, output = _run_expecting_failure(tmp_path, "introspect:does_not_exist_77",
                                          ["--pythonpath", APPS_DIR])
    assert code != 0
    assert "does_not_exist_77" in output, output


def test_not_callable_fails_fast(tmp_path):
    code, output = _run_expecting_failure(tmp_path, "introspect:NOT_CALLABLE", ["--pythonpath", APPS_DIR])
    assert code != 0
    assert "NOT_CALLABLE" in output or "callable" in output.lower(), output


def test_module_not_on_path_without_pythonpath(tmp_path):
    code, output = _run_expecting_failure(tmp_path, "introspect")
    assert code != 0
    assert "introspect" in output, output


def test_module_alone_means_application(launch):
    server = start_wsgi(launch, app="tiny")
    assert _body(server, "/") == b"tiny app\n"


def test_module_and_callable(launch):
    server = start_wsgi(launch, app="introspect:alt_application")
    assert _body(server, "/anything") == b"alt app\n"


def test_dotted_package_module(launch, tmp_path):
    package = tmp_path / "pkg_a1" / "sub"
    package.mkdir(parents=True)
    (tmp_path / "pkg_a1" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "wsgi.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'dotted package\\n']\n")
    server = start_wsgi(launch, app="pkg_a1.sub.wsgi:application", pythonpath=False,
                        args=["--pythonpath", str(tmp_path)])
    assert _body(server, "/") == b"dotted package\n"


def test_pythonpath_comma_list(launch, tmp_path):
    (tmp_path / "other_mod_b2.py").write_text("X = 1\n")
    (tmp_path / "uses_both_b2.py").write_text(
        "import other_mod_b2\n"
        "import introspect\n"
        "application = introspect.application\n")
    server = start_wsgi(launch, app="uses_both_b2", pythonpath=False,
                        args=["--pythonpath", "%s,%s" % (tmp_path, APPS_DIR)])
    assert _body(server, "/hello?i=c") == b"hello c\n"


def test_env_option_visible_in_os_environ(launch):
    server = start_wsgi(launch, args=["-e", "PORTICO_TEST_VAR=hello world",
                                      "--env", "PORTICO_TEST_EQ=a=b=c"])
    first = json.loads(_body(server, "/osenv?key=PORTICO_TEST_VAR"))
    assert first["value"] == "hello world"
    second = json.loads(_body(server, "/osenv?key=PORTICO_TEST_EQ"))
    assert second["value"] == "a=b=c"


def test_env_option_visible_at_import_time(launch, tmp_path):
    (tmp_path / "env_at_import_c3.py").write_text(
        "import os\n"
        "VALUE = os.environ.get('PORTICO_IMPORT_VAR', 'unset').encode()\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [VALUE]\n")
    server = start_wsgi(launch, app="env_at_import_c3", pythonpath=False,
                        args=["--pythonpath", str(tmp_path), "-e", "PORTICO_IMPORT_VAR=seen"])
    assert _body(server, "/") == b"seen"


def test_chdir_makes_app_importable(launch):
    server = start_wsgi(launch, pythonpath=False, args=["--chdir", APPS_DIR])
    info = json.loads(_body(server, "/osenv?key=HOME"))
    assert os.path.realpath(info["cwd"]) == os.path.realpath(APPS_DIR)
    assert os.path.dirname(info["module_file"]) == APPS_DIR


def test_relative_pythonpath_after_chdir(launch):
    parent = os.path.dirname(APPS_DIR)
    server = start_wsgi(launch, pythonpath=False, args=["--chdir", parent, "--pythonpath", "apps"])
    assert _body(server, "/hello?i=rel") == b"hello rel\n"


def test_app_and_static_together(launch, site):
    server = start_wsgi(launch, app="tiny")
    with server.connect() as conn:
        assert conn.request("GET", "/static/a.txt").body == site.files["a.txt"]
        assert conn.request("GET", "/x").body == b"tiny app\n"


def _make_virtualenv(root):
    """A virtualenv-shaped directory (what `python3 -m venv` lays out) holding one package."""
    site = root / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (root / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\n")
    (site / "venv_only_pkg_5e.py").write_text("MARK = b'from-the-virtualenv'\n")
    (site / "venv_extra.pth").write_text(str(root / "extra") + "\n")
    (root / "extra").mkdir()
    (root / "extra" / "pth_only_mod_5e.py").write_text("MARK = b'+pth'\n")
    app_dir = root.parent / "venvapp"
    app_dir.mkdir()
    (app_dir / "venv_app_5e.py").write_text(
        "import venv_only_pkg_5e, pth_only_mod_5e\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [venv_only_pkg_5e.MARK + pth_only_mod_5e.MARK]\n")
    return app_dir


def test_virtualenv_flag_adds_its_site_packages(launch, tmp_path):
    app_dir = _make_virtualenv(tmp_path / "venv")
    server = start_wsgi(launch, app="venv_app_5e", pythonpath=False,
                        args=["--chdir", str(app_dir), "--virtualenv", str(tmp_path / "venv")])
    assert _body(server, "/") == b"from-the-virtualenv+pth"


def test_virtual_env_variable_is_honoured(launch, tmp_path):
    app_dir = _make_virtualenv(tmp_path / "venv")
    env = dict(os.environ, VIRTUAL_ENV=str(tmp_path / "venv"))
    server = start_wsgi(launch, app="venv_app_5e", pythonpath=False,
                        args=["--chdir", str(app_dir)], env=env)
    assert _body(server, "/") == b"from-the-virtualenv+pth"


def test_without_the_virtualenv_the_import_fails(tmp_path):
    app_dir = _make_virtualenv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    done = subprocess.run([portico_binary(), "--bind", "127.0.0.1:%d" % free_port(),
                           "--chdir", str(app_dir), "venv_app_5e"],
                          env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=FAIL_WITHIN)
    assert done.returncode != 0
    assert b"venv_only_pkg_5e" in done.stderr


def test_extension_modules_load_in_the_embedded_interpreter(launch, tmp_path):
    # portico links Debian's libpython3.11.a and exports the Python API for the C extension
    # modules it loads (they link against no libpython): each of these calls into the API from an
    # extension module (lib-dynload, dist-packages) and would fail to load without the exports.
    (tmp_path / "extensions_d4.py").write_text(
        "import _ctypes, _decimal, _json, _sqlite3, _ssl, json, sqlite3, ssl, sys, sysconfig\n"
        "import psycopg2, psycopg2.extensions\n"
        "import decimal, ctypes\n"
        "def application(environ, start_response):\n"
        "    db = sqlite3.connect(':memory:')\n"
        "    db.execute('create table t (x)')\n"
        "    db.executemany('insert into t values (?)', [(i,) for i in range(10)])\n"
        "    report = {\n"
        "        'sum': db.execute('select sum(x) from t').fetchone()[0],\n"
        "        'decimal': str(decimal.Decimal('1.1') + decimal.Decimal('2.2')),\n"
        "        'json_c': json.decoder.c_scanstring is not None,\n"
        "        'ssl': ssl.OPENSSL_VERSION,\n"
        "        'quoted': psycopg2.extensions.QuotedString(\"it's\").getquoted().decode(),\n"
        "        'strlen': ctypes.CDLL(None).strlen(b'portico'),\n"
        "        'stdlib': sysconfig.get_paths()['stdlib'],\n"
        "        'version': sys.version_info[:2],\n"
        "    }\n"
        "    start_response('200 OK', [('Content-Type', 'application/json')])\n"
        "    return [json.dumps(report).encode()]\n")
    server = start_wsgi(launch, app="extensions_d4", pythonpath=False, args=["--pythonpath", str(tmp_path)])
    report = json.loads(_body(server, "/"))
    assert report["sum"] == 45
    assert report["decimal"] == "3.3"
    assert report["json_c"] is True
    assert report["ssl"].startswith("OpenSSL 3")
    assert report["quoted"] == "'it''s'"
    assert report["strlen"] == 7
    assert report["stdlib"] == "/usr/lib/python3.11"
    assert report["version"] == [3, 11]
