#include "config/cli.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "config/version.h"

namespace portico::config {
namespace {

using Action = CliResult::Action;

// What the parser gives, read as one: the process-level Config and the site-describing flags
// (which siteFromFlags has written into config.site).
struct Parsed : Config, GunicornFlags {
  explicit Parsed(const CliResult& r) : Config(r.config), GunicornFlags(r.flags) {}
};

CliResult parse(std::vector<std::string> args) {
  args.insert(args.begin(), "portico");
  return parseCommandLine(args);
}

std::string joined(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += (out.empty() ? "" : " ") + a;
  return out;
}

std::string cwd() { return std::filesystem::current_path().string(); }

using EnvList = std::vector<std::pair<std::string, std::string>>;
using Paths = std::vector<std::string>;

TEST(CliTest, NoArgumentsGivesDefaults) {
  CliResult r = parse({});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  Parsed c(r);
  EXPECT_TRUE(c.binds.empty());
  EXPECT_EQ(c.backlog, 2048);
  EXPECT_DOUBLE_EQ(c.keepAliveSeconds, 2.0);
  EXPECT_DOUBLE_EQ(c.timeoutSeconds, 30.0);
  EXPECT_DOUBLE_EQ(c.headerTimeoutSeconds, 60.0);
  EXPECT_DOUBLE_EQ(c.bodyTimeoutSeconds, 60.0);
  EXPECT_DOUBLE_EQ(c.sendTimeoutSeconds, 60.0);
  EXPECT_EQ(c.limitRequestLine, 4094u);
  EXPECT_EQ(c.limitRequestFields, 100u);
  EXPECT_EQ(c.limitRequestFieldSize, 8190u);
  EXPECT_EQ(c.limitRequestBody, 1024u * 1024u);
  EXPECT_EQ(c.accessLogFile, "");
  EXPECT_EQ(c.accessLogFormat, "");
  EXPECT_EQ(c.errorLogFile, "-");
  EXPECT_EQ(c.logLevel, LogLevel::kInfo);
  EXPECT_EQ(c.pidFile, "");
  EXPECT_EQ(c.chdir, "");
  EXPECT_TRUE(c.serverHeader);
  EXPECT_TRUE(c.statics.empty());
  EXPECT_EQ(c.wsgiApp, "");
  EXPECT_EQ(c.wsgiMount, "/");
  EXPECT_TRUE(c.pythonPath.empty());
  EXPECT_TRUE(c.env.empty());
  EXPECT_EQ(c.virtualenv, "");  // the runtime falls back to $VIRTUAL_ENV; the parser reads no env
  EXPECT_EQ(c.threads, 1);
  EXPECT_TRUE(r.message.empty());
}

struct ValueCase {
  std::vector<std::string> args;
  std::function<void(const Parsed&)> check;
};

// Each case must parse (kRun) and pass its check; stops at the first that does not parse.
void expectParsed(const std::vector<ValueCase>& cases) {
  for (const auto& tc : cases) {
    SCOPED_TRACE(joined(tc.args));
    CliResult r = parse(tc.args);
    ASSERT_EQ(r.action, Action::kRun) << r.message;
    tc.check(Parsed(r));
  }
}

TEST(CliTest, EveryOptionInEverySpelling) {
  const std::vector<ValueCase> cases = {
      {{"--backlog", "64"}, [](const Parsed& c) { EXPECT_EQ(c.backlog, 64); }},
      {{"--protocol", "uwsgi", "-b", "unix:/run/a.sock", "-b", ":9000"},
       [](const Parsed& c) {
         EXPECT_TRUE(c.uwsgi);
         // Every bind speaks uwsgi (the site's listens, which the runtime reads).
         ASSERT_EQ(c.site.servers.size(), 1u);
         ASSERT_EQ(c.site.servers[0].listens.size(), 2u);
         for (const auto& l : c.site.servers[0].listens) EXPECT_TRUE(l.uwsgi);
       }},
      {{"--protocol=http"}, [](const Parsed& c) {
         EXPECT_FALSE(c.uwsgi);
         EXPECT_FALSE(c.site.servers[0].listens[0].uwsgi);
       }},
      {{"--backlog=64"}, [](const Parsed& c) { EXPECT_EQ(c.backlog, 64); }},
      {{"--backlog", " 1_024 "}, [](const Parsed& c) { EXPECT_EQ(c.backlog, 1024); }},
      {{"--backlog", "+7"}, [](const Parsed& c) { EXPECT_EQ(c.backlog, 7); }},
      {{"--keep-alive", "5"}, [](const Parsed& c) { EXPECT_DOUBLE_EQ(c.keepAliveSeconds, 5); }},
      {{"--keep-alive=0.5"}, [](const Parsed& c) { EXPECT_DOUBLE_EQ(c.keepAliveSeconds, 0.5); }},
      {{"--keep-alive", "0"}, [](const Parsed& c) { EXPECT_DOUBLE_EQ(c.keepAliveSeconds, 0); }},
      {{"--timeout", "0"}, [](const Parsed& c) { EXPECT_DOUBLE_EQ(c.timeoutSeconds, 0); }},
      {{"-t", "90"}, [](const Parsed& c) { EXPECT_DOUBLE_EQ(c.timeoutSeconds, 90); }},
      {{"-t90"}, [](const Parsed& c) { EXPECT_DOUBLE_EQ(c.timeoutSeconds, 90); }},
      {{"-t=90"}, [](const Parsed& c) { EXPECT_DOUBLE_EQ(c.timeoutSeconds, 90); }},
      {{"--timeout=2.5"}, [](const Parsed& c) { EXPECT_DOUBLE_EQ(c.timeoutSeconds, 2.5); }},
      {{"--header-timeout", "10"},
       [](const Parsed& c) { EXPECT_DOUBLE_EQ(c.headerTimeoutSeconds, 10); }},
      {{"--header-timeout=1m"},
       [](const Parsed& c) { EXPECT_DOUBLE_EQ(c.headerTimeoutSeconds, 60); }},
      {{"--body-timeout", "500ms"},
       [](const Parsed& c) { EXPECT_DOUBLE_EQ(c.bodyTimeoutSeconds, 0.5); }},
      {{"--body-timeout=30s"}, [](const Parsed& c) { EXPECT_DOUBLE_EQ(c.bodyTimeoutSeconds, 30); }},
      {{"--send-timeout", "1h"},
       [](const Parsed& c) { EXPECT_DOUBLE_EQ(c.sendTimeoutSeconds, 3600); }},
      {{"--send-timeout=1d"},
       [](const Parsed& c) { EXPECT_DOUBLE_EQ(c.sendTimeoutSeconds, 86400); }},
      {{"--limit-request-line", "1000"},
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestLine, 1000u); }},
      {{"--limit-request-line=8190"},
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestLine, 8190u); }},
      {{"--limit-request-line", "9000"},  // gunicorn clamps to 8190
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestLine, 8190u); }},
      {{"--limit-request-line", "0"},  // unlimited
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestLine, 1024u * 1024u); }},
      {{"--limit-request-fields", "50"},
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestFields, 50u); }},
      {{"--limit-request-fields=40000"},
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestFields, 32768u); }},
      {{"--limit-request-fields", "0"},
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestFields, 32768u); }},
      {{"--limit-request-field_size", "100"},
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestFieldSize, 100u); }},
      {{"--limit-request-field-size=200"},
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestFieldSize, 200u); }},
      {{"--limit-request-field_size=0"},
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestFieldSize, 1024u * 1024u); }},
      {{"--limit-request-field_size", "20000"},
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestFieldSize, 20000u); }},
      {{"--limit-request-body", "100"},
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestBody, 100u); }},
      {{"--limit-request-body=0"}, [](const Parsed& c) { EXPECT_EQ(c.limitRequestBody, 0u); }},
      {{"--limit-request-body", "8k"},
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestBody, 8192u); }},
      {{"--limit-request-body", "8K"},
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestBody, 8192u); }},
      {{"--limit-request-body", "10m"},
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestBody, 10u << 20); }},
      {{"--limit-request-body", "10M"},
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestBody, 10u << 20); }},
      {{"--limit-request-body", "2g"},
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestBody, uint64_t{2} << 30); }},
      {{"--limit-request-body", "2G"},
       [](const Parsed& c) { EXPECT_EQ(c.limitRequestBody, uint64_t{2} << 30); }},
      {{"--access-logfile", "-"}, [](const Parsed& c) { EXPECT_EQ(c.accessLogFile, "-"); }},
      {{"--access-logfile=/var/log/a.log"},
       [](const Parsed& c) { EXPECT_EQ(c.accessLogFile, "/var/log/a.log"); }},
      {{"--access-logformat", "%(h)s %(r)s"},
       [](const Parsed& c) { EXPECT_EQ(c.accessLogFormat, "%(h)s %(r)s"); }},
      {{"--access-logformat=%(s)s=%(b)s"},
       [](const Parsed& c) { EXPECT_EQ(c.accessLogFormat, "%(s)s=%(b)s"); }},
      {{"--error-logfile", "err.log"},
       [](const Parsed& c) { EXPECT_EQ(c.errorLogFile, "err.log"); }},
      {{"--error-logfile=-"}, [](const Parsed& c) { EXPECT_EQ(c.errorLogFile, "-"); }},
      {{"--log-file", "x.log"}, [](const Parsed& c) { EXPECT_EQ(c.errorLogFile, "x.log"); }},
      {{"--log-file=y.log"}, [](const Parsed& c) { EXPECT_EQ(c.errorLogFile, "y.log"); }},
      {{"--log-level", "debug"}, [](const Parsed& c) { EXPECT_EQ(c.logLevel, LogLevel::kDebug); }},
      {{"--log-level=info"}, [](const Parsed& c) { EXPECT_EQ(c.logLevel, LogLevel::kInfo); }},
      {{"--log-level", "warning"},
       [](const Parsed& c) { EXPECT_EQ(c.logLevel, LogLevel::kWarning); }},
      {{"--log-level", "ERROR"}, [](const Parsed& c) { EXPECT_EQ(c.logLevel, LogLevel::kError); }},
      {{"--log-level", "critical"},
       [](const Parsed& c) { EXPECT_EQ(c.logLevel, LogLevel::kCritical); }},
      {{"--pid", "/run/p.pid"}, [](const Parsed& c) { EXPECT_EQ(c.pidFile, "/run/p.pid"); }},
      {{"--pid=p.pid"}, [](const Parsed& c) { EXPECT_EQ(c.pidFile, "p.pid"); }},
      {{"-p", "q.pid"}, [](const Parsed& c) { EXPECT_EQ(c.pidFile, "q.pid"); }},
      {{"-pq.pid"}, [](const Parsed& c) { EXPECT_EQ(c.pidFile, "q.pid"); }},
      {{"--chdir", "/srv/app"}, [](const Parsed& c) { EXPECT_EQ(c.chdir, "/srv/app"); }},
      {{"--chdir=/srv/app/"}, [](const Parsed& c) { EXPECT_EQ(c.chdir, "/srv/app"); }},
      {{"--chdir", "/srv/x/../app"}, [](const Parsed& c) { EXPECT_EQ(c.chdir, "/srv/app"); }},
      {{"--chdir", "sub"}, [](const Parsed& c) { EXPECT_EQ(c.chdir, cwd() + "/sub"); }},
      {{"--no-server-header"}, [](const Parsed& c) { EXPECT_FALSE(c.serverHeader); }},
      {{"--threads", "4"}, [](const Parsed& c) { EXPECT_EQ(c.threads, 4); }},
      {{"--worker-connections", "64"},
       [](const Parsed& c) { EXPECT_EQ(c.workerConnections, 64); }},
      {{"app:app"}, [](const Parsed& c) { EXPECT_EQ(c.workerConnections, 1000); }},
      {{"--threads=1"}, [](const Parsed& c) { EXPECT_EQ(c.threads, 1); }},
      {{"--threads", " 16 "}, [](const Parsed& c) { EXPECT_EQ(c.threads, 16); }},
      {{"--thr", "2"}, [](const Parsed& c) { EXPECT_EQ(c.threads, 2); }},
      {{"-e", "A=1"},
       [](const Parsed& c) {
         EXPECT_EQ(c.env, (EnvList{{"A", "1"}}));
       }},
      {{"-eA=1"},
       [](const Parsed& c) {
         EXPECT_EQ(c.env, (EnvList{{"A", "1"}}));
       }},
      {{"-e=A=1"},
       [](const Parsed& c) {
         EXPECT_EQ(c.env, (EnvList{{"A", "1"}}));
       }},
      {{"--env", "A=1"},
       [](const Parsed& c) {
         EXPECT_EQ(c.env, (EnvList{{"A", "1"}}));
       }},
      {{"--env=A=1"},
       [](const Parsed& c) {
         EXPECT_EQ(c.env, (EnvList{{"A", "1"}}));
       }},
      {{"--env", "URL=a=b&c=d"},  // only the first '=' separates KEY from VALUE
       [](const Parsed& c) {
         EXPECT_EQ(c.env, (EnvList{{"URL", "a=b&c=d"}}));
       }},
      {{"--env", "EMPTY="},
       [](const Parsed& c) {
         EXPECT_EQ(c.env, (EnvList{{"EMPTY", ""}}));
       }},
      {{"--env", " A=x y "},  // gunicorn strips the whole setting, not inside it
       [](const Parsed& c) {
         EXPECT_EQ(c.env, (EnvList{{"A", "x y"}}));
       }},
      {{"-e", "A=1", "--env", "B=2", "-eA=3"},  // order kept; main applies them in turn
       [](const Parsed& c) {
         EXPECT_EQ(c.env, (EnvList{{"A", "1"}, {"B", "2"}, {"A", "3"}}));
       }},
      {{"--pythonpath", "/opt/lib"},
       [](const Parsed& c) { EXPECT_EQ(c.pythonPath, (Paths{"/opt/lib"})); }},
      {{"--pythonpath=/a,/b/"},
       [](const Parsed& c) {
         EXPECT_EQ(c.pythonPath, (Paths{"/a", "/b"}));
       }},
      {{"--pythonpath", "/a, /b ,,/c", "--pythonpath", "/d"},
       [](const Parsed& c) {
         EXPECT_EQ(c.pythonPath, (Paths{"/a", "/b", "/c", "/d"}));
       }},
      {{"--pythonpath", "/a,/x/../a/,/b", "--pythonpath=/a"},  // each directory once
       [](const Parsed& c) {
         EXPECT_EQ(c.pythonPath, (Paths{"/a", "/b"}));
       }},
      {{"--pythonpath", "lib"},
       [](const Parsed& c) { EXPECT_EQ(c.pythonPath, Paths{cwd() + "/lib"}); }},
      {{"--pythonpath", ""}, [](const Parsed& c) { EXPECT_TRUE(c.pythonPath.empty()); }},
      {{"--pythonpath", ","}, [](const Parsed& c) { EXPECT_TRUE(c.pythonPath.empty()); }},
      {{"--virtualenv", "/srv/venv/"},
       [](const Parsed& c) { EXPECT_EQ(c.virtualenv, "/srv/venv"); }},
      {{"--virtualenv=/srv/venv"}, [](const Parsed& c) { EXPECT_EQ(c.virtualenv, "/srv/venv"); }},
      {{"--virtualenv", ".venv"},
       [](const Parsed& c) { EXPECT_EQ(c.virtualenv, cwd() + "/.venv"); }},
      {{"--virtualenv", "/a", "--virtualenv", "/b"},
       [](const Parsed& c) { EXPECT_EQ(c.virtualenv, "/b"); }},
      {{"--virt", "/v"}, [](const Parsed& c) { EXPECT_EQ(c.virtualenv, "/v"); }},
      // gunicorn strips string settings.
      {{"--pid", " p.pid "}, [](const Parsed& c) { EXPECT_EQ(c.pidFile, "p.pid"); }},
      // argparse accepts unambiguous prefixes of long options.
      {{"--back", "12"}, [](const Parsed& c) { EXPECT_EQ(c.backlog, 12); }},
      {{"--keep=3"}, [](const Parsed& c) { EXPECT_DOUBLE_EQ(c.keepAliveSeconds, 3); }},
      {{"--no-server"}, [](const Parsed& c) { EXPECT_FALSE(c.serverHeader); }},
      // A lone "-" and negative numbers are values, not options.
      {{"--access-logfile", "-", "--backlog", "3"},
       [](const Parsed& c) {
         EXPECT_EQ(c.accessLogFile, "-");
         EXPECT_EQ(c.backlog, 3);
       }},
      // The last occurrence wins for single-valued options.
      {{"--backlog", "1", "--backlog", "2"}, [](const Parsed& c) { EXPECT_EQ(c.backlog, 2); }},
  };
  expectParsed(cases);
}

