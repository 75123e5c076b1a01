#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/site.h"
#include "core/log.h"

namespace portico::config {

// A URL prefix served from a directory, with nginx's `location PREFIX { alias DIR/; }` meaning.
struct StaticMount {
  std::string prefix;     // e.g. "/static/"
  std::string directory;  // absolute path after --chdir, e.g. "/srv/app/staticfiles/"
};

// The one typed configuration model, filled the same way by both command lines: nginx's
// `-c FILE` (conf_builder) and gunicorn's flags (cli.cpp, whose site-describing flags
// siteFromFlags writes as the equivalent nginx configuration). The process-level settings are
// here; everything about serving HTTP is in `site`. The runtime reads only this model and never
// asks which command line filled it. Read-only once the server starts.
struct Config {
  double timeoutSeconds = 30.0;    // gunicorn --timeout: worker silence before it is killed
  std::string errorLogFile = "-";  // "-" = stderr
  LogLevel logLevel = LogLevel::kInfo;
  // --log-format json, error_log_format json: error-log lines (and, with the flags, the access
  // log when no --access-logformat is given) as one JSON object each.
  bool jsonLogs = false;
  std::string pidFile;
  // gunicorn --chdir: the process's working directory, entered before anything is opened
  // (the flags' relative paths are already resolved against it).
  std::string chdir;

  // The master and its workers.
  int workers = 1;                       // -w/--workers, worker_processes; 0: one per core
  bool preload = false;                  // --preload: import the app in the master before forking
  uint64_t maxRequests = 0;              // --max-requests: recycle a worker after N (0 = never)
  uint64_t maxRequestsJitter = 0;        // --max-requests-jitter: + random 0..N per worker
  uint64_t maxWorkerMemoryMb = 0;        // --max-worker-memory: recycle past this RSS (0 = never)
  double gracefulTimeoutSeconds = 30.0;  // --graceful-timeout: drain time on stop/reload
  // worker_shutdown_timeout: on a graceful stop or reload, connections still open after it
  // are closed. 0: not set (nginx waits for them without limit).
  double workerShutdownTimeoutSeconds = 0;
  std::string signalCommand;             // -s stop|quit|reload|reopen: signal the running master
  int workerConnections = 512;           // events { worker_connections } (--worker-connections: 1000)
  bool multiAccept = false;              // events { multi_accept } (the flags: on)
  // worker_cpu_affinity: the CPUs worker number N (0 .. workers-1, kept by its replacement) may
  // run on — masks[N], or the last mask for the workers beyond them; with `auto`, only the N-th
  // CPU (counting round) of masks[0], or of the CPUs the master may use when no mask is written.
  // Neither: no affinity (the default, as nginx's).
  bool cpuAffinityAuto = false;
  std::vector<std::vector<int>> cpuAffinityMasks;  // each mask's CPU numbers, ascending

  // Where the file came from (messages); the flags leave them empty.
  std::string confFile;                  // absolute path of the file read
  std::string prefix;                    // -p PREFIX: relative paths in the file resolve here
  std::string user;                      // `user NAME [GROUP]`: workers drop to it when root
  std::string group;                     // (gunicorn's --user/--group: names or numbers)
  bool keepGroup = false;                // gunicorn's --user without --group: the master's group

  // gunicorn's process options (the flags; gunicorn.conf.py).
  int umask = -1;                  // -m/--umask: set by the master at start; -1: unchanged
  bool daemon = false;             // -D/--daemon: detach from the terminal before starting
  bool stdioInheritance = false;   // -R: a daemon keeps its stdin, stdout and stderr
  bool captureOutput = false;      // --capture-output: stdout and stderr into the error log file
  std::string procName;            // -n/--name: in the process titles
  std::string workerTmpDir;        // --worker-tmp-dir: checked; workers report via shared memory
  // --touch-reload (uWSGI's touch-reload): the master reloads when one's mtime changes.
  std::vector<std::string> touchReload;
  // gunicorn's statsd: --statsd-host HOST:PORT (empty: off), --statsd-prefix, --dogstatsd-tags.
  std::string statsdHost;
  std::string statsdPrefix;
  std::string dogstatsdTags;
  // gunicorn's --reload: each worker watches the source files of the modules it has imported
  // (and reloadExtraFiles) and, when one changes, stops gracefully so the master starts a
  // fresh one that imports the app again (a change that does not compile is logged, and the
  // running worker keeps serving); a worker whose import raises SyntaxError serves a 500 with
  // the traceback instead of failing.
  bool reload = false;
  std::string reloadEngine = "auto";          // --reload-engine: auto (inotify), poll, inotify
  std::vector<std::string> reloadExtraFiles;  // --reload-extra-file: absolute after --chdir

  // The HTTP model every worker serves: virtual servers and their locations. The nginx-style
  // file fills it; the gunicorn-style flags become one server (--bind listens, --static
  // locations with alias, `location /` running the app).
  HttpSite site;
};

}  // namespace portico::config
