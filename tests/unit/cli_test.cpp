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

TEST(CliTest, NoArgumentsGivesDefaults) {
  CliResult r = parse({});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  const Config& c = r.config;
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
  EXPECT_TRUE(r.message.empty());
}

struct ValueCase {
  std::vector<std::string> args;
  std::function<void(const Config&)> check;
};

TEST(CliTest, EveryOptionInEverySpelling) {
  const std::vector<ValueCase> cases = {
      {{"--backlog", "64"}, [](const Config& c) { EXPECT_EQ(c.backlog, 64); }},
      {{"--backlog=64"}, [](const Config& c) { EXPECT_EQ(c.backlog, 64); }},
      {{"--backlog", " 1_024 "}, [](const Config& c) { EXPECT_EQ(c.backlog, 1024); }},
      {{"--backlog", "+7"}, [](const Config& c) { EXPECT_EQ(c.backlog, 7); }},
      {{"--keep-alive", "5"}, [](const Config& c) { EXPECT_DOUBLE_EQ(c.keepAliveSeconds, 5); }},
      {{"--keep-alive=0.5"}, [](const Config& c) { EXPECT_DOUBLE_EQ(c.keepAliveSeconds, 0.5); }},
      {{"--keep-alive", "0"}, [](const Config& c) { EXPECT_DOUBLE_EQ(c.keepAliveSeconds, 0); }},
      {{"--timeout", "0"}, [](const Config& c) { EXPECT_DOUBLE_EQ(c.timeoutSeconds, 0); }},
      {{"-t", "90"}, [](const Config& c) { EXPECT_DOUBLE_EQ(c.timeoutSeconds, 90); }},
      {{"-t90"}, [](const Config& c) { EXPECT_DOUBLE_EQ(c.timeoutSeconds, 90); }},
      {{"-t=90"}, [](const Config& c) { EXPECT_DOUBLE_EQ(c.timeoutSeconds, 90); }},
      {{"--timeout=2.5"}, [](const Config& c) { EXPECT_DOUBLE_EQ(c.timeoutSeconds, 2.5); }},
      {{"--header-timeout", "10"},
       [](const Config& c) { EXPECT_DOUBLE_EQ(c.headerTimeoutSeconds, 10); }},
      {{"--header-timeout=1m"},
       [](const Config& c) { EXPECT_DOUBLE_EQ(c.headerTimeoutSeconds, 60); }},
      {{"--body-timeout", "500ms"},
       [](const Config& c) { EXPECT_DOUBLE_EQ(c.bodyTimeoutSeconds, 0.5); }},
      {{"--body-timeout=30s"}, [](const Config& c) { EXPECT_DOUBLE_EQ(c.bodyTimeoutSeconds, 30); }},
      {{"--send-timeout", "1h"},
       [](const Config& c) { EXPECT_DOUBLE_EQ(c.sendTimeoutSeconds, 3600); }},
      {{"--send-timeout=1d"},
       [](const Config& c) { EXPECT_DOUBLE_EQ(c.sendTimeoutSeconds, 86400); }},
      {{"--limit-request-line", "1000"},
       [](const Config& c) { EXPECT_EQ(c.limitRequestLine, 1000u); }},
      {{"--limit-request-line=8190"},
       [](const Config& c) { EXPECT_EQ(c.limitRequestLine, 8190u); }},
      {{"--limit-request-line", "9000"},  // gunicorn clamps to 8190
       [](const Config& c) { EXPECT_EQ(c.limitRequestLine, 8190u); }},
      {{"--limit-request-line", "0"},  // unlimited
       [](const Config& c) { EXPECT_EQ(c.limitRequestLine, 1024u * 1024u); }},
      {{"--limit-request-fields", "50"},
       [](const Config& c) { EXPECT_EQ(c.limitRequestFields, 50u); }},
      {{"--limit-request-fields=40000"},
       [](const Config& c) { EXPECT_EQ(c.limitRequestFields, 32768u); }},
      {{"--limit-request-fields", "0"},
       [](const Config& c) { EXPECT_EQ(c.limitRequestFields, 32768u); }},
      {{"--limit-request-field_size", "100"},
       [](const Config& c) { EXPECT_EQ(c.limitRequestFieldSize, 100u); }},
      {{"--limit-request-field-size=200"},
       [](const Config& c) { EXPECT_EQ(c.limitRequestFieldSize, 200u); }},
      {{"--limit-request-field_size=0"},
       [](const Config& c) { EXPECT_EQ(c.limitRequestFieldSize, 1024u * 1024u); }},
      {{"--limit-request-field_size", "20000"},
       [](const Config& c) { EXPECT_EQ(c.limitRequestFieldSize, 20000u); }},
      {{"--limit-request-body", "100"},
       [](const Config& c) { EXPECT_EQ(c.limitRequestBody, 100u); }},
      {{"--limit-request-body=0"}, [](const Config& c) { EXPECT_EQ(c.limitRequestBody, 0u); }},
      {{"--limit-request-body", "8k"},
       [](const Config& c) { EXPECT_EQ(c.limitRequestBody, 8192u); }},
      {{"--limit-request-body", "8K"},
       [](const Config& c) { EXPECT_EQ(c.limitRequestBody, 8192u); }},
      {{"--limit-request-body", "10m"},
       [](const Config& c) { EXPECT_EQ(c.limitRequestBody, 10u << 20); }},
      {{"--limit-request-body", "10M"},
       [](const Config& c) { EXPECT_EQ(c.limitRequestBody, 10u << 20); }},
      {{"--limit-request-body", "2g"},
       [](const Config& c) { EXPECT_EQ(c.limitRequestBody, uint64_t{2} << 30); }},
      {{"--limit-request-body", "2G"},
       [](const Config& c) { EXPECT_EQ(c.limitRequestBody, uint64_t{2} << 30); }},
      {{"--access-logfile", "-"}, [](const Config& c) { EXPECT_EQ(c.accessLogFile, "-"); }},
      {{"--access-logfile=/var/log/a.log"},
       [](const Config& c) { EXPECT_EQ(c.accessLogFile, "/var/log/a.log"); }},
      {{"--access-logformat", "%(h)s %(r)s"},
       [](const Config& c) { EXPECT_EQ(c.accessLogFormat, "%(h)s %(r)s"); }},
      {{"--access-logformat=%(s)s=%(b)s"},
       [](const Config& c) { EXPECT_EQ(c.accessLogFormat, "%(s)s=%(b)s"); }},
      {{"--error-logfile", "err.log"},
       [](const Config& c) { EXPECT_EQ(c.errorLogFile, "err.log"); }},
      {{"--error-logfile=-"}, [](const Config& c) { EXPECT_EQ(c.errorLogFile, "-"); }},
      {{"--log-file", "x.log"}, [](const Config& c) { EXPECT_EQ(c.errorLogFile, "x.log"); }},
      {{"--log-file=y.log"}, [](const Config& c) { EXPECT_EQ(c.errorLogFile, "y.log"); }},
      {{"--log-level", "debug"}, [](const Config& c) { EXPECT_EQ(c.logLevel, LogLevel::kDebug); }},
      {{"--log-level=info"}, [](const Config& c) { EXPECT_EQ(c.logLevel, LogLevel::kInfo); }},
      {{"--log-level", "warning"},
       [](const Config& c) { EXPECT_EQ(c.logLevel, LogLevel::kWarning); }},
      {{"--log-level", "ERROR"}, [](const Config& c) { EXPECT_EQ(c.logLevel, LogLevel::kError); }},
      {{"--log-level", "critical"},
       [](const Config& c) { EXPECT_EQ(c.logLevel, LogLevel::kCritical); }},
      {{"--pid", "/run/p.pid"}, [](const Config& c) { EXPECT_EQ(c.pidFile, "/run/p.pid"); }},
      {{"--pid=p.pid"}, [](const Config& c) { EXPECT_EQ(c.pidFile, "p.pid"); }},
      {{"-p", "q.pid"}, [](const Config& c) { EXPECT_EQ(c.pidFile, "q.pid"); }},
      {{"-pq.pid"}, [](const Config& c) { EXPECT_EQ(c.pidFile, "q.pid"); }},
      {{"--chdir", "/srv/app"}, [](const Config& c) { EXPECT_EQ(c.chdir, "/srv/app"); }},
      {{"--chdir=/srv/app/"}, [](const Config& c) { EXPECT_EQ(c.chdir, "/srv/app"); }},
      {{"--chdir", "/srv/x/../app"}, [](const Config& c) { EXPECT_EQ(c.chdir, "/srv/app"); }},
      {{"--chdir", "sub"}, [](const Config& c) { EXPECT_EQ(c.chdir, cwd() + "/sub"); }},
      {{"--no-server-header"}, [](const Config& c) { EXPECT_FALSE(c.serverHeader); }},
      // gunicorn strips string settings.
      {{"--pid", " p.pid "}, [](const Config& c) { EXPECT_EQ(c.pidFile, "p.pid"); }},
      // argparse accepts unambiguous prefixes of long options.
      {{"--back", "12"}, [](const Config& c) { EXPECT_EQ(c.backlog, 12); }},
      {{"--keep=3"}, [](const Config& c) { EXPECT_DOUBLE_EQ(c.keepAliveSeconds, 3); }},
      {{"--no-server"}, [](const Config& c) { EXPECT_FALSE(c.serverHeader); }},
      // A lone "-" and negative numbers are values, not options.
      {{"--access-logfile", "-", "--backlog", "3"},
       [](const Config& c) {
         EXPECT_EQ(c.accessLogFile, "-");
         EXPECT_EQ(c.backlog, 3);
       }},
      // The last occurrence wins for single-valued options.
      {{"--backlog", "1", "--backlog", "2"}, [](const Config& c) { EXPECT_EQ(c.backlog, 2); }},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(joined(tc.args));
    CliResult r = parse(tc.args);
    ASSERT_EQ(r.action, Action::kRun) << r.message;
    tc.check(r.config);
  }
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
      ASSERT_EQ(r.config.binds.size(), 1u);
      const BindAddress& b = r.config.binds[0];
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
  ASSERT_EQ(r.config.binds.size(), 3u);
  EXPECT_EQ(r.config.binds[0].port, 1);
  EXPECT_EQ(r.config.binds[1].host, "::1");
  EXPECT_EQ(r.config.binds[2].path, "/tmp/s");
}