struct BindCase {
  std::string spec;
  BindAddress::Kind kind;
  std::string host;
  uint16_t port;
  std::string path;
};

TEST(CliTest, BindForms) {
  using K = BindAddress::Kind;
  const std::vector<BindCase> cases = {
      {"127.0.0.1:8080", K::kTcp, "127.0.0.1", 8080, ""},
      {"0.0.0.0:80", K::kTcp, "0.0.0.0", 80, ""},
      {"localhost", K::kTcp, "localhost", 8000, ""},
      {"Example.COM:81", K::kTcp, "example.com", 81, ""},
      {"10.0.0.1", K::kTcp, "10.0.0.1", 8000, ""},
      {":9000", K::kTcp, "", 9000, ""},
      {"[::]:8000", K::kTcp, "::", 8000, ""},
      {"[::1]:8001", K::kTcp, "::1", 8001, ""},
      {"[::1]", K::kTcp, "::1", 8000, ""},
      {"[fe80::1%eth0]:80", K::kTcp, "fe80::1%eth0", 80, ""},
      {"127.0.0.1:0", K::kTcp, "127.0.0.1", 0, ""},
      {"127.0.0.1:65535", K::kTcp, "127.0.0.1", 65535, ""},
      {"tcp://127.0.0.1:5000", K::kTcp, "127.0.0.1", 5000, ""},
      {"", K::kTcp, "0.0.0.0", 8000, ""},
      {"unix:/tmp/portico.sock", K::kUnix, "", 0, "/tmp/portico.sock"},
      {"unix:///tmp/portico.sock", K::kUnix, "", 0, "/tmp/portico.sock"},
      {"unix:rel.sock", K::kUnix, "", 0, "rel.sock"},
  };
  for (const auto& tc : cases) {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"-b", tc.spec}, {"--bind", tc.spec}, {"--bind=" + tc.spec}, {"-b" + tc.spec}}) {
      if (tc.spec.empty() && args.size() == 1 && args[0] == "-b") continue;  // "-b" alone
      SCOPED_TRACE(joined(args));
      CliResult r = parse(args);
      ASSERT_EQ(r.action, Action::kRun) << r.message;
      ASSERT_EQ(r.flags.binds.size(), 1u);
      const BindAddress& b = r.flags.binds[0];
      EXPECT_EQ(b.kind, tc.kind);
      EXPECT_EQ(b.host, tc.host);
      EXPECT_EQ(b.port, tc.port);
      EXPECT_EQ(b.path, tc.path);
      EXPECT_EQ(b.spec, tc.spec);
    }
  }
}

TEST(CliTest, BindIsRepeatableAndKeepsOrder) {
  CliResult r = parse({"-b", "127.0.0.1:1", "--bind=[::1]:2", "-bunix:/tmp/s"});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  ASSERT_EQ(r.flags.binds.size(), 3u);
  EXPECT_EQ(r.flags.binds[0].port, 1);
  EXPECT_EQ(r.flags.binds[1].host, "::1");
  EXPECT_EQ(r.flags.binds[2].path, "/tmp/s");
}

TEST(CliTest, StaticMountsResolveAgainstChdirGivenLater) {
  CliResult r = parse({"--static", "/static/=./staticfiles/", "--static=/media=media", "--static",
                       "/abs/=/var/www/abs", "--chdir", "/srv/app"});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  ASSERT_EQ(r.flags.statics.size(), 3u);
  EXPECT_EQ(r.flags.statics[0].prefix, "/static/");
  EXPECT_EQ(r.flags.statics[0].directory, "/srv/app/staticfiles/");
  EXPECT_EQ(r.flags.statics[1].prefix, "/media/");
  EXPECT_EQ(r.flags.statics[1].directory, "/srv/app/media/");
  EXPECT_EQ(r.flags.statics[2].prefix, "/abs/");
  EXPECT_EQ(r.flags.statics[2].directory, "/var/www/abs/");
  EXPECT_EQ(r.config.chdir, "/srv/app");
}

TEST(CliTest, StaticMountsResolveAgainstCwdWithoutChdir) {
  CliResult r = parse({"--static", "/s/=files/../static"});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  ASSERT_EQ(r.flags.statics.size(), 1u);
  EXPECT_EQ(r.flags.statics[0].directory, cwd() + "/static/");
}

