#pragma once

#include <cstdint>
#include <optional>
#include <string>
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
  std::vector<BindAddress> binds;  // empty → 127.0.0.1:8000, as gunicorn
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

// The outcome of reading the gunicorn-style command line.
struct CliResult {
  enum class Action { kRun, kHelp, kVersion, kError };
  Action action = Action::kRun;
  // kRun: the process-level settings and the site the flags describe (siteFromFlags).
  Config config;
  GunicornFlags flags;  // the site-describing flags as read
  // kHelp: the help text; kVersion: "portico X.Y.Z"; kError: a one-line message such as
  // "portico: error: unrecognized arguments: --frobnicate" (main prints it and exits 2).
  std::string message;
};

// Parses argv (argv[0] is the program name) into a Config whose site the flags describe. Pure:
// no files opened, no chdir, no environment read. Relative --static, --pythonpath and
// --virtualenv paths are resolved against --chdir (if given) or the current directory.
// `forwardedAllowIps`: the environment's FORWARDED_ALLOW_IPS (null when unset), gunicorn's
// default for --forwarded-allow-ips; main passes it, so the parser reads no environment.
CliResult parseCommandLine(const std::vector<std::string>& args,
                           const char* forwardedAllowIps = nullptr);

}  // namespace portico::config