TEST(CliTest, StaticMountsResolveAgainstChdirGivenLater) {
  CliResult r = parse({"--static", "/static/=./staticfiles/", "--static=/media=media", "--static",
                       "/abs/=/var/www/abs", "--chdir", "/srv/app"});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  ASSERT_EQ(r.config.statics.size(), 3u);
  EXPECT_EQ(r.config.statics[0].prefix, "/static/");
  EXPECT_EQ(r.config.statics[0].directory, "/srv/app/staticfiles/");
  EXPECT_EQ(r.config.statics[1].prefix, "/media/");
  EXPECT_EQ(r.config.statics[1].directory, "/srv/app/media/");
  EXPECT_EQ(r.config.statics[2].prefix, "/abs/");
  EXPECT_EQ(r.config.statics[2].directory, "/var/www/abs/");
  EXPECT_EQ(r.config.chdir, "/srv/app");
}

TEST(CliTest, StaticMountsResolveAgainstCwdWithoutChdir) {
  CliResult r = parse({"--static", "/s/=files/../static"});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  ASSERT_EQ(r.config.statics.size(), 1u);
  EXPECT_EQ(r.config.statics[0].directory, cwd() + "/static/");
}

TEST(CliTest, StaticMountsResolveAgainstRelativeChdir) {
  CliResult r = parse({"--chdir", "app", "--static", "/s/=static"});
  ASSERT_EQ(r.action, Action::kRun) << r.message;
  EXPECT_EQ(r.config.chdir, cwd() + "/app");
  EXPECT_EQ(r.config.statics[0].directory, cwd() + "/app/static/");
}