TEST(CliTest, StaticMountsResolveAgainstRelativeChdir) {
  CliResult r = parse({"--chdir", "app", "--static", "/s/=static"});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  EXPECT_EQ(r.config.chdir, cwd() + "/app");
  EXPECT_EQ(r.flags.statics[0].directory, cwd() + "/app/static/");
}

struct AppCase {
  std::vector<std::string> args;
  std::string wsgiApp;
};

TEST(CliTest, AppModuleIsThePositionalArgument) {
  const std::vector<AppCase> cases = {
      {{"myapp.wsgi:application"}, "myapp.wsgi:application"},
      {{"--bind", "0.0.0.0:8000", "myapp.wsgi:application"}, "myapp.wsgi:application"},
      {{"myapp.wsgi:application", "--bind", "0.0.0.0:8000"}, "myapp.wsgi:application"},
      {{"-b", "0.0.0.0:8000", "app:app", "--threads", "2"}, "app:app"},
      {{"myapp"}, "myapp"},  // kept as given: the loader reads it as myapp:application
      {{"pkg.sub.mod"}, "pkg.sub.mod"},
      {{"_private9.x_1:app"}, "_private9.x_1:app"},
      {{"app:create_app()"}, "app:create_app()"},
      {{"app:create_app('a:b', x=1)"}, "app:create_app('a:b', x=1)"},
      {{"caf\xc3\xa9:app"}, "caf\xc3\xa9:app"},  // non-ASCII identifiers are Python 3 names
      {{" app:app "}, "app:app"},
      {{"--", "app:app"}, "app:app"},
      {{"--no-server-header", "app:app"}, "app:app"},  // a flag takes no value
      {{"--access-logfile", "-", "app:app"}, "app:app"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(joined(tc.args));
    CliResult r = parse(tc.args);
    ASSERT_EQ(r.action, Action::kRun) << r.message;
    EXPECT_EQ(r.flags.wsgiApp, tc.wsgiApp);
  }
}

TEST(CliTest, GunicornStyleWsgiCommandLine) {
  CliResult r =
      parse({"--bind", "0.0.0.0:8000", "--chdir", "/srv/site", "--pythonpath", "src,../lib", "-e",
             "DJANGO_SETTINGS_MODULE=site.settings", "--env", "DEBUG=0", "--threads", "8",
             "--virtualenv", "venv", "--static", "/static/=staticfiles", "site.wsgi:application"});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  Parsed c(r);
  ASSERT_EQ(c.binds.size(), 1u);
  EXPECT_EQ(c.binds[0].host, "0.0.0.0");
  EXPECT_EQ(c.binds[0].port, 8000);
  EXPECT_EQ(c.wsgiApp, "site.wsgi:application");
  EXPECT_EQ(c.chdir, "/srv/site");
  EXPECT_EQ(c.pythonPath, (Paths{"/srv/site/src", "/srv/lib"}));
  EXPECT_EQ(c.env, (EnvList{{"DJANGO_SETTINGS_MODULE", "site.settings"}, {"DEBUG", "0"}}));
  EXPECT_EQ(c.threads, 8);
  EXPECT_EQ(c.virtualenv, "/srv/site/venv");
  ASSERT_EQ(c.statics.size(), 1u);
  EXPECT_EQ(c.statics[0].directory, "/srv/site/staticfiles/");
}

TEST(CliTest, PythonPathAndVirtualenvResolveAgainstChdirGivenLater) {
  CliResult r = parse({"--pythonpath", "a,/abs/b", "--virtualenv", "./env/", "--pythonpath=c/..",
                       "--chdir", "/srv/app"});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  EXPECT_EQ(r.flags.pythonPath, (Paths{"/srv/app/a", "/abs/b", "/srv/app"}));
  EXPECT_EQ(r.flags.virtualenv, "/srv/app/env");
}

TEST(CliTest, PythonPathAndVirtualenvResolveAgainstRelativeChdir) {
  CliResult r = parse({"--chdir", "app", "--pythonpath", "lib", "--virtualenv", "../venv"});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  EXPECT_EQ(r.flags.pythonPath, Paths{cwd() + "/app/lib"});
  EXPECT_EQ(r.flags.virtualenv, cwd() + "/venv");
}

TEST(CliTest, HelpListsEveryOptionWithDefaults) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"-h"}, {"--help"}, {"--hel"}, {"--backlog", "5", "-h", "--frobnicate"}, {"-hv"}}) {
    SCOPED_TRACE(joined(args));
    CliResult r = parse(args);
    ASSERT_EQ(r.action, Action::kHelp);
    const std::string& h = r.message;
    EXPECT_TRUE(h.starts_with("usage: portico [OPTIONS] [APP_MODULE]  "));
    for (const char* needle : {"-h, --help",
                               "-v, --version",
                               "-b ADDRESS, --bind ADDRESS",
                               "[127.0.0.1:8000]",
                               "--backlog INT",
                               "[2048]",
                               "-t INT, --timeout INT",
                               "[30]",
                               "--keep-alive INT",
                               "[2]",
                               "--limit-request-line INT",
                               "[4094]",
                               "--limit-request-fields INT",
                               "[100]",
                               "--limit-request-field_size INT",
                               "--limit-request-field-size INT",
                               "[8190]",
                               "--access-logfile FILE",
                               "--access-logformat STRING",
                               "--error-logfile FILE",
                               "--log-file FILE",
                               "--log-level LEVEL",
                               "[info]",
                               "-p FILE, --pid FILE",
                               "--chdir CHDIR",
                               "--static PREFIX=DIR",
                               "--limit-request-body SIZE",
                               "[1m]",
                               "--header-timeout SECONDS",
                               "--body-timeout SECONDS",
                               "--send-timeout SECONDS",
                               "[60]",
                               "--no-server-header",
                               "portico options (not in gunicorn)",
                               "positional arguments:\n  APP_MODULE",
                               "MODULE:CALLABLE",
                               "\noptions:\n",
                               "\nserver socket:\n",
                               "\nworker processes:\n",
                               "\nsecurity:\n",
                               "\nlogging:\n",
                               "\nserver mechanics:\n",
                               "--threads INT",
                               "--pythonpath STRING",
                               "-e ENV, --env ENV",
                               "--virtualenv DIR",
                               "[$VIRTUAL_ENV]",
                               "-w INT, --workers INT",
                               "--max-requests INT",
                               "--max-requests-jitter INT",
                               "--graceful-timeout INT",
                               "--preload",
                               "--max-worker-memory MB",
                               "-s SIGNAL",
                               "--certfile"}) {
      EXPECT_NE(h.find(needle), std::string::npos) << needle;
    }
    // Sections in gunicorn's order, portico's own after them.
    size_t socket = h.find("\nserver socket:\n");
    size_t workers = h.find("\nworker processes:\n");
    size_t mechanics = h.find("\nserver mechanics:\n");
    size_t ours = h.find("\nportico options (not in gunicorn):\n");
    size_t unsupported = h.find("gunicorn options not supported yet");
    ASSERT_NE(unsupported, std::string::npos);
    EXPECT_LT(socket, workers);
    EXPECT_LT(workers, mechanics);
    EXPECT_LT(mechanics, ours);
    EXPECT_LT(ours, unsupported);
    EXPECT_LT(h.find("--bind ADDRESS"), workers);
    EXPECT_GT(h.find("--threads INT"), workers);
    EXPECT_GT(h.find("--env ENV"), mechanics);
    EXPECT_GT(h.find("--virtualenv DIR"), ours);
    // Supported options are no longer in the "not supported" list.
    std::string rejected = h.substr(unsupported);
    for (const char* name : {"--threads", "--env", "--pythonpath", "--virtualenv", "--bind"}) {
      EXPECT_EQ(rejected.find(name), std::string::npos) << name;
    }
    EXPECT_NE(h.back(), '\n');
  }
}

TEST(CliTest, Version) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"-v"}, {"--version"}, {"--vers"}, {"-vh"}, {"-b", "x:1", "-v"}}) {
    SCOPED_TRACE(joined(args));
    CliResult r = parse(args);
    ASSERT_EQ(r.action, Action::kVersion);
    EXPECT_EQ(r.message, std::string("portico ") + kPorticoVersion);
  }
  EXPECT_EQ(std::string(kPorticoVersion), "0.1.0");
}

TEST(CliTest, ShortFlagClusterEndingWithAValue) {
  // argparse: "-vb x" is -v then -b x; -v acts first.
  CliResult r = parse({"-vb", "x"});
  EXPECT_EQ(r.action, Action::kVersion);
}

struct ErrorCase {
  std::vector<std::string> args;
  std::string message;
};

