"""The example Django site (examples/django) end to end through the real portico binary.

Each module-scoped site is a private copy of the example outside the repository, prepared by its
own setup.sh (migrate, seed, collectstatic, admin user) and served by portico with the static
files under /static/. The PostgreSQL variant runs a throwaway cluster and skips only when
PostgreSQL 15's binaries are absent.
"""

import concurrent.futures
import html
import runpy
from pathlib import Path

import pytest
import requests

from django_support import (EXAMPLE, HTTP_TIMEOUT, AdminClient, PostgresCluster, base_url,
                            clean_env, copy_example, run_setup, start_site)

SEEDED_TITLES = [
    "The C Programming Language",
    "Structure and Interpretation of Computer Programs",
    "UNIX Network Programming",
    "The Pragmatic Programmer",
]


class Site:
    """One prepared copy of the example and the portico serving it."""

    def __init__(self, project, server):
        self.project = Path(project)
        self.server = server
        self.url = base_url(server)

    def get(self, path, **kwargs):
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        return requests.get(self.url + path, **kwargs)

    def static_bytes(self, relative):
        return (self.project / "staticfiles" / relative).read_bytes()


def stop_unless_stopped(server):
    # The *_stops_cleanly_on_sigterm tests normally stop the server themselves; when they were
    # deselected, the exit status is still checked here.
    if server.returncode is None and server.proc.returncode is None:
        server.stop_and_check()


@pytest.fixture(scope="module")
def sqlite_site(tmp_path_factory):
    # The copy sits at <tmp>/examples/django and portico starts in an unrelated directory with an
    # absolute --chdir; test_relative_chdir_like_readme covers the README's relative form.
    root = tmp_path_factory.mktemp("django-sqlite")
    project = copy_example(root / "examples" / "django")
    run_setup(project, clean_env())
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    # -e must reach os.environ before settings import: test_disallowed_host_is_rejected sees it.
    # --limit-request-body lets test_multipart_upload's 3 MB body past the 1 MB default.
    server = start_site(elsewhere, project,
                        ["-e", "DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost",
                         "-e", "DJANGO_SECRET_KEY=portico-integration-test-secret-key-0123456789",
                         "--limit-request-body", "8m"])
    yield Site(project, server)
    stop_unless_stopped(server)


@pytest.fixture(scope="module")
def postgres_site(tmp_path_factory):
    if not PostgresCluster.available():
        pytest.skip("PostgreSQL 15 binaries are not installed (/usr/lib/postgresql/15/bin)")
    cluster = PostgresCluster()
    server = None
    try:
        cluster.start()
        project = copy_example(tmp_path_factory.mktemp("django-pg") / "django")
        # Setup goes through the unix socket, portico through TCP with a password, so both URL
        # forms the settings accept are exercised.
        run_setup(project, clean_env(DATABASE_URL=cluster.socket_url()))
        server = start_site(tmp_path_factory.mktemp("elsewhere-pg"), project,
                            ["-e", "DATABASE_URL=" + cluster.tcp_url(), "--threads", "4"])
        yield Site(project, server)
        stop_unless_stopped(server)
    finally:
        if server is not None and server.alive():
            server.stop()
        cluster.stop()


def check_home_page(site):
    response = site.get("/")
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<link rel="stylesheet" href="/static/catalog/style.css">' in response.text
    for title in SEEDED_TITLES:
        assert html.escape(title) in response.text


