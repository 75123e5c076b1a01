#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace portico::config {

// Where to listen: a TCP host:port (IPv4 or IPv6) or a unix socket path.
struct BindAddress {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host;  // numeric or a name; "" or "0.0.0.0" for any IPv4, "::" for any IPv6
  uint16_t port = 0;
  std::string path;  // unix socket path
  std::string spec;  // as the user wrote it, for messages
  bool uwsgi = false;  // --uwsgi-socket (uWSGI's socket): speaks uwsgi, whatever --protocol says
};

// gunicorn's bind when no --bind is given: 127.0.0.1:8000.
inline BindAddress defaultBind() {
  BindAddress bind;
  bind.host = "127.0.0.1";
  bind.port = 8000;
  bind.spec = "127.0.0.1:8000";
  return bind;
}

// The gunicorn-style flags that describe what is served, as read: siteFromFlags writes them into
// Config::site (one virtual server), which is all the runtime reads. Value type, built by the
// parser.
struct GunicornFlags {
  std::vector<BindAddress> binds;  // empty → fallbackBind, as gunicorn
  // --bind's default: 127.0.0.1:8000, or 0.0.0.0:$PORT when PORT is set (gunicorn's rule).
  BindAddress fallbackBind = defaultBind();
  // --metrics-bind: a listener of its own serving /metrics, /health/live and /health/ready.
  std::optional<BindAddress> metricsBind;
  int backlog = 2048;
  bool uwsgi = false;  // --protocol uwsgi: every --bind speaks uwsgi to a front server
  double keepAliveSeconds = 2.0;       // --keep-alive: idle keep-alive timeout
  double headerTimeoutSeconds = 60.0;  // nginx client_header_timeout
  double bodyTimeoutSeconds = 60.0;    // nginx client_body_timeout (between two reads)
  double sendTimeoutSeconds = 60.0;    // nginx send_timeout (between two writes)
  size_t limitRequestLine = 4094;
  size_t limitRequestFields = 100;
  size_t limitRequestFieldSize = 8190;
  uint64_t limitRequestBody = 1024 * 1024;  // nginx client_max_body_size; 0 = unlimited
  std::string accessLogFile;       // empty = no access log; "-" = stdout
  std::string accessLogFormat;     // empty = nginx combined; else gunicorn %(x)s atoms
  bool serverHeader = true;        // "Server: portico"
  // gunicorn's trusted front ends: --forwarded-allow-ips (its default is $FORWARDED_ALLOW_IPS,
  // else 127.0.0.1), --proxy-protocol and --proxy-allow-from, as written (comma separated).
  std::string forwardedAllowIps = "127.0.0.1";
  bool proxyProtocol = false;
  std::string proxyAllowFrom = "127.0.0.1";
  std::vector<StaticMount> statics;

  // The WSGI app (gunicorn's APP_MODULE): "module:callable", "module" meaning
  // "module:application". Empty: no app, only static files are served.
  std::string wsgiApp;
  std::string wsgiMount = "/";           // URL prefix the app answers (SCRIPT_NAME = it, less '/')
  std::vector<std::string> pythonPath;   // --pythonpath, in order, before the app's directory
  std::vector<std::pair<std::string, std::string>> env;  // -e/--env KEY=VALUE
  std::string virtualenv;                // --virtualenv DIR (else the runtime takes $VIRTUAL_ENV)
  int threads = 1;                       // --threads: Python threads per worker
  std::string workerClass = "sync";      // -k: sync or gthread (the same here)
  bool initgroups = false;               // --initgroups (portico always does it when switching user)
  // -c/--config: gunicorn's Python configuration file (or python:MODULE), from the command
  // line or GUNICORN_CMD_ARGS; main reads it and parses again (CliEnvironment::configWords).
  std::string configSource;
  // --ini FILE[:SECTION] (or `portico FILE.ini`): uWSGI's ini file; main reads it (uwsgi_ini.h)
  // and parses again with its options first, as for configSource.
  std::string iniSource;
  int socketMode = -1;  // --chmod-socket: the unix sockets' mode; -1: as the umask leaves it