TEST(CliTest, ErrorMessages) {
  const std::vector<ErrorCase> cases = {
      {{"--frobnicate"}, "portico: error: unrecognized arguments: --frobnicate"},
      {{"--frobnicate=1"}, "portico: error: unrecognized arguments: --frobnicate=1"},
      {{"--frob", "--frab"}, "portico: error: unrecognized arguments: --frob --frab"},
      {{"-x"}, "portico: error: unrecognized arguments: -x"},
      {{"--=x"}, "portico: error: unrecognized arguments: --=x"},
      {{"--frob", "value"}, "portico: error: unrecognized arguments: --frob"},
      {{"app:one", "two"}, "portico: error: unrecognized arguments: two"},
      {{"app:one", "two", "three"}, "portico: error: unrecognized arguments: two three"},
      {{"app:one", "--frob", "two"}, "portico: error: unrecognized arguments: --frob"},
      {{"--", "app:one", "-b"}, "portico: error: unrecognized arguments: -b"},
      {{""},
       "portico: error: argument APP_MODULE: invalid value: '' (expected MODULE:CALLABLE, e.g. "
       "myapp.wsgi:application)"},
      {{"--", "-b"},
       "portico: error: argument APP_MODULE: invalid value: '-b' (MODULE must be a dotted Python "
       "module name, e.g. myapp.wsgi)"},
      {{":app"},
       "portico: error: argument APP_MODULE: invalid value: ':app' (MODULE must be a dotted "
       "Python module name, e.g. myapp.wsgi)"},
      {{"my-app:app"},
       "portico: error: argument APP_MODULE: invalid value: 'my-app:app' (MODULE must be a "
       "dotted Python module name, e.g. myapp.wsgi)"},
      {{"myapp/wsgi.py"},
       "portico: error: argument APP_MODULE: invalid value: 'myapp/wsgi.py' (a Python file? "
       "give its module and callable, e.g. myproject.wsgi:application)"},
      {{"site.conf"},
       "portico: error: argument APP_MODULE: invalid value: 'site.conf' (a configuration file? "
       "give it as -c FILE)"},
      // An unknown option is reported as such, before the value it took for the app; one
      // close to a known option gets a suggestion.
      {{"--bnd", "0.0.0.0:8030", "app"},
       "portico: error: unrecognized arguments: --bnd (--bnd is not an option; did you mean "
       "--bind?)"},
      {{"--wrokers=2", "app:x"},
       "portico: error: unrecognized arguments: --wrokers=2 (--wrokers is not an option; did "
       "you mean --workers?)"},
      {{"9app"},
       "portico: error: argument APP_MODULE: invalid value: '9app' (MODULE must be a dotted "
       "Python module name, e.g. myapp.wsgi)"},
      {{".app"},
       "portico: error: argument APP_MODULE: invalid value: '.app' (MODULE must be a dotted "
       "Python module name, e.g. myapp.wsgi)"},
      {{"a..b:app"},
       "portico: error: argument APP_MODULE: invalid value: 'a..b:app' (MODULE must be a dotted "
       "Python module name, e.g. myapp.wsgi)"},
      {{"app.:app"},
       "portico: error: argument APP_MODULE: invalid value: 'app.:app' (MODULE must be a dotted "
       "Python module name, e.g. myapp.wsgi)"},
      {{"app:"},
       "portico: error: argument APP_MODULE: invalid value: 'app:' (CALLABLE after ':' is empty)"},
      {{"--threads"}, "portico: error: argument --threads: expected one argument"},
      {{"--threads", "0"}, "portico: error: argument --threads: invalid value: '0' (must be >= 1)"},
      {{"--threads", "-2"},
       "portico: error: argument --threads: invalid value: '-2' (must be >= 1)"},
      {{"--threads=two"}, "portico: error: argument --threads: invalid int value: 'two'"},
      {{"--threads", "99999999999"},
       "portico: error: argument --threads: invalid value: '99999999999' (too large)"},
      {{"-e"}, "portico: error: argument -e/--env: expected one argument"},
      {{"--env", "FOO"},
       "portico: error: argument -e/--env: invalid value: 'FOO' (expected KEY=VALUE)"},
      {{"-eFOO"}, "portico: error: argument -e/--env: invalid value: 'FOO' (expected KEY=VALUE)"},
      {{"--env", ""}, "portico: error: argument -e/--env: invalid value: '' (expected KEY=VALUE)"},
      {{"--env", "=x"}, "portico: error: argument -e/--env: invalid value: '=x' (KEY is empty)"},
      {{"--env", " =x"}, "portico: error: argument -e/--env: invalid value: ' =x' (KEY is empty)"},
      {{"--env=="}, "portico: error: argument -e/--env: invalid value: '=' (KEY is empty)"},
      {{"--pythonpath"}, "portico: error: argument --pythonpath: expected one argument"},
      {{"--virtualenv"}, "portico: error: argument --virtualenv: expected one argument"},
      {{"--virtualenv", " "},
       "portico: error: argument --virtualenv: invalid value: ' ' (expected a directory)"},
      {{"--v"}, "portico: error: ambiguous option: --v could match --version, --virtualenv"},
      {{"--t", "1"},
       "portico: error: ambiguous option: --t could match --threads, --timeout, "
       "--touch-reload, --tolerate-dangerous-framing"},
      {{"-b"}, "portico: error: argument -b/--bind: expected one argument"},
      {{"--bind"}, "portico: error: argument -b/--bind: expected one argument"},
      {{"-b", "-v"}, "portico: error: argument -b/--bind: expected one argument"},
      {{"-b", "--"}, "portico: error: argument -b/--bind: expected one argument"},
      {{"--backlog"}, "portico: error: argument --backlog: expected one argument"},
      {{"--pid", "--chdir", "x"}, "portico: error: argument -p/--pid: expected one argument"},
      {{"--log-file"},
       "portico: error: argument --error-logfile/--log-file: expected one argument"},
      {{"--limit-request-field-size"},
       "portico: error: argument --limit-request-field_size/--limit-request-field-size: "
       "expected one argument"},
      {{"--backlog", "x"}, "portico: error: argument --backlog: invalid int value: 'x'"},
      {{"--backlog=x"}, "portico: error: argument --backlog: invalid int value: 'x'"},
      {{"--backlog", "0x10"}, "portico: error: argument --backlog: invalid int value: '0x10'"},
      {{"--backlog", "1.5"}, "portico: error: argument --backlog: invalid int value: '1.5'"},
      {{"--backlog", ""}, "portico: error: argument --backlog: invalid int value: ''"},
      {{"--backlog", "0"}, "portico: error: argument --backlog: invalid value: '0' (must be >= 1)"},
      {{"--backlog", "-5"},
       "portico: error: argument --backlog: invalid value: '-5' (must be >= 1)"},
      {{"--backlog", "99999999999"},
       "portico: error: argument --backlog: invalid value: '99999999999' (too large)"},
      {{"--limit-request-line", "-1"},
       "portico: error: argument --limit-request-line: invalid value: '-1' (must be 0 or more)"},
      {{"--limit-request-fields", "many"},
       "portico: error: argument --limit-request-fields: invalid int value: 'many'"},
      {{"--limit-request-field_size", "-2"},
       "portico: error: argument --limit-request-field_size/--limit-request-field-size: invalid "
       "value: '-2' (must be 0 or more)"},
      {{"--timeout", "abc"},
       "portico: error: argument -t/--timeout: invalid time value: 'abc' (seconds, or a number "
       "with an ms/s/m/h/d unit)"},
      {{"--keep-alive", "-1"},
       "portico: error: argument --keep-alive: invalid time value: '-1' (seconds, or a number "
       "with an ms/s/m/h/d unit)"},
      {{"--header-timeout", "5x"},
       "portico: error: argument --header-timeout: invalid time value: '5x' (seconds, or a "
       "number with an ms/s/m/h/d unit)"},
      {{"--body-timeout", "inf"},
       "portico: error: argument --body-timeout: invalid time value: 'inf' (seconds, or a number "
       "with an ms/s/m/h/d unit)"},
      {{"--send-timeout", "nan"},
       "portico: error: argument --send-timeout: invalid time value: 'nan' (seconds, or a number "
       "with an ms/s/m/h/d unit)"},
      {{"--limit-request-body", "1.5m"},
       "portico: error: argument --limit-request-body: invalid size value: '1.5m' (bytes, or a "
       "number with a k, m or g suffix)"},
      {{"--limit-request-body", "10t"},
       "portico: error: argument --limit-request-body: invalid size value: '10t' (bytes, or a "
       "number with a k, m or g suffix)"},
      {{"--limit-request-body", "99999999999999999999g"},
       "portico: error: argument --limit-request-body: invalid size value: "
       "'99999999999999999999g' (bytes, or a number with a k, m or g suffix)"},
      {{"--log-level", "bogus"},
       "portico: error: argument --log-level: invalid choice: 'bogus' (choose from 'debug', "
       "'info', 'warning', 'error', 'critical')"},
      {{"--chdir", ""},
       "portico: error: argument --chdir: invalid value: '' (expected a directory)"},
      {{"--static", "static"},
       "portico: error: argument --static: invalid value: 'static' (expected PREFIX=DIR, e.g. "
       "/static/=./staticfiles/)"},
      {{"--static", "static/=dir"},
       "portico: error: argument --static: invalid value: 'static/=dir' (PREFIX must start with "
       "'/')"},
      {{"--static", "/s/="},
       "portico: error: argument --static: invalid value: '/s/=' (DIR is empty)"},
      {{"--static", "/s=a", "--static", "/s/=b"},
       "portico: error: argument --static: invalid value: '/s/=b' (PREFIX /s/ is already "
       "mounted)"},
      {{"-b", "127.0.0.1:99999"},
       "portico: error: argument -b/--bind: invalid address '127.0.0.1:99999': the port must be "
       "a number from 0 to 65535"},
      {{"-b", "127.0.0.1:-1"},
       "portico: error: argument -b/--bind: invalid address '127.0.0.1:-1': the port must be a "
       "number from 0 to 65535"},
      {{"-b", "host:"},
       "portico: error: argument -b/--bind: invalid address 'host:': the port must be a number "
       "from 0 to 65535"},
      {{"-b", "host:http"},
       "portico: error: argument -b/--bind: invalid address 'host:http': the port must be a "
       "number from 0 to 65535"},
      {{"-b", "::1:8000"},
       "portico: error: argument -b/--bind: invalid address '::1:8000': write IPv6 addresses in "
       "brackets, e.g. [::1]:8000"},
      {{"-b", "[::1:8000"},
       "portico: error: argument -b/--bind: invalid address '[::1:8000': missing ']'"},
      {{"-b", "[::1]8000"},
       "portico: error: argument -b/--bind: invalid address '[::1]8000': expected ':PORT' after "
       "']'"},
      {{"-b", "[nope]:80"},
       "portico: error: argument -b/--bind: invalid address '[nope]:80': not an IPv6 address "
       "between '[' and ']'"},
      {{"-b", "ho st:80"},
       "portico: error: argument -b/--bind: invalid address 'ho st:80': the host may hold only "
       "letters, digits, '.', '-', '_'"},
      {{"-b", "unix:"},
       "portico: error: argument -b/--bind: invalid address 'unix:': the unix socket path is "
       "empty"},
      {{"-b", "unix:/" + std::string(200, 'x')},
       "portico: error: argument -b/--bind: invalid address 'unix:/" + std::string(200, 'x') +
           "': the unix socket path is longer than 107 bytes"},
      {{"-b", "fd://3"},
       "portico: error: argument -b/--bind: invalid address 'fd://3': binding to an inherited "
       "file descriptor (fd://) is not supported"},
      {{"--version=1"}, "portico: error: argument -v/--version: ignored explicit argument '1'"},
      {{"-vx"}, "portico: error: argument -v/--version: ignored explicit argument 'x'"},
      {{"--no-server-header=yes"},
       "portico: error: argument --no-server-header: ignored explicit argument 'yes'"},
      {{"--limit"},
       "portico: error: ambiguous option: --limit could match --limit-request-line, "
       "--limit-request-fields, --limit-request-field_size, --limit-request-body"},
      {{"--b=1"},
       "portico: error: ambiguous option: --b=1 could match --bind, --backlog, "
       "--body-timeout"},
      // Errors inside a value are reported before unrecognized arguments, as argparse does.
      {{"--frob", "--backlog", "x"}, "portico: error: argument --backlog: invalid int value: 'x'"},
      // Control characters never break the one-line message.
      {{"--backlog", "1\n2"}, "portico: error: argument --backlog: invalid int value: '1\\x0a2'"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(joined(tc.args));
    CliResult r = parse(tc.args);
    EXPECT_EQ(r.action, Action::kError);
    EXPECT_EQ(r.message, tc.message);
    EXPECT_EQ(r.message.find('\n'), std::string::npos);
  }
}

TEST(CliTest, UnsupportedGunicornOptionsAreRejected) {
  const std::vector<ErrorCase> cases = {
      {{"--spew"},
       "--spew: not supported; for a running worker's Python stacks, see --metrics-bind's "
       "/status (?stacks=PID)"},
      {{"--strip-header-spaces"}, "--strip-header-spaces: not supported yet"},
      // With what to use instead, where portico has it.
      {{"--log-syslog"},
       "--log-syslog: not supported; portico logs to files or stderr; under systemd stderr "
       "goes to the journal, and from there to syslog"},
      {{"--log-config-json", "log.json"},
       "--log-config-json: not supported; portico's logs are set by --error-logfile, "
       "--access-logfile, --access-logformat, --log-level and --log-format json (JSON lines)"},
      {{"--paster", "x.ini"},
       "--paste/--paster: not supported; give the WSGI app as MODULE:CALLABLE (PasteDeploy "
       "files are not read)"},
      {{"--reuse-port"},
       "--reuse-port: not supported; portico's workers share the listening sockets and "
       "balance connections themselves"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(joined(tc.args));
    CliResult r = parse(tc.args);
    EXPECT_EQ(r.action, Action::kError);
    EXPECT_EQ(r.message, "portico: error: argument " + tc.message);
  }
}

TEST(CliTest, TlsFlagsFillTheServersTlsSettings) {
  CliResult r = parse({"--certfile", "/c/cert.pem", "--keyfile=/c/key.pem", "--ca-certs",
                       "/c/ca.pem", "--cert-reqs", "2", "--ciphers", "ECDHE-RSA-AES128-GCM-SHA256",
                       "--ssl-version", "TLSv1_2", "--do-handshake-on-connect",
                       "--suppress-ragged-eofs", "-b", "127.0.0.1:1", "-b", "unix:/tmp/x.sock"});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  ASSERT_EQ(r.config.site.servers.size(), 1u);
  const VirtualServer& server = r.config.site.servers[0];
  ASSERT_EQ(server.listens.size(), 2u);
  for (const ListenSpec& listen : server.listens) EXPECT_TRUE(listen.ssl) << listen.spec;
  const TlsServerSettings& tls = server.tls;
  EXPECT_EQ(tls.certificates, Paths{"/c/cert.pem"});
  EXPECT_EQ(tls.keys, Paths{"/c/key.pem"});
  EXPECT_EQ(tls.clientCertificate, "/c/ca.pem");
  EXPECT_EQ(tls.verifyClient, TlsServerSettings::VerifyClient::kOn);
  EXPECT_TRUE(tls.verifyInHandshake);
  EXPECT_EQ(tls.ciphers, "ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(tls.protocols, "TLSv1.2");
  EXPECT_TRUE(r.flags.doHandshakeOnConnect);
  EXPECT_TRUE(r.flags.suppressRaggedEofs);
}

TEST(CliTest, TlsFlagDefaultsAreGunicorns) {
  // No --certfile: plain HTTP, no TLS settings.
  CliResult plain = parse({});
  ASSERT_EQ(plain.action, Action::kRun) << plain.message;
  EXPECT_FALSE(plain.config.site.servers[0].listens[0].ssl);
  EXPECT_TRUE(plain.config.site.servers[0].tls.certificates.empty());

  // The key may be in the certificate file (Python's load_cert_chain with no keyfile); paths
  // are relative to --chdir; CERT_NONE asks for no client certificate; Python's ciphers.
  CliResult r = parse({"--chdir", "/srv", "--certfile", "tls/both.pem", "--cert-reqs", "1"});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  const TlsServerSettings& tls = r.config.site.servers[0].tls;
  EXPECT_EQ(tls.certificates, Paths{"/srv/tls/both.pem"});
  EXPECT_EQ(tls.keys, Paths{"/srv/tls/both.pem"});
  EXPECT_EQ(tls.verifyClient, TlsServerSettings::VerifyClient::kOptional);
  EXPECT_EQ(tls.protocols, "TLSv1.2 TLSv1.3");
  EXPECT_NE(tls.ciphers.find("ECDH+AESGCM"), std::string::npos);
  EXPECT_TRUE(r.config.site.servers[0].listens[0].ssl);
  EXPECT_EQ(parse({"--certfile", "c.pem"}).config.site.servers[0].tls.verifyClient,
            TlsServerSettings::VerifyClient::kOff);
}

TEST(CliTest, SslVersionTakesGunicornsNamesAndNumbers) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"TLS", "TLSv1.2 TLSv1.3"},  {"SSLv23", "TLSv1.2 TLSv1.3"}, {"TLS_SERVER", "TLSv1.2 TLSv1.3"},
      {"2", "TLSv1.2 TLSv1.3"},    {"17", "TLSv1.2 TLSv1.3"},     {"TLSv1", "TLSv1"},
      {"3", "TLSv1"},              {"TLSv1_1", "TLSv1.1"},        {"TLSv1_2", "TLSv1.2"},
      {"5", "TLSv1.2"},
  };
  for (const auto& [value, protocols] : cases) {
    SCOPED_TRACE(value);
    CliResult r = parse({"--certfile", "c.pem", "--ssl-version", value});
    ASSERT_EQ(r.action, Action::kRun) << r.message;
    EXPECT_EQ(r.config.site.servers[0].tls.protocols, protocols);
  }
  const std::vector<ErrorCase> errors = {
      {{"--ssl-version", "SSLv3"},
       "portico: error: argument --ssl-version: Invalid ssl_version: SSLv3. Valid options: "
       "SSLv23, TLS, TLS_CLIENT, TLS_SERVER, TLSv1, TLSv1_1, TLSv1_2"},
      {{"--ssl-version", "TLS_CLIENT"},
       "portico: error: argument --ssl-version: invalid value: 'TLS_CLIENT' (TLS_CLIENT is for "
       "clients: a server cannot use it)"},
      {{"--cert-reqs", "3"},
       "portico: error: argument --cert-reqs: invalid value: '3' (0: CERT_NONE, 1: "
       "CERT_OPTIONAL, 2: CERT_REQUIRED)"},
      {{"--cert-reqs", "x"}, "portico: error: argument --cert-reqs: invalid int value: 'x'"},
      {{"--keyfile", "k.pem"},
       "portico: error: argument --keyfile: needs --certfile (the server's certificate)"},
      {{"--suppress-ragged-eofs=no"},
       "portico: error: argument --suppress-ragged-eofs: ignored explicit argument 'no'"},
  };
  for (const auto& tc : errors) {
    SCOPED_TRACE(joined(tc.args));
    CliResult r = parse(tc.args);
    EXPECT_EQ(r.action, Action::kError);
    EXPECT_EQ(r.message, tc.message);
  }
}