def check_stylesheet(site, relative):
    response = site.get("/static/" + relative)
    assert response.status_code == 200
    assert response.headers["Content-Type"].split(";")[0] == "text/css"
    assert response.content == site.static_bytes(relative)
    assert int(response.headers["Content-Length"]) == len(response.content)
    # Only portico's static handler sets validators like these; Django never saw the request.
    etag = response.headers.get("ETag")
    assert etag and "Last-Modified" in response.headers
    again = site.get("/static/" + relative, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""


def check_books(site, vendor):
    response = site.get("/api/books/")
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Catalog-Database"] == vendor
    books = response.json()
    assert [book["title"] for book in books][:len(SEEDED_TITLES)] == SEEDED_TITLES
    assert sorted(books[0]) == ["author", "created_at", "id", "published", "title"]
    assert books[0]["published"] == "1978-02-22"
    return books


def check_admin_round_trip(site, title):
    """Logs in, adds a book through the admin form, sees it in the API and the admin, logs out."""
    admin = AdminClient(site.url)
    login_page = admin.get("/admin/login/")
    assert login_page.status_code == 200
    assert "csrftoken" in admin.session.cookies
    admin.login()

    dashboard = admin.get("/admin/")
    assert dashboard.status_code == 200
    assert "Site administration" in dashboard.text
    assert 'href="/admin/catalog/book/"' in dashboard.text

    added = admin.post_form("/admin/catalog/book/add/", {
        "title": title, "author": "Portico Tester", "published": "2024-06-01", "_save": "Save"})
    assert added.status_code == 302, added.text[:3000]
    assert added.headers["Location"] == "/admin/catalog/book/"

    books = site.get("/api/books/").json()
    matches = [book for book in books if book["title"] == title]
    assert len(matches) == 1 and matches[0]["author"] == "Portico Tester"
    assert matches[0]["published"] == "2024-06-01"
    assert books[-1]["title"] == title  # newest publication date sorts last

    # The search box sends the non-ASCII title through the query string.
    listing = admin.get("/admin/catalog/book/", params={"q": title})
    assert listing.status_code == 200
    assert html.escape(title) in listing.text
    assert "1 result" in listing.text

    # The dashboard has no form; the password-change page supplies a token for the logout POST.
    logged_out = admin.post_form("/admin/logout/", {}, page="/admin/password_change/")
    assert logged_out.status_code == 200
    assert "Logged out" in logged_out.text
    assert "sessionid" not in admin.session.cookies
    after = admin.get("/admin/")
    assert after.status_code == 302
    assert after.headers["Location"].startswith("/admin/login/")


# --- The settings' DATABASE_URL parser, without a server ------------------------------------

def _parse_database_url():
    # run_path compiles the source itself, so no __pycache__ appears in the repository.
    return runpy.run_path(str(EXAMPLE / "mysite" / "database_url.py"))


@pytest.mark.parametrize("url, expected", [
    ("postgres://u:p@db.example:6543/shop",
     {"NAME": "shop", "USER": "u", "PASSWORD": "p", "HOST": "db.example", "PORT": "6543"}),
    ("postgresql://u:p%40ss%3Aw%2Frd@127.0.0.1/shop",
     {"NAME": "shop", "USER": "u", "PASSWORD": "p@ss:w/rd", "HOST": "127.0.0.1", "PORT": ""}),
    ("postgres://u@%2FTmp%2Fpg:5433/shop",
     {"NAME": "shop", "USER": "u", "PASSWORD": "", "HOST": "/Tmp/pg", "PORT": "5433"}),
    ("postgres:///shop?host=/run/postgresql",
     {"NAME": "shop", "USER": "", "PASSWORD": "", "HOST": "/run/postgresql", "PORT": ""}),
    ("postgres://u@[::1]:5432/shop?sslmode=require",
     {"NAME": "shop", "USER": "u", "HOST": "::1", "PORT": "5432", "OPTIONS": {"sslmode": "require"}}),
])
def test_database_url_postgres_forms(url, expected):
    config = _parse_database_url()["parse"](url)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    for key, value in expected.items():
        assert config[key] == value, (key, config)


@pytest.mark.parametrize("url, name", [
    ("sqlite:////abs/path/db.sqlite3", "/abs/path/db.sqlite3"),
    ("sqlite:///relative.sqlite3", "relative.sqlite3"),
])
def test_database_url_sqlite_forms(url, name):
    config = _parse_database_url()["parse"](url)
    assert config == {"ENGINE": "django.db.backends.sqlite3", "NAME": name}


@pytest.mark.parametrize("url", [
    "mysql://u:p@h/db", "postgres://u:p@h:notaport/db", "postgres://u:p@h:5432/", "sqlite://",
    "postgres://u@[::1/db",
])
def test_database_url_rejects_unusable(url):
    module = _parse_database_url()
    with pytest.raises(module["DatabaseUrlError"]):
        module["parse"](url)


def test_generated_files_are_gitignored():
    # What setup.sh generates must stay ignored, not vanish from .gitignore by accident.
    ignored = (EXAMPLE / ".gitignore").read_text().split()
    assert {"staticfiles/", "db.sqlite3"} <= set(ignored)


# --- SQLite, the default database -----------------------------------------------------------

def test_home_page_links_stylesheet(sqlite_site):
    check_home_page(sqlite_site)


def test_site_stylesheet_from_static_handler(sqlite_site):
    check_stylesheet(sqlite_site, "catalog/style.css")


def test_admin_stylesheet_from_static_handler(sqlite_site):
    check_stylesheet(sqlite_site, "admin/css/base.css")


def test_missing_static_file_is_404(sqlite_site):
    assert sqlite_site.get("/static/catalog/missing.css").status_code == 404


def test_api_lists_seeded_books(sqlite_site):
    check_books(sqlite_site, "sqlite")


def test_unknown_page_is_django_404(sqlite_site):
    response = sqlite_site.get("/no/such/page/")
    assert response.status_code == 404
    assert "Not Found" in response.text


def test_admin_requires_login(sqlite_site):
    response = sqlite_site.get("/admin/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/login/?next=/admin/"


def test_admin_login_add_book_logout(sqlite_site):
    check_admin_round_trip(sqlite_site, "Gödel, Escher, Bach — SQLite edition")


def test_wrong_password_is_refused(sqlite_site):
    admin = AdminClient(sqlite_site.url)
    response = admin.post_form("/admin/login/", {"username": "admin", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter the correct username and password" in response.text
    assert "sessionid" not in admin.session.cookies


def test_post_without_csrf_token_is_forbidden(sqlite_site):
    response = requests.post(sqlite_site.url + "/admin/login/", data={"username": "admin"},
                             timeout=HTTP_TIMEOUT, allow_redirects=False)
    assert response.status_code == 403
    assert "CSRF" in response.text


def test_disallowed_host_is_rejected(sqlite_site):
    # DJANGO_ALLOWED_HOSTS came only from portico's -e, so this 400 proves the app saw it.
    assert sqlite_site.get("/api/books/", headers={"Host": "evil.example"}).status_code == 400
    assert sqlite_site.get("/api/books/", headers={"Host": "localhost"}).status_code == 200


def test_multipart_upload(sqlite_site):
    # One file over Django's FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB: streamed to a temporary file) and
    # one small one (kept in memory), read by Django's multipart parser through portico's wsgi.input.
    big = bytes(range(256)) * (12 * 1024)  # 3 MiB
    files = [("file", ("big.bin", big, "application/octet-stream")),
             ("note", ("small.txt", b"hello", "text/plain"))]
    response = requests.post(sqlite_site.url + "/upload/", files=files, timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, response.text[:2000]
    assert response.json() == {"files": [{"field": "file", "name": "big.bin", "size": len(big)},
                                         {"field": "note", "name": "small.txt", "size": 5}]}
    assert sqlite_site.get("/upload/").status_code == 405


def test_visit_counter_in_the_cache(sqlite_site):
    # Without REDIS_URL the cache is the process's memory: POST counts, GET reads, others 405.
    start = sqlite_site.get("/api/visits/").json()["visits"]
    counts = [requests.post(sqlite_site.url + "/api/visits/", timeout=HTTP_TIMEOUT).json()["visits"]
              for _ in range(3)]
    assert counts == [start + 1, start + 2, start + 3]
    assert sqlite_site.get("/api/visits/").json() == {"visits": start + 3}
    response = requests.put(sqlite_site.url + "/api/visits/", timeout=HTTP_TIMEOUT)
    assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD, POST"


def test_relative_chdir_like_readme(sqlite_site):
    # The README's command, run from the directory holding examples/: relative --chdir and a
    # relative static directory, which portico resolves against --chdir.
    workdir = sqlite_site.project.parent.parent
    server = start_site(workdir, "examples/django")
    try:
        site = Site(sqlite_site.project, server)
        check_home_page(site)
        check_stylesheet(site, "catalog/style.css")
        check_books(site, "sqlite")
    finally:
        server.stop_and_check()


def test_sqlite_site_stops_cleanly_on_sigterm(sqlite_site):
    sqlite_site.server.stop_and_check()


# --- PostgreSQL through DATABASE_URL --------------------------------------------------------

def test_postgres_api_lists_seeded_books(postgres_site):
    check_books(postgres_site, "postgresql")


def test_postgres_home_and_static(postgres_site):
    check_home_page(postgres_site)
    check_stylesheet(postgres_site, "admin/css/base.css")


def test_postgres_admin_login_add_book_logout(postgres_site):
    check_admin_round_trip(postgres_site, "Gödel, Escher, Bach — PostgreSQL edition")


def test_postgres_concurrent_requests(postgres_site):
    # --threads 4: Django opens one connection per thread; every answer must still be whole.
    def fetch(_index):
        response = postgres_site.get("/api/books/")
        return response.status_code, response.headers.get("X-Catalog-Database"), len(response.json())

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(fetch, range(32)))
    assert all(status == 200 and vendor == "postgresql" for status, vendor, _n in results), results
    assert len({count for _s, _v, count in results}) == 1


def test_postgres_site_stops_cleanly_on_sigterm(postgres_site):
    postgres_site.server.stop_and_check()