  // gunicorn's SSL section: with --certfile every --bind speaks TLS (as gunicorn, which wraps
  // every accepted socket). Paths are resolved against --chdir.
  std::string certFile;         // --certfile: the certificate chain (PEM), maybe with the key
  std::string keyFile;          // --keyfile: empty = the key is in --certfile (Python's ssl)
  std::string caCerts;          // --ca-certs: CAs that verify client certificates
  int certReqs = 0;             // --cert-reqs: 0 CERT_NONE, 1 CERT_OPTIONAL, 2 CERT_REQUIRED
  std::string ciphers;          // --ciphers: empty = Python's default list
  std::string sslProtocols = "TLSv1.2 TLSv1.3";  // --ssl-version, as ssl_protocols words
  // Accepted for gunicorn's command lines; the handshake always runs on the event loop without
  // blocking, and an EOF without close_notify always ends the stream as a clean close does.
  bool doHandshakeOnConnect = false;
  bool suppressRaggedEofs = true;
};

// One setting of a gunicorn configuration file as a command-line word ("--workers=4", or the
// app for wsgi_app), with the line that set it (0: unknown).
struct ConfigWord {
  std::string word;
  int line = 0;
};

// What gunicorn reads from its environment; main passes it (the parser reads none itself).
struct CliEnvironment {
  const char* forwardedAllowIps = nullptr;  // FORWARDED_ALLOW_IPS: --forwarded-allow-ips' default
  // GUNICORN_CMD_ARGS: flags read before the command line's; a setting the command line gives
  // replaces theirs whole (a --bind there drops every --bind of the variable), as gunicorn.
  const char* gunicornCmdArgs = nullptr;
  const char* webConcurrency = nullptr;  // WEB_CONCURRENCY: --workers' default
  const char* port = nullptr;            // PORT: --bind's default becomes 0.0.0.0:$PORT
  // The configuration file's settings (python::readGunicornConfig), read before everything
  // else: GUNICORN_CMD_ARGS and the command line override them. `configSource` names it.
  std::vector<ConfigWord> configWords;
  std::string configSource;
  // This process's variables (getenv).
  static CliEnvironment fromProcess();
};

// The outcome of reading the gunicorn-style command line.
struct CliResult {
  // kCheckConfig (--check-config): main boots a worker in a child (the app imported) and exits
  // 0 or 1; kPrintConfig (--print-config): main prints `message` (every gunicorn setting as
  // portico took it, gunicorn's format), then does the same check.
  enum class Action { kRun, kHelp, kVersion, kError, kCheckConfig, kPrintConfig };
  Action action = Action::kRun;
  // kRun: the process-level settings and the site the flags describe (siteFromFlags).
  Config config;
  GunicornFlags flags;  // the site-describing flags as read
  // kHelp: the help text; kVersion: "portico X.Y.Z"; kError: a one-line message such as
  // "portico: error: unrecognized arguments: --frobnicate" (main prints it and exits 2).
  std::string message;
  // kRun without an APP_MODULE: a line for the log saying what is served and how to give an
  // app (empty with an app).
  std::string notice;
  // Lines for the log at start: what the ini file says of itself (uwsgi_ini.h's notes).
  std::vector<std::string> notes;
};

// Parses argv (argv[0] is the program name) into a Config whose site the flags describe. Pure:
// no files opened, no chdir, no environment read. Relative --static, --pythonpath and
// --virtualenv paths are resolved against --chdir (if given) or the current directory.
// `forwardedAllowIps`: the environment's FORWARDED_ALLOW_IPS (null when unset), gunicorn's
// default for --forwarded-allow-ips; main passes it, so the parser reads no environment.
CliResult parseCommandLine(const std::vector<std::string>& args,
                           const char* forwardedAllowIps = nullptr);
CliResult parseCommandLine(const std::vector<std::string>& args, const CliEnvironment& env);

// POSIX shell words, as Python's shlex.split (gunicorn splits GUNICORN_CMD_ARGS so): blanks
// separate, '…' keeps everything, "…" and a backslash escape. Nullopt with `error` on an
// unterminated quote or a trailing backslash.
std::optional<std::vector<std::string>> splitShellWords(std::string_view text, std::string& error);

}  // namespace portico::config