TEST(CliProcessModelTest, DefaultsAreGunicorns) {
  CliResult r = parse({});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  Parsed c(r);
  EXPECT_EQ(c.workers, 1);
  EXPECT_FALSE(c.preload);
  EXPECT_EQ(c.maxRequests, 0u);
  EXPECT_EQ(c.maxRequestsJitter, 0u);
  EXPECT_EQ(c.maxWorkerMemoryMb, 0u);
  EXPECT_DOUBLE_EQ(c.gracefulTimeoutSeconds, 30.0);
  EXPECT_EQ(c.signalCommand, "");
}

TEST(CliProcessModelTest, WorkerOptionsInEverySpelling) {
  const std::vector<ValueCase> cases = {
      {{"-w", "4"}, [](const Config& c) { EXPECT_EQ(c.workers, 4); }},
      {{"-w4"}, [](const Config& c) { EXPECT_EQ(c.workers, 4); }},
      {{"-w=4"}, [](const Config& c) { EXPECT_EQ(c.workers, 4); }},
      {{"--workers", "3"}, [](const Config& c) { EXPECT_EQ(c.workers, 3); }},
      {{"--workers=3"}, [](const Config& c) { EXPECT_EQ(c.workers, 3); }},
      {{"--workers", " 1_0 "}, [](const Config& c) { EXPECT_EQ(c.workers, 10); }},
      {{"--workers", "1"}, [](const Config& c) { EXPECT_EQ(c.workers, 1); }},
      // "auto" is 0 here; the master turns it into the number of cores.
      {{"--workers", "auto"}, [](const Config& c) { EXPECT_EQ(c.workers, 0); }},
      {{"--workers=auto"}, [](const Config& c) { EXPECT_EQ(c.workers, 0); }},
      {{"-wauto"}, [](const Config& c) { EXPECT_EQ(c.workers, 0); }},
      {{"-w", " auto "}, [](const Config& c) { EXPECT_EQ(c.workers, 0); }},
      {{"-w", "auto", "-w", "2"}, [](const Config& c) { EXPECT_EQ(c.workers, 2); }},
      {{"-w", "2", "-w", "auto"}, [](const Config& c) { EXPECT_EQ(c.workers, 0); }},
      {{"--preload"}, [](const Config& c) { EXPECT_TRUE(c.preload); }},
      {{"--preload", "--preload"}, [](const Config& c) { EXPECT_TRUE(c.preload); }},
      {{"--max-requests", "1000"}, [](const Config& c) { EXPECT_EQ(c.maxRequests, 1000u); }},
      {{"--max-requests=0"}, [](const Config& c) { EXPECT_EQ(c.maxRequests, 0u); }},
      {{"--max-requests", "5", "--max-requests", "7"},
       [](const Config& c) { EXPECT_EQ(c.maxRequests, 7u); }},
      {{"--max-requests-jitter", "50"},
       [](const Config& c) { EXPECT_EQ(c.maxRequestsJitter, 50u); }},
      {{"--max-requests-jitter=0"}, [](const Config& c) { EXPECT_EQ(c.maxRequestsJitter, 0u); }},
      {{"--max-requests", "100", "--max-requests-jitter=10"},
       [](const Config& c) {
         EXPECT_EQ(c.maxRequests, 100u);
         EXPECT_EQ(c.maxRequestsJitter, 10u);
       }},
      {{"--max-worker-memory", "512"},
       [](const Config& c) { EXPECT_EQ(c.maxWorkerMemoryMb, 512u); }},
      {{"--max-worker-memory=0"}, [](const Config& c) { EXPECT_EQ(c.maxWorkerMemoryMb, 0u); }},
      {{"--graceful-timeout", "10"},
       [](const Config& c) { EXPECT_DOUBLE_EQ(c.gracefulTimeoutSeconds, 10); }},
      {{"--graceful-timeout=2.5"},
       [](const Config& c) { EXPECT_DOUBLE_EQ(c.gracefulTimeoutSeconds, 2.5); }},
      {{"--graceful-timeout", "0"},
       [](const Config& c) { EXPECT_DOUBLE_EQ(c.gracefulTimeoutSeconds, 0); }},
      {{"--graceful-timeout", "1m"},
       [](const Config& c) { EXPECT_DOUBLE_EQ(c.gracefulTimeoutSeconds, 60); }},
      {{"--graceful-timeout", "500ms"},
       [](const Config& c) { EXPECT_DOUBLE_EQ(c.gracefulTimeoutSeconds, 0.5); }},
      // Unambiguous prefixes, as argparse allows them.
      {{"--workers", "2"}, [](const Config& c) { EXPECT_EQ(c.workers, 2); }},  // exact beats prefix
      {{"--pre"}, [](const Config& c) { EXPECT_TRUE(c.preload); }},
      {{"--prel"}, [](const Config& c) { EXPECT_TRUE(c.preload); }},
      // "--max-requests" is exact even though it is a prefix of --max-requests-jitter.
      {{"--max-requests", "9"},
       [](const Config& c) {
         EXPECT_EQ(c.maxRequests, 9u);
         EXPECT_EQ(c.maxRequestsJitter, 0u);
       }},
      {{"--max-requests-", "3"}, [](const Config& c) { EXPECT_EQ(c.maxRequestsJitter, 3u); }},
      {{"--max-requests-j", "4"}, [](const Config& c) { EXPECT_EQ(c.maxRequestsJitter, 4u); }},
      {{"--max-w=64"}, [](const Config& c) { EXPECT_EQ(c.maxWorkerMemoryMb, 64u); }},
      {{"--gra", "5"}, [](const Config& c) { EXPECT_DOUBLE_EQ(c.gracefulTimeoutSeconds, 5); }},
      {{"--graceful", "6"},
       [](const Config& c) { EXPECT_DOUBLE_EQ(c.gracefulTimeoutSeconds, 6); }},
      // -p takes a value, so "-ps" is a pid file named "s", not -p plus -s.
      {{"-ps"},
       [](const Config& c) {
         EXPECT_EQ(c.pidFile, "s");
         EXPECT_EQ(c.signalCommand, "");
       }},
  };
  expectParsed(cases);
}