TEST(CliTest, HelpListsEveryOptionWithDefaults) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"-h"}, {"--help"}, {"--hel"}, {"--backlog", "5", "-h", "--frobnicate"}, {"-hv"}}) {
    SCOPED_TRACE(joined(args));
    CliResult r = parse(args);
    ASSERT_EQ(r.action, Action::kHelp);
    const std::string& h = r.message;
    EXPECT_TRUE(h.starts_with("usage: portico [OPTIONS]\n"));
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
                               "-w/--workers",
                               "--certfile"}) {
      EXPECT_NE(h.find(needle), std::string::npos) << needle;
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
      {{"myapp.wsgi:application"},
       "portico: error: running a WSGI app (myapp.wsgi:application) is not supported yet"},
      {{"--", "-b"}, "portico: error: running a WSGI app (-b) is not supported yet"},
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
      {{"-w", "4"}, "-w/--workers"},
      {{"-w4"}, "-w/--workers"},
      {{"--workers", "4"}, "-w/--workers"},
      {{"--workers=4"}, "-w/--workers"},
      {{"--threads", "2"}, "--threads"},
      {{"-k", "gevent"}, "-k/--worker-class"},
      {{"--worker-class=sync"}, "-k/--worker-class"},
      {{"--preload"}, "--preload"},
      {{"--reload"}, "--reload"},
      {{"--certfile", "c.pem"}, "--certfile"},
      {{"--keyfile", "k.pem"}, "--keyfile"},
      {{"--max-requests", "10"}, "--max-requests"},
      {{"--graceful-timeout", "10"}, "--graceful-timeout"},
      {{"-e", "A=B"}, "-e/--env"},
      {{"--env", "A=B"}, "-e/--env"},
      {{"--pythonpath", "."}, "--pythonpath"},
      {{"-c", "gunicorn.conf.py"}, "-c/--config"},
      {{"--config", "x"}, "-c/--config"},
      {{"-D"}, "-D/--daemon"},
      {{"--daemon"}, "-D/--daemon"},
      {{"--user", "www"}, "-u/--user"},
      {{"--group", "www"}, "-g/--group"},
      {{"--forwarded-allow-ips", "*"}, "--forwarded-allow-ips"},
      {{"--statsd-host", "x:1"}, "--statsd-host"},
      {{"--proxy-protocol"}, "--proxy-protocol"},
      {{"--paster", "x.ini"}, "--paste/--paster"},
      {{"--worker-connections", "10"}, "--worker-connections"},
      {{"--reuse-port"}, "--reuse-port"},
      {{"--capture-output"}, "--capture-output"},
      {{"-R"}, "-R/--enable-stdio-inheritance"},
      {{"-Dv"}, "-D/--daemon"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(joined(tc.args));
    CliResult r = parse(tc.args);
    EXPECT_EQ(r.action, Action::kError);
    EXPECT_EQ(r.message, "portico: error: argument " + tc.message + ": not supported yet");
  }
}

}  // namespace
}  // namespace portico::config
