#include "config/nginx_cli.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace portico::config {
namespace {

using Kind = CommandLineMode::Kind;
using Action = NginxCommandLine::Action;

std::vector<std::string> argv(std::vector<std::string> rest) {
  rest.insert(rest.begin(), "portico");
  return rest;
}

TEST(NginxCli, ChoosesTheMode) {
  struct Case {
    std::vector<std::string> args;
    Kind kind;
  };
  const Case cases[] = {
      {{"app:application"}, Kind::kGunicorn},
      {{"-b", "0.0.0.0:80", "app"}, Kind::kGunicorn},
      {{"-t", "30", "app"}, Kind::kGunicorn},  // gunicorn's --timeout
      {{"-t30", "app"}, Kind::kGunicorn},
      {{"-p", "x.pid", "app"}, Kind::kGunicorn},  // gunicorn's --pid beside an APP
      {{"-e", "A=1", "app"}, Kind::kGunicorn},
      {{"-s", "reload", "--pid", "x.pid"}, Kind::kGunicorn},
      {{"-v"}, Kind::kGunicorn},
      {{"-h"}, Kind::kGunicorn},
      {{}, Kind::kGunicorn},
      {{"-c", "site.conf"}, Kind::kNginx},
      {{"-csite.conf"}, Kind::kNginx},
      {{"-t"}, Kind::kNginx},
      {{"-t", "-c", "x"}, Kind::kNginx},
      {{"-tq"}, Kind::kNginx},
      {{"-T"}, Kind::kNginx},
      {{"-V"}, Kind::kNginx},
      {{"-q", "-t"}, Kind::kNginx},
      {{"-g", "daemon off;"}, Kind::kNginx},
      {{"-p", "/srv/site"}, Kind::kNginx},
      {{"-p", "/srv/site", "-s", "reload"}, Kind::kNginx},
      {{"-c", "x.conf", "-e", "stderr"}, Kind::kNginx},
      {{"-c", "x.conf", "-v"}, Kind::kNginx},
      // gunicorn's -c: a Python file or python:MODULE.
      {{"-c", "gunicorn.conf.py"}, Kind::kGunicorn},
      {{"-c", "python:mysite.gunicorn_conf", "app:x"}, Kind::kGunicorn},
      {{"-c", "gunicorn.conf.py", "-t"}, Kind::kError},
      {{"-c", "x.conf", "--bind", "1:2"}, Kind::kError},
      {{"-c", "x.conf", "app:application"}, Kind::kError},
      {{"-t", "-w", "2"}, Kind::kError},
      {{"-c", "x.conf", "-e", "A=1"}, Kind::kError},
  };
  for (const Case& c : cases) {
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    EXPECT_EQ(chooseCommandLineMode(argv(c.args)).kind, c.kind) << joined;
  }
  EXPECT_EQ(chooseCommandLineMode(argv({"-c", "x.conf", "--bind", "1:2"})).message,
            "portico: error: the nginx-style option -c cannot be combined with the "
            "gunicorn-style --bind (give either -c FILE with nginx's options, or gunicorn's "
            "flags and APP)");
  EXPECT_EQ(chooseCommandLineMode(argv({"-c", "g.py", "-T"})).message,
            "portico: error: the nginx-style option -T cannot be combined with the "
            "gunicorn-style -c g.py (give either -c FILE with nginx's options, or gunicorn's "
            "flags and APP)");
  CommandLineMode ini = chooseCommandLineMode(argv({"-c", "deploy/uwsgi.ini"}));
  EXPECT_EQ(ini.kind, CommandLineMode::Kind::kError);
  EXPECT_EQ(ini.message,
            "portico: error: -c deploy/uwsgi.ini: a uWSGI ini file? give it as --ini "
            "deploy/uwsgi.ini");
}

TEST(NginxCli, PathsAndDefaults) {
  NginxCommandLine a = parseNginxCommandLine(argv({"-c", "site.conf"}), "/home/u");
  EXPECT_EQ(a.action, Action::kRun);
  EXPECT_EQ(a.confFile, "/home/u/site.conf");
  EXPECT_EQ(a.prefix, "/home/u/");
  NginxCommandLine b = parseNginxCommandLine(argv({"-p", "/srv/x", "-c", "conf/a.conf"}), "/h");
  EXPECT_EQ(b.confFile, "/srv/x/conf/a.conf");  // relative -c is under -p, as nginx
  EXPECT_EQ(b.prefix, "/srv/x/");
  NginxCommandLine c = parseNginxCommandLine(argv({"-p", "rel"}), "/h");
  EXPECT_EQ(c.prefix, "/h/rel/");
  EXPECT_EQ(c.confFile, "/h/rel/conf/portico.conf");
  NginxCommandLine d = parseNginxCommandLine(argv({"-t"}), "/h");
  EXPECT_EQ(d.confFile, "/h/conf/portico.conf");
  EXPECT_EQ(d.prefix, "/h/conf/");
  NginxCommandLine e = parseNginxCommandLine(argv({"-c", "/etc/p/site.conf", "-p", "/srv/"}), "/h");
  EXPECT_EQ(e.confFile, "/etc/p/site.conf");
  EXPECT_EQ(e.prefix, "/srv/");
}

TEST(NginxCli, Options) {
  NginxCommandLine t = parseNginxCommandLine(argv({"-tq", "-cx.conf", "-g", "pid /p;", "-e", "stderr"}), "/h");
  EXPECT_EQ(t.action, Action::kTest);
  EXPECT_TRUE(t.quiet);
  EXPECT_FALSE(t.dump);
  EXPECT_EQ(t.confFile, "/h/x.conf");
  EXPECT_EQ(t.globalDirectives, "pid /p;");
  EXPECT_EQ(t.errorLog, "-");
  NginxCommandLine dump = parseNginxCommandLine(argv({"-T", "-c", "x", "-e", "logs/e.log"}), "/h");
  EXPECT_EQ(dump.action, Action::kTest);
  EXPECT_TRUE(dump.dump);
  EXPECT_EQ(dump.errorLog, "/h/logs/e.log");
  for (const char* sig : {"stop", "quit", "reload", "reopen"}) {
    NginxCommandLine s = parseNginxCommandLine(argv({"-c", "x", "-s", sig}), "/h");
    EXPECT_EQ(s.action, Action::kSignal);
    EXPECT_EQ(s.signal, sig);
  }
  NginxCommandLine v = parseNginxCommandLine(argv({"-c", "x", "-v"}), "/h");
  EXPECT_EQ(v.action, Action::kVersion);
  EXPECT_EQ(v.message, nginxVersionText(false));
  EXPECT_EQ(nginxVersionText(false).rfind("portico version: portico/", 0), 0u);
  NginxCommandLine V = parseNginxCommandLine(argv({"-V"}), "/h");
  EXPECT_EQ(V.action, Action::kVersion);
  EXPECT_NE(V.message.find("configure arguments:"), std::string::npos);
  EXPECT_NE(V.message.find("built by"), std::string::npos);
  NginxCommandLine h = parseNginxCommandLine(argv({"-?"}), "/h");
  EXPECT_EQ(h.action, Action::kHelp);
  EXPECT_NE(h.message.find("Usage: portico [-?hvVtTq]"), std::string::npos);
}

TEST(NginxCli, ErrorsAsNginx) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"-c"}, "option \"-c\" requires file name"},
      {{"-t", "-p"}, "option \"-p\" requires directory name"},
      {{"-e"}, "option \"-e\" requires file name"},
      {{"-g"}, "option \"-g\" requires parameter"},
      {{"-c", "x", "-s"}, "option \"-s\" requires parameter"},
      {{"-c", "x", "-s", "restart"}, "invalid option: \"-s\" \"restart\""},
      {{"-c", "x", "-x"}, "invalid option: \"x\""},
      {{"-tz"}, "invalid option: \"z\""},
      {{"-c", "x", "extra"}, "invalid option: \"extra\""},
  };
  for (const Case& c : cases) {
    NginxCommandLine r = parseNginxCommandLine(argv(c.args), "/h");
    EXPECT_EQ(r.action, Action::kError);
    EXPECT_EQ(r.message, c.message);
  }
}

TEST(NginxCli, LoadAppliesErrorLogOption) {
  NginxCommandLine cli = parseNginxCommandLine(argv({"-c", "/m/a.conf", "-e", "/m/e.log"}), "/");
  ConfLoader loader;
  loader.addMemoryFile("/m/a.conf", "events {}\n");
  ConfLoadResult r = loadNginxConfig(cli, loader);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.config.errorLogFile, "/m/e.log");
  ConfLoader again;
  again.addMemoryFile("/m/a.conf", "error_log stderr;\nevents {}\n");
  EXPECT_EQ(loadNginxConfig(cli, again).config.errorLogFile, "-");  // the file's wins
}

}  // namespace
}  // namespace portico::config