TEST(CliProcessModelTest, SignalCommand) {
  const std::vector<ValueCase> cases = {
      {{"-s", "stop"}, [](const Config& c) { EXPECT_EQ(c.signalCommand, "stop"); }},
      {{"-s", "quit"}, [](const Config& c) { EXPECT_EQ(c.signalCommand, "quit"); }},
      {{"-s", "reload"}, [](const Config& c) { EXPECT_EQ(c.signalCommand, "reload"); }},
      {{"-s", "reopen"}, [](const Config& c) { EXPECT_EQ(c.signalCommand, "reopen"); }},
      {{"-squit"}, [](const Config& c) { EXPECT_EQ(c.signalCommand, "quit"); }},
      {{"-s=reload"}, [](const Config& c) { EXPECT_EQ(c.signalCommand, "reload"); }},
      {{"-s", "stop", "-s", "quit"}, [](const Config& c) { EXPECT_EQ(c.signalCommand, "quit"); }},
      {{"-s", "reload", "--pid", "/tmp/x.pid"},
       [](const Config& c) {
         EXPECT_EQ(c.signalCommand, "reload");
         EXPECT_EQ(c.pidFile, "/tmp/x.pid");
       }},
      {{"--pid=/run/p.pid", "-sstop"},
       [](const Config& c) {
         EXPECT_EQ(c.signalCommand, "stop");
         EXPECT_EQ(c.pidFile, "/run/p.pid");
       }},
      // A missing --pid is main's to report: the parser stays pure.
      {{"-s", "reopen"}, [](const Config& c) { EXPECT_EQ(c.pidFile, ""); }},
      // Other options may come along (main ignores them when signalling).
      {{"-s", "quit", "-w", "3", "app:application"},
       [](const Parsed& c) {
         EXPECT_EQ(c.signalCommand, "quit");
         EXPECT_EQ(c.workers, 3);
         EXPECT_EQ(c.wsgiApp, "app:application");
       }},
  };
  expectParsed(cases);
}

TEST(CliProcessModelTest, GunicornStyleProductionLine) {
  CliResult r = parse({"-w", "4", "--max-requests", "1000", "--max-requests-jitter", "50",
                       "--graceful-timeout", "10", "--preload", "--max-worker-memory", "300",
                       "-t", "60", "-b", "0.0.0.0:8000", "--pid", "/run/portico.pid",
                       "mysite.wsgi:application"});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  Parsed c(r);
  EXPECT_EQ(c.workers, 4);
  EXPECT_EQ(c.maxRequests, 1000u);
  EXPECT_EQ(c.maxRequestsJitter, 50u);
  EXPECT_DOUBLE_EQ(c.gracefulTimeoutSeconds, 10);
  EXPECT_TRUE(c.preload);
  EXPECT_EQ(c.maxWorkerMemoryMb, 300u);
  EXPECT_DOUBLE_EQ(c.timeoutSeconds, 60);
  EXPECT_EQ(c.pidFile, "/run/portico.pid");
  EXPECT_EQ(c.wsgiApp, "mysite.wsgi:application");
  EXPECT_EQ(c.signalCommand, "");
}

