#include "config/uwsgi_ini.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace portico::config {
namespace {

UwsgiIniPlace place() {
  UwsgiIniPlace p;
  p.given = "deploy/uwsgi.ini";
  p.absolute = "/srv/mysite/deploy/uwsgi.ini";
  p.section = "uwsgi";
  p.startDir = "/srv/mysite";
  p.hostname = "web1";
  p.startTime = 1700000000;
  p.cpus = 4;
  p.uid = 33;
  p.userName = "www-data";
  p.gid = 33;
  p.environment = {{"HOME", "/root"}, {"UWSGI_SITE", "from-env"}};
  return p;
}

std::vector<std::string> words(const UwsgiIni& ini) {
  std::vector<std::string> out;
  for (const ConfigWord& w : ini.words) out.push_back(w.word);
  return out;
}

UwsgiIni translate(const std::string& text, const UwsgiIniPlace& where = place()) {
  UwsgiIni out;
  std::string error;
  EXPECT_TRUE(translateUwsgiIni(text, where, out, error)) << error;
  return out;
}

std::string failure(const std::string& text) {
  UwsgiIni out;
  std::string error;
  EXPECT_FALSE(translateUwsgiIni(text, place(), out, error)) << text;
  return error;
}

using Words = std::vector<std::string>;

TEST(UwsgiIniTest, ATutorialFileBecomesPorticoWords) {
  UwsgiIni ini = translate(
      "# comment\n"
      "; another\n"
      "[uwsgi]\n"
      "chdir = /srv/mysite\n"
      "module = mysite.wsgi:application\n"
      "home = /srv/venv\n"
      "master = true\n"
      "processes = 4\n"
      "threads = 2\n"
      "socket = /run/mysite.sock\n"
      "chmod-socket = 664\n"
      "vacuum = true\n"
      "harakiri = 30\n"
      "max-requests = 5000\n"
      "reload-on-rss = 256\n"
      "env = DJANGO_SETTINGS_MODULE=mysite.settings\n"
      "static-map = /static=/srv/mysite/static\n"
      "uid = www-data\n"
      "gid = www-data\n"
      "pidfile = /run/mysite.pid\n"
      "touch-reload = /srv/mysite/reload\n"
      "die_on_term = true\n");
  EXPECT_EQ(words(ini),
            (Words{"--chdir=/srv/mysite", "--virtualenv=/srv/venv", "--workers=4", "--threads=2",
                   "--uwsgi-socket=unix:/run/mysite.sock", "--chmod-socket=664", "--timeout=30",
                   "--max-requests=5000", "--max-worker-memory=256",
                   "--env=DJANGO_SETTINGS_MODULE=mysite.settings",
                   "--static=/static=/srv/mysite/static", "--user=www-data", "--group=www-data",
                   "--pid=/run/mysite.pid", "--touch-reload=/srv/mysite/reload",
                   "mysite.wsgi:application", "--access-logfile=-"}));
  EXPECT_TRUE(ini.notes.empty());
  EXPECT_EQ(ini.words.at(0).line, 4);
  EXPECT_EQ(ini.words.at(15).line, 5);  // the app, at module's line
}

TEST(UwsgiIniTest, MagicVariablesAsUwsgiPrintsThem) {
  // Checked against uWSGI 2.0.21's `print` with the same file layout.
  UwsgiIni ini = translate(
      "[uwsgi]\n"
      "print = d=%d p=%p s=%s n=%n e=%e c=%c o=%o v=%v pct=%% q=%q k=%k 0=%0 1=%1 2=%2 3=%3\n"
      "print = h=%h u=%u U=%U g=%g t=%t\n");
  ASSERT_EQ(ini.notes.size(), 2u);
  EXPECT_EQ(ini.notes[0],
            "d=/srv/mysite/deploy/ p=/srv/mysite/deploy/uwsgi.ini s=uwsgi.ini n=uwsgi e=ini "
            "c=deploy o=deploy/uwsgi.ini v=/srv/mysite pct=% q= k=4 0=srv 1=mysite 2=deploy 3=");
  EXPECT_EQ(ini.notes[1], "h=web1 u=33 U=www-data g=33 t=1700000000");
}

TEST(UwsgiIniTest, PlaceholdersResolveOnceTheSectionIsRead) {
  // The first definition wins, a use may come before it, one may use another; an unknown one
  // is kept as written (uWSGI's log-format uses %(name) too); UWSGI_NAME from the environment.
  UwsgiIni ini = translate(
      "[uwsgi]\n"
      "print = early=%(base)\n"
      "base = /srv/%(project)\n"
      "project = mysite\n"
      "base = /ignored\n"
      "chdir = %(base)\n"
      "print = unknown=%(nope) env=%(site) $(HOME) $(NOT_SET)\n"
      "set-placeholder = port=3031\n"
      "socket = :%(port)\n"
      "print = option=%(chdir)\n");
  EXPECT_EQ(ini.notes,
            (Words{"early=/srv/mysite", "unknown=%(nope) env=from-env /root $(NOT_SET)",
                   "option=/srv/mysite"}));
  EXPECT_EQ(words(ini), (Words{"--chdir=/srv/mysite", "--uwsgi-socket=0.0.0.0:3031",
                               "--access-logfile=-"}));
}

TEST(UwsgiIniTest, SectionsAndTheFileSyntax) {
  UwsgiIniPlace staging = place();
  staging.section = "staging";
  const char* text =
      "[uwsgi]\n"
      "processes = 2\n"
      "[staging]\n"
      "processes = 1\n"
      "  http   =   127.0.0.1:8000  \n"
      "print = a ; b # not a comment\n";
  EXPECT_EQ(words(translate(text)), (Words{"--workers=2", "--access-logfile=-"}));
  UwsgiIni ini = translate(text, staging);
  EXPECT_EQ(words(ini), (Words{"--workers=1", "--bind=127.0.0.1:8000", "--access-logfile=-"}));
  EXPECT_EQ(ini.notes, (Words{"a ; b # not a comment"}));
}

TEST(UwsgiIniTest, AddressesAppAndLogs) {
  EXPECT_EQ(words(translate("[uwsgi]\nhttp-socket = :8000\nsocket = app.sock\n"
                            "http11-socket = [::1]:8001\nwsgi-file = src/app.py\n"
                            "callable = app\nlogto = /var/log/app.log\n")),
            (Words{"--bind=0.0.0.0:8000", "--uwsgi-socket=unix:app.sock", "--bind=[::1]:8001",
                   "--error-logfile=/var/log/app.log", "--capture-output",
                   "--pythonpath=src", "app:app", "--access-logfile=/var/log/app.log"}));
  EXPECT_EQ(words(translate("[uwsgi]\nmodule = mysite.wsgi\ndaemonize = /tmp/u.log\n"
                            "disable-logging = true\nbuffer-size = 32768\nchmod-socket =\n")),
            (Words{"--daemon", "--error-logfile=/tmp/u.log", "--capture-output",
                   "--limit-request-line=32768", "--limit-request-field_size=32768",
                   "--chmod-socket=666", "mysite.wsgi:application"}));
  EXPECT_EQ(words(translate("[uwsgi]\nwsgi-file = wsgi.py\nplugins = python3, http\n"
                            "lazy-apps = true\nenable-threads = 1\n")),
            (Words{"--pythonpath=.", "wsgi:application", "--access-logfile=-"}));
}

TEST(UwsgiIniTest, NotesForFalseFlags) {
  UwsgiIni ini = translate("[uwsgi]\nmaster = false\nvacuum = off\nlazy-apps = no\n"
                           "enable-threads = true\n");
  ASSERT_EQ(ini.notes.size(), 3u);
  EXPECT_EQ(ini.notes[0],
            "deploy/uwsgi.ini:2: master: set to false, but portico always runs a master process");
  EXPECT_NE(ini.notes[1].find("uwsgi.ini:3: vacuum: set to false, but portico always removes"),
            std::string::npos);
  EXPECT_NE(ini.notes[2].find("uwsgi.ini:4: lazy-apps: portico imports the app in each worker"),
            std::string::npos);
}

TEST(UwsgiIniTest, ErrorsNameFileLineAndOption) {
  EXPECT_EQ(failure("[uwsgi]\nmodule = x\nfrobnicate = 1\n").substr(0, 42),
            "deploy/uwsgi.ini:3: frobnicate: unknown uW");
  EXPECT_EQ(failure("[other]\nmodule = x\n"), "deploy/uwsgi.ini: no [uwsgi] section");
  EXPECT_EQ(failure("[uwsgi]\nprocesses = %k0x\n"),
            "deploy/uwsgi.ini:2: processes: invalid value \"40x\" (a whole number)");
  EXPECT_EQ(failure("[uwsgi\n"), "deploy/uwsgi.ini:1: a section header without ']'");
  EXPECT_EQ(failure("[uwsgi]\n= 3\n"), "deploy/uwsgi.ini:2: an option name is missing before '='");
  EXPECT_EQ(failure("[uwsgi]\nmaster\n"), "deploy/uwsgi.ini:2: expected KEY = VALUE, found master");
  EXPECT_EQ(failure("[uwsgi]\na = %(b)\nb = %(a)\nchdir = %(a)\n"),
            "deploy/uwsgi.ini:2: a: placeholders refer to each other without end");
  for (const char* bad : {"socket = @abstract", "socket = =3", "http = :80,foo",
                          "socket =", "static-map = static", "env = =x",
                          "plugins = php", "buffer-size = 0", "callable =", "chdir ="}) {
    std::string error = failure(std::string("[uwsgi]\n") + bad + "\n");
    EXPECT_EQ(error.rfind("deploy/uwsgi.ini:2: ", 0), 0u) << bad << ": " << error;
  }
  EXPECT_NE(failure("[uwsgi]\nmodule = a\nwsgi-file = b.py\n").find("both module and wsgi-file"),
            std::string::npos);
  EXPECT_NE(failure("[uwsgi]\nwsgi-file = my-app.py\n").find("NAME.py"), std::string::npos);
  // A key never used as a placeholder is an unknown option, not silently dropped.
  EXPECT_NE(failure("[uwsgi]\nproject = x\n").find("project: unknown uWSGI option"),
            std::string::npos);
}

}  // namespace
}  // namespace portico::config
