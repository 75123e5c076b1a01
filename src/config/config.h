#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "config/site.h"
#include "core/log.h"

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

// A URL prefix served from a directory, with nginx's `location PREFIX { alias DIR/; }` meaning.
struct StaticMount {
  std::string prefix;     // e.g. "/static/"
  std::string directory;  // absolute path after --chdir, e.g. "/srv/app/staticfiles/"
};

// The one typed configuration model; filled by the gunicorn-style command line (and later by the
// nginx-style file). Read-only once the server starts.
struct Config {
  std::vector<BindAddress> binds;  // empty → 127.0.0.1:8000, as gunicorn
  int backlog = 2048;
  double keepAliveSeconds = 2.0;   // gunicorn --keep-alive: idle keep-alive timeout
  double timeoutSeconds = 30.0;    // gunicorn --timeout: worker silence before it is killed
  double headerTimeoutSeconds = 60.0;  // nginx client_header_timeout
  double bodyTimeoutSeconds = 60.0;    // nginx client_body_timeout (between two reads)
  double sendTimeoutSeconds = 60.0;    // nginx send_timeout (between two writes)
  size_t limitRequestLine = 4094;
  size_t limitRequestFields = 100;
  size_t limitRequestFieldSize = 8190;
  uint64_t limitRequestBody = 1024 * 1024;  // nginx client_max_body_size; 0 = unlimited
  std::string accessLogFile;       // empty = no access log; "-" = stdout
  std::string accessLogFormat;     // empty = nginx combined; else gunicorn %(x)s atoms
  std::string errorLogFile = "-";  // "-" = stderr
  LogLevel logLevel = LogLevel::kInfo;
  std::string pidFile;
  std::string chdir;
  bool serverHeader = true;        // "Server: portico"
  std::vector<StaticMount> statics;

  // The WSGI app (gunicorn's APP_MODULE): "module:callable", "module" meaning
  // "module:application". Empty: no app, only static files are served.
  std::string wsgiApp;
  std::string wsgiMount = "/";           // URL prefix the app answers (SCRIPT_NAME = it, less '/')
  std::vector<std::string> pythonPath;   // --pythonpath, in order, before the app's directory
  std::vector<std::pair<std::string, std::string>> env;  // -e/--env KEY=VALUE
  std::string virtualenv;                // --virtualenv DIR, else $VIRTUAL_ENV
  int threads = 1;                       // --threads: Python threads per worker

  // The master and its workers.
  int workers = 1;                       // -w/--workers; 0 means "auto" (one per core)
  bool preload = false;                  // --preload: import the app in the master before forking
  uint64_t maxRequests = 0;              // --max-requests: recycle a worker after N (0 = never)
  uint64_t maxRequestsJitter = 0;        // --max-requests-jitter: + random 0..N per worker
  uint64_t maxWorkerMemoryMb = 0;        // --max-worker-memory: recycle past this RSS (0 = never)
  double gracefulTimeoutSeconds = 30.0;  // --graceful-timeout: drain time on stop/reload
  // worker_shutdown_timeout: on a graceful stop or reload, connections still open after it
  // are closed. 0: not set (nginx waits for them without limit).
  double workerShutdownTimeoutSeconds = 0;
  std::string signalCommand;             // -s stop|quit|reload|reopen: signal the running master

  // The nginx-style file (-c FILE) and what only it can say.
  std::string confFile;                  // absolute path of the file read; empty: flags only
  std::string prefix;                    // -p PREFIX: relative paths in the file resolve here
  std::string user;                      // `user NAME [GROUP]`: workers drop to it when root
  std::string group;
  int workerConnections = 512;           // events { worker_connections } (--worker-connections: 1000)
  bool multiAccept = false;              // events { multi_accept }

  // The HTTP model every worker serves: virtual servers and their locations. The nginx-style
  // file fills it; the gunicorn-style flags become one server (--bind listens, --static
  // locations with alias, `location /` running the app).
  HttpSite site;
};

}  // namespace portico::config