TEST(CliProcessModelTest, BadValuesAreOneLineErrors) {
  const std::vector<ErrorCase> cases = {
      {{"-w"}, "portico: error: argument -w/--workers: expected one argument"},
      {{"--workers"}, "portico: error: argument -w/--workers: expected one argument"},
      {{"-w", "--preload"}, "portico: error: argument -w/--workers: expected one argument"},
      {{"-w", "0"}, "portico: error: argument -w/--workers: invalid value: '0' (must be >= 1)"},
      {{"-w", "-2"}, "portico: error: argument -w/--workers: invalid value: '-2' (must be >= 1)"},
      {{"-w", "many"}, "portico: error: argument -w/--workers: invalid int value: 'many'"},
      {{"-w", "AUTO"}, "portico: error: argument -w/--workers: invalid int value: 'AUTO'"},
      {{"-w", "1.5"}, "portico: error: argument -w/--workers: invalid int value: '1.5'"},
      {{"--workers="}, "portico: error: argument -w/--workers: invalid int value: ''"},
      {{"-w", "99999999999"},
       "portico: error: argument -w/--workers: invalid value: '99999999999' (too large)"},
      {{"--preload=yes"}, "portico: error: argument --preload: ignored explicit argument 'yes'"},
      {{"--max-requests"}, "portico: error: argument --max-requests: expected one argument"},
      {{"--max-requests", "-1"},
       "portico: error: argument --max-requests: invalid value: '-1' (must be 0 or more)"},
      {{"--max-requests", "lots"},
       "portico: error: argument --max-requests: invalid int value: 'lots'"},
      {{"--max-requests-jitter", "-1"},
       "portico: error: argument --max-requests-jitter: invalid value: '-1' (must be 0 or more)"},
      {{"--max-requests-jitter=x"},
       "portico: error: argument --max-requests-jitter: invalid int value: 'x'"},
      {{"--max-worker-memory", "-5"},
       "portico: error: argument --max-worker-memory: invalid value: '-5' (must be 0 or more)"},
      // Megabytes as a plain int: no size suffixes.
      {{"--max-worker-memory", "1g"},
       "portico: error: argument --max-worker-memory: invalid int value: '1g'"},
      {{"--max-worker-memory", "512m"},
       "portico: error: argument --max-worker-memory: invalid int value: '512m'"},
      {{"--graceful-timeout"},
       "portico: error: argument --graceful-timeout: expected one argument"},
      {{"--graceful-timeout", "-1"},
       "portico: error: argument --graceful-timeout: invalid time value: '-1' (seconds, or a "
       "number with an ms/s/m/h/d unit)"},
      {{"--graceful-timeout", "5x"},
       "portico: error: argument --graceful-timeout: invalid time value: '5x' (seconds, or a "
       "number with an ms/s/m/h/d unit)"},
      {{"-s", "restart"},
       "portico: error: argument -s: invalid choice: 'restart' (choose from 'stop', 'quit', "
       "'reload', 'reopen')"},
      {{"-s", "STOP"},  // choices are exact, as argparse's
       "portico: error: argument -s: invalid choice: 'STOP' (choose from 'stop', 'quit', "
       "'reload', 'reopen')"},
      {{"-s", " stop"},
       "portico: error: argument -s: invalid choice: ' stop' (choose from 'stop', 'quit', "
       "'reload', 'reopen')"},
      {{"-s", ""},
       "portico: error: argument -s: invalid choice: '' (choose from 'stop', 'quit', "
       "'reload', 'reopen')"},
      {{"-s="},
       "portico: error: argument -s: invalid choice: '' (choose from 'stop', 'quit', "
       "'reload', 'reopen')"},
      {{"-s"}, "portico: error: argument -s: expected one argument"},
      {{"-s", "--pid", "x.pid"}, "portico: error: argument -s: expected one argument"},
      // -s has no long spelling: "--s" abbreviates the long options that begin with s.
      {{"--s", "stop"},
       "portico: error: ambiguous option: --s could match --static, --send-timeout, "
       "--spew, --statsd-host, --statsd-prefix, --ssl-version, --suppress-ragged-eofs, "
       "--strip-header-spaces"},
      {{"--signal=stop"}, "portico: error: unrecognized arguments: --signal=stop"},
      // Prefixes shared by the new options and others are ambiguous, as in argparse.
      {{"--max", "1"},
       "portico: error: ambiguous option: --max could match --max-requests, "
       "--max-requests-jitter, --max-worker-memory"},
      {{"--max-r", "1"},
       "portico: error: ambiguous option: --max-r could match --max-requests, "
       "--max-requests-jitter"},
      {{"--wor", "2"},
       "portico: error: ambiguous option: --wor could match --workers, --worker-class, "
       "--worker-connections, --worker-tmp-dir"},
      {{"--worker", "2"},
       "portico: error: ambiguous option: --worker could match --workers, --worker-class, "
       "--worker-connections, --worker-tmp-dir"},
      {{"--gr", "5"},
       "portico: error: ambiguous option: --gr could match --graceful-timeout, --group"},
      {{"--pr"},
       "portico: error: ambiguous option: --pr could match --preload, --protocol, --print-config, "
       "--proxy-protocol, --proxy-allow-from"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(joined(tc.args));
    CliResult r = parse(tc.args);
    EXPECT_EQ(r.action, Action::kError);
    EXPECT_EQ(r.message, tc.message);
    EXPECT_EQ(r.message.find('\n'), std::string::npos);
  }
}

TEST(CliProcessModelTest, HelpHasWorkerAndControlSections) {
  CliResult r = parse({"--help"});
  ASSERT_EQ(r.action, Action::kHelp);
  const std::string& h = r.message;
  size_t workers = h.find("\nworker processes:\n");
  size_t mechanics = h.find("\nserver mechanics:\n");
  size_t control = h.find("\ncontrol (nginx's -s):\n");
  size_t ours = h.find("\nportico options (not in gunicorn):\n");
  size_t unsupported = h.find("gunicorn options not supported yet");
  ASSERT_NE(workers, std::string::npos);
  ASSERT_NE(mechanics, std::string::npos);
  ASSERT_NE(control, std::string::npos);
  ASSERT_NE(ours, std::string::npos);
  ASSERT_NE(unsupported, std::string::npos);
  EXPECT_LT(workers, mechanics);
  EXPECT_LT(mechanics, control);
  EXPECT_LT(control, ours);
  EXPECT_LT(ours, unsupported);
  // Each option under its section: gunicorn's placement for gunicorn's options.
  auto within = [&](const char* needle, size_t begin, size_t end) {
    EXPECT_LT(h.find(needle, begin), end) << needle;
  };
  within("-w INT, --workers INT", workers, mechanics);
  within("--max-requests INT", workers, mechanics);
  within("--max-requests-jitter INT", workers, mechanics);
  within("--graceful-timeout INT", workers, mechanics);
  within("--preload", mechanics, control);
  within("-s SIGNAL", control, ours);
  within("--max-worker-memory MB", ours, unsupported);
  for (const char* word : {"stop", "quit", "reload", "reopen", "--pid"}) {
    within(word, control, ours);
  }
  EXPECT_NE(h.find("'auto'"), std::string::npos);
  // None of them is in the "not supported yet" list any more; neighbours still are.
  std::string rejected = h.substr(unsupported);
  for (const char* name : {"--workers", "--preload", "--max-requests", "--graceful-timeout",
                           "--max-worker-memory", "-s"}) {
    EXPECT_EQ(rejected.find(std::string(name) + ","), std::string::npos) << name;
    EXPECT_EQ(rejected.find(std::string(name) + "\n"), std::string::npos) << name;
  }
  EXPECT_EQ(rejected.find("--worker-connections"), std::string::npos);
  EXPECT_EQ(rejected.find("--worker-class"), std::string::npos);
  for (const char* name : {"--spew", "--paste"}) {
    EXPECT_NE(rejected.find(name), std::string::npos) << name;
  }
}

CliResult parseWith(std::vector<std::string> args, const CliEnvironment& env) {
  args.insert(args.begin(), "portico");
  return parseCommandLine(args, env);
}

TEST(CliEnvironmentTest, GunicornCmdArgsAreReadFirstAndTheCommandLineWins) {
  CliEnvironment env;
  env.gunicornCmdArgs = "--bind=127.0.0.1:8095 --workers=3 -b '[::1]:8096' -e A=1 --threads 2";
  CliResult r = parseWith({"app:x"}, env);
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  ASSERT_EQ(r.flags.binds.size(), 2u);
  EXPECT_EQ(r.flags.binds[0].spec, "127.0.0.1:8095");
  EXPECT_EQ(r.flags.binds[1].spec, "[::1]:8096");
  EXPECT_EQ(r.config.workers, 3);
  EXPECT_EQ(r.flags.threads, 2);
  EXPECT_EQ(r.flags.env, (EnvList{{"A", "1"}}));
  EXPECT_EQ(r.flags.wsgiApp, "app:x");
  // A setting the command line gives replaces the variable's whole (every --bind of it).
  r = parseWith({"-b", "127.0.0.1:9", "-w", "5", "-e", "B=2", "app:x"}, env);
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  ASSERT_EQ(r.flags.binds.size(), 1u);
  EXPECT_EQ(r.flags.binds[0].spec, "127.0.0.1:9");
  EXPECT_EQ(r.config.workers, 5);
  EXPECT_EQ(r.flags.threads, 2);  // not on the command line: the variable's
  EXPECT_EQ(r.flags.env, (EnvList{{"B", "2"}}));
  // Its errors name it.
  env.gunicornCmdArgs = "--workers=x";
  r = parseWith({"app:x"}, env);
  EXPECT_EQ(r.action, Action::kError);
  EXPECT_EQ(r.message, "portico: error: GUNICORN_CMD_ARGS: argument -w/--workers: invalid int value: 'x'");
  env.gunicornCmdArgs = "--bind '127.0.0.1:1";
  r = parseWith({"app:x"}, env);
  EXPECT_EQ(r.message, "portico: error: GUNICORN_CMD_ARGS: No closing quotation");
  env.gunicornCmdArgs = "--wrokers 2";
  r = parseWith({"app:x"}, env);
  EXPECT_EQ(r.message, "portico: error: GUNICORN_CMD_ARGS: unrecognized arguments: --wrokers "
                       "(--wrokers is not an option; did you mean --workers?)");
}

TEST(CliEnvironmentTest, ConfigFileSettingsComeFirst) {
  CliEnvironment env;
  env.configSource = "gunicorn.conf.py";
  env.configWords = {{"--bind=127.0.0.1:1", 3}, {"--bind=127.0.0.1:2", 3}, {"--workers=4", 4},
                     {"--threads=2", 5}, {"--timeout=90", 6}, {"conf.app:application", 7}};
  env.gunicornCmdArgs = "--workers=6";
  CliResult r = parseWith({}, env);
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  ASSERT_EQ(r.flags.binds.size(), 2u);
  EXPECT_EQ(r.config.workers, 6);  // GUNICORN_CMD_ARGS over the file
  EXPECT_EQ(r.flags.threads, 2);
  EXPECT_DOUBLE_EQ(r.config.timeoutSeconds, 90.0);
  EXPECT_EQ(r.flags.wsgiApp, "conf.app:application");  // wsgi_app
  r = parseWith({"-b", "127.0.0.1:3", "--timeout", "5", "cli:app"}, env);
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  ASSERT_EQ(r.flags.binds.size(), 1u);  // the command line's list replaces the file's
  EXPECT_EQ(r.flags.binds[0].spec, "127.0.0.1:3");
  EXPECT_DOUBLE_EQ(r.config.timeoutSeconds, 5.0);
  EXPECT_EQ(r.flags.wsgiApp, "cli:app");
  // An error names the file and the line of the setting.
  env.configWords = {{"--workers=two", 9}};
  r = parseWith({"app:x"}, env);
  EXPECT_EQ(r.message, "portico: error: gunicorn.conf.py:9: argument -w/--workers: invalid int value: 'two'");
  env.configWords = {{"my-app", 2}};
  r = parseWith({}, env);
  EXPECT_TRUE(r.message.starts_with("portico: error: gunicorn.conf.py: argument APP_MODULE: invalid value: 'my-app'"))
      << r.message;
  // -c is recorded for main to read.
  EXPECT_EQ(parse({"-c", "conf/gunicorn.conf.py", "app:x"}).flags.configSource, "conf/gunicorn.conf.py");
  EXPECT_EQ(parse({"--config=python:mysite.conf", "app:x"}).flags.configSource, "python:mysite.conf");
}

TEST(CliEnvironmentTest, WebConcurrencyAndPortAreDefaultsAsInGunicorn) {
  CliEnvironment env;
  env.webConcurrency = "4";
  env.port = "5555";
  CliResult r = parseWith({"app:x"}, env);
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  EXPECT_EQ(r.config.workers, 4);
  EXPECT_TRUE(r.flags.binds.empty());
  EXPECT_EQ(r.flags.fallbackBind.spec, "0.0.0.0:5555");
  ASSERT_EQ(r.config.site.servers.size(), 1u);
  ASSERT_EQ(r.config.site.servers[0].listens.size(), 1u);
  EXPECT_EQ(r.config.site.servers[0].listens[0].port, 5555);
  // The flags win.
  r = parseWith({"-w", "2", "-b", "127.0.0.1:7", "app:x"}, env);
  EXPECT_EQ(r.config.workers, 2);
  EXPECT_EQ(r.config.site.servers[0].listens[0].port, 7);
  env.webConcurrency = "0";
  r = parseWith({"app:x"}, env);
  EXPECT_EQ(r.message, "portico: error: WEB_CONCURRENCY: invalid value: '0' (a number of workers, 1 or more)");
  env.webConcurrency = nullptr;
  env.port = "http";
  r = parseWith({"app:x"}, env);
  EXPECT_EQ(r.action, Action::kError);
  EXPECT_TRUE(r.message.starts_with("portico: error: PORT: invalid value: 'http'")) << r.message;
}

TEST(CliTest, WorkerClassSyncAndGthreadAreAcceptedOthersExplained) {
  for (const char* name : {"sync", "gthread", "egg:gunicorn#sync", "egg:gunicorn#gthread",
                           "gunicorn.workers.sync.SyncWorker",
                           "gunicorn.workers.gthread.ThreadWorker"}) {
    SCOPED_TRACE(name);
    CliResult r = parse({"-k", name, "--threads", "4", "app:x"});
    ASSERT_EQ(r.action, Action::kRun) << r.message;
    EXPECT_EQ(r.flags.threads, 4);
  }
  CliResult r = parse({"-k", "gevent", "app:x"});
  EXPECT_EQ(r.action, Action::kError);
  EXPECT_NE(r.message.find("green threads"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("use -k gthread (or sync) with --threads N"), std::string::npos);
  r = parse({"--worker-class=uvicorn.workers.UvicornWorker", "app:x"});
  EXPECT_NE(r.message.find("an ASGI worker"), std::string::npos) << r.message;
  r = parse({"-k", "mine.Worker", "app:x"});
  EXPECT_NE(r.message.find("not a worker class portico knows"), std::string::npos) << r.message;
}

TEST(CliTest, CheckAndPrintConfig) {
  CliResult r = parse({"--check-config", "-w", "3", "app:x"});
  ASSERT_EQ(r.action, Action::kCheckConfig) << r.message;
  EXPECT_EQ(r.config.workers, 3);
  r = parse({"--print-config", "-b", "127.0.0.1:1", "-b", "unix:/tmp/s", "-e", "K=V",
             "--chdir", "/srv", "-k", "gthread", "--keep-alive", "2.5", "app:x"});
  ASSERT_EQ(r.action, Action::kPrintConfig) << r.message;
  const std::string& m = r.message;
  // gunicorn's layout: sorted names padded to the longest, " = ", Python's str() of the value.
  EXPECT_NE(m.find("\nbind                     = ['127.0.0.1:1', 'unix:/tmp/s']\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\nchdir                    = /srv\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\nraw_env                  = ['K=V']\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\nkeepalive                = 2.5\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\ntimeout                  = 30\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\nworker_class             = gthread\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\npreload_app              = False\n"), std::string::npos) << m;
  EXPECT_TRUE(m.starts_with("accesslog                = None\n")) << m;
}

TEST(CliTest, NoAppModuleLeavesANotice) {
  CliResult r = parse({});
  ASSERT_EQ(r.action, Action::kRun);
  EXPECT_NE(r.notice.find("nothing to serve, every request is answered 404"), std::string::npos);
  EXPECT_NE(r.notice.find("portico -c site.conf"), std::string::npos);
  r = parse({"--static", "/s/=/tmp"});
  EXPECT_NE(r.notice.find("serving the --static files only"), std::string::npos);
  EXPECT_TRUE(parse({"app:x"}).notice.empty());
}

TEST(CliTest, ProcessFlags) {
  CliResult r = parse({"-u", "www-data", "-m", "022", "-n", "shop", "-D", "-R", "--capture-output",
                       "--worker-tmp-dir", "/dev/shm", "--initgroups", "app:x"});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  EXPECT_EQ(r.config.user, "www-data");
  EXPECT_TRUE(r.config.keepGroup);  // gunicorn: --user alone keeps the master's group
  EXPECT_EQ(r.config.umask, 022);
  EXPECT_EQ(r.config.procName, "shop");
  EXPECT_TRUE(r.config.daemon && r.config.stdioInheritance && r.config.captureOutput);
  EXPECT_EQ(r.config.workerTmpDir, "/dev/shm");
  r = parse({"--group", "33", "--user", "33", "app:x"});
  EXPECT_EQ(r.config.group, "33");
  EXPECT_FALSE(r.config.keepGroup);
  for (const auto& [text, mask] : std::vector<std::pair<std::string, int>>{
           {"0", 0}, {"18", 18}, {"0o22", 022}, {"0O77", 077}, {"0x12", 0x12}, {"022", 022},
           {"0777", 0777}}) {
    EXPECT_EQ(parse({"--umask", text}).config.umask, mask) << text;
  }
  for (const char* bad : {"x", "0o8", "01000", "-1", "0x", ""}) {
    r = parse({"--umask", bad});
    EXPECT_EQ(r.action, Action::kError) << bad;
    EXPECT_NE(r.message.find("argument -m/--umask: invalid value"), std::string::npos) << r.message;
  }
}

TEST(CliTest, ReloadFlags) {
  CliResult r = parse({"app:x"});
  EXPECT_FALSE(r.config.reload);
  EXPECT_EQ(r.config.reloadEngine, "auto");
  EXPECT_TRUE(r.config.reloadExtraFiles.empty());
  r = parse({"--reload", "--reload-engine", "poll", "--chdir", "/srv", "--reload-extra-file",
             "templates/a.html", "--reload-extra-file=/etc/app.ini", "app:x"});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  EXPECT_TRUE(r.config.reload);
  EXPECT_EQ(r.config.reloadEngine, "poll");
  // Relative to --chdir, as the worker runs there.
  EXPECT_EQ(r.config.reloadExtraFiles, (Paths{"/srv/templates/a.html", "/etc/app.ini"}));
  for (const char* engine : {"auto", "inotify"}) {
    EXPECT_EQ(parse({"--reload-engine", engine}).config.reloadEngine, engine);
  }
  // gunicorn's message, with its choices.
  r = parse({"--reload-engine", "bogus", "app:x"});
  EXPECT_EQ(r.action, Action::kError);
  EXPECT_EQ(r.message, "portico: error: argument --reload-engine: Invalid reload_engine: "
                       "'bogus' (choose from 'auto', 'poll', 'inotify')");
  r = parse({"--reload=yes"});
  EXPECT_EQ(r.message, "portico: error: argument --reload: ignored explicit argument 'yes'");
  r = parse({"--reload", "--preload", "app:x"});
  EXPECT_EQ(r.action, Action::kError);
  EXPECT_NE(r.message.find("argument --reload: cannot be combined with --preload"),
            std::string::npos) << r.message;
  EXPECT_EQ(parse({"--preload", "app:x"}).action, Action::kRun);
}

TEST(CliTest, ReloadExtraFilesFromEachSourceReplaceTheEarlierList) {
  CliEnvironment env;
  env.configWords = {{"--reload", 1}, {"--reload-extra-file=/conf/a", 2},
                     {"--reload-extra-file=/conf/b", 2}, {"--reload-engine=inotify", 3}};
  CliResult r = parseWith({"app:x"}, env);
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  EXPECT_TRUE(r.config.reload);
  EXPECT_EQ(r.config.reloadEngine, "inotify");
  EXPECT_EQ(r.config.reloadExtraFiles, (Paths{"/conf/a", "/conf/b"}));
  r = parseWith({"--reload-extra-file", "/cli/c", "app:x"}, env);
  EXPECT_EQ(r.config.reloadExtraFiles, (Paths{"/cli/c"}));
  env.configWords = {{"--reload-engine=fsevents", 7}};
  env.configSource = "gunicorn.conf.py";
  r = parseWith({"app:x"}, env);
  EXPECT_EQ(r.message, "portico: error: gunicorn.conf.py:7: argument --reload-engine: Invalid "
                       "reload_engine: 'fsevents' (choose from 'auto', 'poll', 'inotify')");
}

TEST(CliTest, PrintConfigShowsTheReloadSettings) {
  CliResult r = parse({"--print-config", "app:x"});
  ASSERT_EQ(r.action, Action::kPrintConfig) << r.message;
  EXPECT_NE(r.message.find("\nreload                   = False\n"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("\nreload_engine            = auto\n"), std::string::npos);
  EXPECT_NE(r.message.find("\nreload_extra_files       = []\n"), std::string::npos);
  r = parse({"--print-config", "--reload", "--reload-engine", "poll", "--reload-extra-file",
             "/x/a.txt", "app:x"});
  EXPECT_NE(r.message.find("\nreload                   = True\n"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("\nreload_engine            = poll\n"), std::string::npos);
  EXPECT_NE(r.message.find("\nreload_extra_files       = ['/x/a.txt']\n"), std::string::npos);
}

TEST(CliTest, HelpListsTheReloadOptionsUnderDebugging) {
  CliResult r = parse({"--help"});
  ASSERT_EQ(r.action, Action::kHelp);
  const std::string& h = r.message;
  size_t debugging = h.find("\ndebugging:\n");
  size_t unsupported = h.find("gunicorn options not supported yet");
  ASSERT_NE(debugging, std::string::npos);
  for (const char* needle : {"--reload ", "--reload-engine STRING", "--reload-extra-file FILES"}) {
    size_t at = h.find(needle, debugging);
    EXPECT_NE(at, std::string::npos) << needle;
    EXPECT_LT(at, unsupported) << needle;
  }
  EXPECT_NE(h.find("Restart workers when code changes"), std::string::npos);
}

TEST(ShellWordsTest, SplitsAsShlex) {
  std::string error;
  auto words = splitShellWords(" --bind=127.0.0.1:1  'a b' \"c \\\" d\" e\\ f '' \"x\\y\" ", error);
  ASSERT_TRUE(words) << error;
  EXPECT_EQ(*words, (std::vector<std::string>{"--bind=127.0.0.1:1", "a b", "c \" d", "e f", "",
                                             "x\\y"}));
  EXPECT_FALSE(splitShellWords("'open", error));
  EXPECT_EQ(error, "No closing quotation");
  EXPECT_FALSE(splitShellWords("\"open", error));
  EXPECT_FALSE(splitShellWords("tail\\", error));
  EXPECT_EQ(error, "No escaped character");
  EXPECT_TRUE(splitShellWords("", error)->empty());
}


TEST(CliTest, UwsgiSocketsChmodAndTouchReload) {
  Parsed p(parse({"--bind", "127.0.0.1:8000", "--uwsgi-socket", "unix:/tmp/a.sock",
                  "--uwsgi-socket=127.0.0.1:3031", "--chmod-socket", "660", "--touch-reload",
                  "deploy.touch", "--touch-reload", "/etc/app.ini", "app:x"}));
  ASSERT_EQ(p.binds.size(), 3u);
  EXPECT_FALSE(p.binds[0].uwsgi);
  EXPECT_TRUE(p.binds[1].uwsgi);
  EXPECT_EQ(p.binds[1].path, "/tmp/a.sock");
  EXPECT_TRUE(p.binds[2].uwsgi);
  EXPECT_EQ(p.socketMode, 0660);
  EXPECT_EQ(p.touchReload, (Paths{"deploy.touch", "/etc/app.ini"}));
  const auto& listens = p.site.servers.at(0).listens;
  ASSERT_EQ(listens.size(), 3u);
  EXPECT_FALSE(listens[0].uwsgi);
  EXPECT_TRUE(listens[1].uwsgi);
  EXPECT_TRUE(listens[2].uwsgi);
  EXPECT_EQ(listens[1].socketMode, 0660);
  for (const char* bad : {"9", "rw", "77777", ""}) {
    CliResult r = parse({"--chmod-socket", bad, "app:x"});
    EXPECT_EQ(r.action, Action::kError) << bad;
  }
  EXPECT_EQ(parse({"--chmod-socket", "0o640", "app:x"}).flags.socketMode, 0640);
}

TEST(CliTest, AnIniFileOnTheCommandLine) {
  EXPECT_EQ(parse({"--ini", "site/uwsgi.ini"}).flags.iniSource, "site/uwsgi.ini");
  EXPECT_EQ(parse({"--ini=uwsgi.ini:staging"}).flags.iniSource, "uwsgi.ini:staging");
  CliResult positional = parse({"uwsgi.ini", "--workers", "2"});
  EXPECT_EQ(positional.action, Action::kRun);
  EXPECT_EQ(positional.flags.iniSource, "uwsgi.ini");
  EXPECT_TRUE(positional.flags.wsgiApp.empty());
  // In the file's own words (the configuration phase) --ini is refused: no includes.
  CliEnvironment env;
  env.configWords = {ConfigWord{"--ini=other.ini", 4}};
  env.configSource = "uwsgi.ini";
  CliResult nested = parseCommandLine({"portico"}, env);
  EXPECT_EQ(nested.action, Action::kError);
  EXPECT_NE(nested.message.find("uwsgi.ini:4: argument --ini"), std::string::npos)
      << nested.message;
}

}  // namespace
}  // namespace portico::config
