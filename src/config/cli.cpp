#include "config/cli.h"

#include <arpa/inet.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>

#include "config/conf_values.h"
#include "config/site_from_flags.h"
#include "config/version.h"
#include "core/cpu_count.h"

namespace portico::config {
namespace {

// gunicorn's caps (gunicorn/http/message.py): a request line limit of 0 means "unlimited" and
// values of 8190 or more are clamped to 8190; a field count of 0 or above 32768 means 32768.
constexpr int64_t kMaxRequestLine = 8190;
constexpr int64_t kMaxRequestFields = 32768;
// What "unlimited" (0) becomes for line and field sizes: the parser still needs a bound.
constexpr size_t kUnlimitedHeaderSize = 1024 * 1024;
constexpr std::string_view kDefaultPort = "8000";

enum class OptionId {
  kHelp,
  kVersion,
  kBind,
  kBacklog,
  kThreads,
  kWorkerConnections,
  kTimeout,
  kKeepAlive,
  kLimitRequestLine,
  kLimitRequestFields,
  kLimitRequestFieldSize,
  kAccessLogFile,
  kAccessLogFormat,
  kErrorLogFile,
  kLogLevel,
  kPid,
  kChdir,
  kPythonPath,
  kEnv,
  kVirtualenv,
  kStatic,
  kLimitRequestBody,
  kHeaderTimeout,
  kBodyTimeout,
  kSendTimeout,
  kNoServerHeader,
  kForwardedAllowIps,
  kProxyProtocol,
  kProxyAllowFrom,
  kProtocol,
  kWorkers,
  kPreload,
  kMaxRequests,
  kMaxRequestsJitter,
  kMaxWorkerMemory,
  kGracefulTimeout,
  kSignal,
  kKeyFile,
  kCertFile,
  kSslVersion,
  kCertReqs,
  kCaCerts,
  kSuppressRaggedEofs,
  kDoHandshakeOnConnect,
  kCiphers,
  kMetricsBind,
  kLogFormat,
  kWorkerClass,
  kCheckConfig,
  kPrintConfig,
  kConfig,
  kUser,
  kGroup,
  kUmask,
  kInitgroups,
  kDaemon,
  kStdioInheritance,
  kCaptureOutput,
  kName,
  kWorkerTmpDir,
  kIni,
  kUwsgiSocket,
  kChmodSocket,
  kTouchReload,
  kStatsdHost,
  kStatsdPrefix,
  kDogstatsdTags,
  kReload,
  kReloadEngine,
  kReloadExtraFile,
  kUnsupported,  // a gunicorn option portico rejects rather than silently ignores
};

// The --help group an option is listed under: gunicorn's settings sections, then portico's own.
enum class Section {
  kGeneral,
  kServerSocket,
  kWorkerProcesses,
  kSecurity,
  kLogging,
  kServerMechanics,
  kSsl,
  kDebugging,
  kControl,
  kPortico,
};

// The heading --help prints above one Section.
struct SectionTitle {
  Section section;
  std::string_view title;
};

constexpr SectionTitle kSections[] = {
    {Section::kGeneral, "options"},
    {Section::kServerSocket, "server socket"},
    {Section::kWorkerProcesses, "worker processes"},
    {Section::kSecurity, "security"},
    {Section::kLogging, "logging"},
    {Section::kServerMechanics, "server mechanics"},
    {Section::kSsl, "ssl"},
    {Section::kDebugging, "debugging"},
    {Section::kControl, "control (nginx's -s)"},
    {Section::kPortico, "portico options (not in gunicorn)"},
};

// One command-line option: its spellings, whether it takes a value, and its help line.
struct OptionSpec {
  OptionId id;
  char shortName;  // 0 if none
  std::string_view longName;
  std::string_view aliasName;    // a second long spelling, or empty
  std::string_view meta;         // value placeholder; empty for flags without a value
  std::string_view help;         // one line for --help
  std::string_view defaultText;  // shown as [default]; empty: not shown
  Section section = Section::kGeneral;
};

// The order here is the order of --help within a section and of "could match" candidates.
constexpr OptionSpec kOptions[] = {
    {OptionId::kHelp, 'h', "--help", "", "", "Show this help message and exit.", ""},
    {OptionId::kVersion, 'v', "--version", "", "", "Show the program's version number and exit.",
     ""},
    {OptionId::kBind, 'b', "--bind", "", "ADDRESS",
     "The socket to bind: HOST, HOST:PORT, [IPV6]:PORT or unix:PATH; repeatable.", "127.0.0.1:8000",
     Section::kServerSocket},
    {OptionId::kBacklog, 0, "--backlog", "", "INT", "The maximum number of pending connections.",
     "2048", Section::kServerSocket},
    {OptionId::kWorkers, 'w', "--workers", "", "INT",
     "The number of worker processes for handling requests ('auto': one per core).", "1",
     Section::kWorkerProcesses},
    {OptionId::kMaxRequests, 0, "--max-requests", "", "INT",
     "The maximum number of requests a worker will process before restarting; 0 disables.", "0",
     Section::kWorkerProcesses},
    {OptionId::kMaxRequestsJitter, 0, "--max-requests-jitter", "", "INT",
     "The maximum jitter to add to the max_requests setting.", "0", Section::kWorkerProcesses},
    {OptionId::kGracefulTimeout, 0, "--graceful-timeout", "", "INT",
     "Timeout for graceful workers restart and stop.", "30", Section::kWorkerProcesses},
    {OptionId::kPreload, 0, "--preload", "", "",
     "Load application code before the worker processes are forked.", "False",
     Section::kServerMechanics},
    {OptionId::kThreads, 0, "--threads", "", "INT",
     "The number of Python threads per worker for handling requests.", "1",
     Section::kWorkerProcesses},
    {OptionId::kTimeout, 't', "--timeout", "", "INT",
     "Workers silent for more than this many seconds are killed and restarted; 0 disables.", "30",
     Section::kWorkerProcesses},
    {OptionId::kKeepAlive, 0, "--keep-alive", "", "INT",
     "The number of seconds to wait for requests on a Keep-Alive connection.", "2",
     Section::kWorkerProcesses},
    {OptionId::kLimitRequestLine, 0, "--limit-request-line", "", "INT",
     "The maximum size of HTTP request line in bytes (0 = unlimited, max 8190).", "4094",
     Section::kSecurity},
    {OptionId::kLimitRequestFields, 0, "--limit-request-fields", "", "INT",
     "Limit the number of HTTP headers fields in a request (max 32768).", "100",
     Section::kSecurity},
    {OptionId::kLimitRequestFieldSize, 0, "--limit-request-field_size",
     "--limit-request-field-size", "INT",
     "Limit the allowed size of an HTTP request header field (0 = unlimited).", "8190",
     Section::kSecurity},
    {OptionId::kAccessLogFile, 0, "--access-logfile", "", "FILE",
     "The Access log file to write to ('-' means stdout).", "None", Section::kLogging},
    {OptionId::kAccessLogFormat, 0, "--access-logformat", "", "STRING",
     "The access log format, with gunicorn %(h)s atoms.", "nginx combined", Section::kLogging},
    {OptionId::kErrorLogFile, 0, "--error-logfile", "--log-file", "FILE",
     "The Error log file to write to ('-' means stderr).", "-", Section::kLogging},
    {OptionId::kLogLevel, 0, "--log-level", "", "LEVEL",
     "The granularity of Error log outputs: debug, info, warning, error, critical.", "info",
     Section::kLogging},
    {OptionId::kPid, 'p', "--pid", "", "FILE", "A filename to use for the PID file.", "None",
     Section::kServerMechanics},
    {OptionId::kChdir, 0, "--chdir", "", "CHDIR",
     "Change directory to specified directory before loading apps.", ".",
     Section::kServerMechanics},
    {OptionId::kPythonPath, 0, "--pythonpath", "", "STRING",
     "A comma-separated list of directories to add to the Python path, e.g. 'src,../lib'; "
     "repeatable. Relative to --chdir.",
     "None", Section::kServerMechanics},
    {OptionId::kEnv, 'e', "--env", "", "ENV",
     "Set an environment variable in the execution environment, as KEY=VALUE; repeatable.", "",
     Section::kServerMechanics},
    {OptionId::kVirtualenv, 0, "--virtualenv", "", "DIR",
     "The Python virtual environment whose site-packages the app uses.", "$VIRTUAL_ENV",
     Section::kPortico},
    {OptionId::kStatic, 0, "--static", "", "PREFIX=DIR",
     "Serve URLs under PREFIX from DIR, like nginx `location PREFIX { alias DIR/; }`; "
     "repeatable.",
     "", Section::kPortico},
    {OptionId::kLimitRequestBody, 0, "--limit-request-body", "", "SIZE",
     "Largest request body accepted, like nginx client_max_body_size (k/m/g suffixes; "
     "0 = unlimited).",
     "1m", Section::kPortico},
    {OptionId::kHeaderTimeout, 0, "--header-timeout", "", "SECONDS",
     "Time allowed to receive a request head (nginx client_header_timeout).", "60",
     Section::kPortico},
    {OptionId::kBodyTimeout, 0, "--body-timeout", "", "SECONDS",
     "Time allowed between two reads of a request body (nginx client_body_timeout).", "60",
     Section::kPortico},
    {OptionId::kSendTimeout, 0, "--send-timeout", "", "SECONDS",
     "Time allowed between two writes of a response (nginx send_timeout).", "60",
     Section::kPortico},
    {OptionId::kNoServerHeader, 0, "--no-server-header", "", "",
     "Do not send the `Server: portico` response header.", "", Section::kPortico},
    {OptionId::kProtocol, 0, "--protocol", "", "PROTOCOL",
     "What the sockets speak: http, or uwsgi for an nginx in front with uwsgi_pass (uWSGI's "
     "--socket).", "http", Section::kPortico},
    {OptionId::kLogFormat, 0, "--log-format", "", "FORMAT",
     "text, or json: the error log, and the access log unless --access-logformat is given, "
     "as one JSON object per line.", "text", Section::kPortico},
    {OptionId::kMetricsBind, 0, "--metrics-bind", "", "ADDRESS",
     "A listener of its own for operations: /metrics (Prometheus), /status (a live page) and "
     "/status.json, /health/live and /health/ready (HOST:PORT or unix:PATH).", "",
     Section::kPortico},
    {OptionId::kUwsgiSocket, 0, "--uwsgi-socket", "", "ADDRESS",
     "A socket that speaks the uwsgi protocol to a front server (nginx's uwsgi_pass), beside "
     "the --bind ones: HOST:PORT or unix:PATH; repeatable (uWSGI's --socket).",
     "", Section::kPortico},
    {OptionId::kChmodSocket, 0, "--chmod-socket", "", "MODE",
     "The mode of the unix sockets portico creates, in octal, e.g. 660 (uWSGI's chmod-socket); "
     "else the umask decides.",
     "", Section::kPortico},
    {OptionId::kTouchReload, 0, "--touch-reload", "", "FILE",
     "Reload gracefully (as SIGHUP) when FILE's modification time changes, e.g. after `touch "
     "FILE` (uWSGI's touch-reload); repeatable.",
     "", Section::kPortico},
    {OptionId::kMaxWorkerMemory, 0, "--max-worker-memory", "", "MB",
     "Recycle a worker after its current request once its resident memory passes MB; 0 disables.",
     "0", Section::kPortico},
    {OptionId::kSignal, 's', "", "", "SIGNAL",
     "Signal the master whose pid is in --pid FILE, then exit: stop (SIGTERM), quit (SIGQUIT), "
     "reload (SIGHUP: fresh workers replace the old), reopen (SIGUSR1: reopen log files).",
     "", Section::kControl},

    // gunicorn options that are recognised (so nothing is silently ignored) but not implemented.
    {OptionId::kConfig, 'c', "--config", "", "CONFIG",
     "gunicorn's configuration file: a Python file (FILE.py) or python:MODULE; its settings "
     "come first, $GUNICORN_CMD_ARGS and the command line override them. (-c FILE with any "
     "other name is an nginx-style configuration: see the usage above.)",
     "./gunicorn.conf.py", Section::kGeneral},
    {OptionId::kWorkerClass, 'k', "--worker-class", "", "STRING",
     "The type of workers: sync or gthread (also as egg:gunicorn#NAME or the class path). "
     "Both run the app in --threads Python threads per worker, on portico's event loop; "
     "gevent, eventlet, tornado and ASGI (uvicorn) workers are refused.",
     "sync", Section::kWorkerProcesses},
    // Here, not with the worker options: argparse lists ambiguous prefixes in gunicorn's order.
    {OptionId::kWorkerConnections, 0, "--worker-connections", "", "INT",
     "The maximum number of simultaneous clients per worker; at the limit a worker stops "
     "accepting until one closes.",
     "1000", Section::kWorkerProcesses},
    {OptionId::kReload, 0, "--reload", "", "",
     "Restart workers when code changes: each worker watches the source files of the modules "
     "it has imported and is replaced by a fresh one (the app imported again) when one "
     "changes. A change that does not compile is logged and the last good code keeps "
     "serving; a worker that starts with a SyntaxError answers every request 500 with the "
     "traceback until the file is fixed. Intended for development; incompatible with "
     "--preload.",
     "False", Section::kDebugging},
    {OptionId::kReloadEngine, 0, "--reload-engine", "", "STRING",
     "The implementation that should be used to power --reload: auto (inotify), poll (each "
     "file's mtime every second) or inotify.",
     "auto", Section::kDebugging},
    {OptionId::kReloadExtraFile, 0, "--reload-extra-file", "", "FILES",
     "Extends --reload to also watch and reload on additional files (e.g., templates, "
     "configurations, specifications); repeatable.",
     "[]", Section::kDebugging},
    {OptionId::kUnsupported, 0, "--spew", "", "",
     "for a running worker's Python stacks, see --metrics-bind's /status (?stacks=PID)", ""},
    {OptionId::kCheckConfig, 0, "--check-config", "", "",
     "Check the configuration and exit: 0 when a worker can start (the app imported), "
     "1 when not.", "False", Section::kDebugging},
    {OptionId::kPrintConfig, 0, "--print-config", "", "",
     "Print the configuration settings as fully resolved (gunicorn's names), then check it "
     "as --check-config does.", "False", Section::kDebugging},
    {OptionId::kUnsupported, 0, "--no-sendfile", "", "",
     "the nginx-style file's `sendfile off;` turns sendfile(2) off", ""},
    {OptionId::kUnsupported, 0, "--reuse-port", "", "",
     "portico's workers share the listening sockets and balance connections themselves", ""},
    {OptionId::kDaemon, 'D', "--daemon", "", "",
     "Daemonize the portico process: detach from the terminal (stdin, stdout and stderr to "
     "/dev/null unless -R) and go on in the background.",
     "False", Section::kServerMechanics},
    {OptionId::kWorkerTmpDir, 0, "--worker-tmp-dir", "", "DIR",
     "A directory for the workers' heartbeat files in gunicorn; portico's workers report "
     "through shared memory, so it is only checked to exist.",
     "None", Section::kServerMechanics},
    {OptionId::kUser, 'u', "--user", "", "USER",
     "Switch worker processes to run as this user (a name or a number), when started as root.",
     "the current user", Section::kServerMechanics},
    {OptionId::kGroup, 'g', "--group", "", "GROUP",
     "Switch worker processes to run as this group (a name or a number), when started as root.",
     "the current group", Section::kServerMechanics},
    {OptionId::kUmask, 'm', "--umask", "", "INT",
     "A bit mask for the file mode on files written by portico (unix sockets, the pid file, "
     "logs), e.g. 0o022 or 022.",
     "0", Section::kServerMechanics},
    {OptionId::kInitgroups, 0, "--initgroups", "", "",
     "Set the worker's group access list to every group of the --user (portico always does "
     "when it switches user).",
     "False", Section::kServerMechanics},
    {OptionId::kIni, 0, "--ini", "", "FILE[:SECTION]",
     "uWSGI's ini file: its [uwsgi] section (or SECTION) read as uWSGI reads it (magic "
     "variables, placeholders), each option with its uWSGI meaning; the command line overrides "
     "it. `portico FILE.ini` does the same.",
     "", Section::kGeneral},
    {OptionId::kForwardedAllowIps, 0, "--forwarded-allow-ips", "", "STRING",
     "Front-end's IPs from which allowed to handle set secure headers (comma separate); `*` "
     "trusts every peer. From them X-Forwarded-Proto / X-Forwarded-Protocol / X-Forwarded-Ssl "
     "set wsgi.url_scheme and X-Forwarded-For sets REMOTE_ADDR.",
     "127.0.0.1, or $FORWARDED_ALLOW_IPS", Section::kServerMechanics},
    {OptionId::kUnsupported, 0, "--forwarder-headers", "", "", "", ""},
    {OptionId::kUnsupported, 0, "--header-map", "", "", "", ""},
    {OptionId::kUnsupported, 0, "--disable-redirect-access-to-syslog", "", "", "", ""},
    {OptionId::kCaptureOutput, 0, "--capture-output", "", "",
     "Redirect stdout and stderr (the app's prints) to the --error-logfile file.", "False",
     Section::kLogging},
    // A refused option's help says what to use instead (in its error).
    {OptionId::kUnsupported, 0, "--logger-class", "", "", "portico's logs are set by --error-logfile, --access-logfile, --access-logformat, --log-level and --log-format json (JSON lines)", ""},
    {OptionId::kUnsupported, 0, "--log-config", "", "", "portico's logs are set by --error-logfile, --access-logfile, --access-logformat, --log-level and --log-format json (JSON lines)", ""},
    {OptionId::kUnsupported, 0, "--log-config-json", "", "", "portico's logs are set by --error-logfile, --access-logfile, --access-logformat, --log-level and --log-format json (JSON lines)", ""},
    {OptionId::kUnsupported, 0, "--log-syslog-to", "", "", "portico logs to files or stderr; under systemd stderr goes to the journal, and from there to syslog", ""},
    {OptionId::kUnsupported, 0, "--log-syslog", "", "", "portico logs to files or stderr; under systemd stderr goes to the journal, and from there to syslog", ""},
    {OptionId::kUnsupported, 0, "--log-syslog-prefix", "", "", "portico logs to files or stderr; under systemd stderr goes to the journal, and from there to syslog", ""},
    {OptionId::kUnsupported, 0, "--log-syslog-facility", "", "", "portico logs to files or stderr; under systemd stderr goes to the journal, and from there to syslog", ""},
    {OptionId::kStdioInheritance, 'R', "--enable-stdio-inheritance", "", "",
     "With --daemon, keep stdin, stdout and stderr (they are /dev/null otherwise).", "False",
     Section::kLogging},
    {OptionId::kStatsdHost, 0, "--statsd-host", "", "STATSD_ADDR",
     "host:port of the statsd server to log to: each request's count, status and duration, "
     "the log lines by level and the worker count, as gunicorn's metrics.",
     "None", Section::kLogging},
    {OptionId::kDogstatsdTags, 0, "--dogstatsd-tags", "", "DOGSTATSD_TAGS",
     "A comma-delimited list of datadog statsd (dogstatsd) tags to append to statsd metrics.",
     "", Section::kLogging},
    {OptionId::kStatsdPrefix, 0, "--statsd-prefix", "", "STATSD_PREFIX",
     "Prefix to use when emitting statsd metrics (a trailing . is added, if not provided).",
     "", Section::kLogging},
    {OptionId::kName, 'n', "--name", "", "STRING",
     "A base to use in the process titles (ps, top): portico: master [STRING].",
     "the app", Section::kLogging},
    {OptionId::kUnsupported, 0, "--paste", "--paster", "", "give the WSGI app as MODULE:CALLABLE (PasteDeploy files are not read)", ""},
    {OptionId::kUnsupported, 0, "--paste-global", "", "", "give the WSGI app as MODULE:CALLABLE (PasteDeploy files are not read)", ""},
    {OptionId::kProxyProtocol, 0, "--proxy-protocol", "", "",
     "Enable detect PROXY protocol (PROXY mode): a connection may begin with a PROXY protocol "
     "v1 or v2 header, whose client address becomes REMOTE_ADDR.",
     "False", Section::kServerMechanics},
    {OptionId::kProxyAllowFrom, 0, "--proxy-allow-from", "", "PROXY_ALLOW_IPS",
     "Front-end's IPs from which allowed accept proxy requests (comma separate); `*` for all.",
     "127.0.0.1", Section::kServerMechanics},
    // gunicorn's SSL section, in its order.
    {OptionId::kKeyFile, 0, "--keyfile", "", "FILE",
     "SSL key file (PEM); without it the key is read from --certfile.", "None", Section::kSsl},
    {OptionId::kCertFile, 0, "--certfile", "", "FILE",
     "SSL certificate file (PEM, the chain leaf first); every --bind then serves HTTPS.", "None",
     Section::kSsl},
    {OptionId::kSslVersion, 0, "--ssl-version", "", "SSL_VERSION",
     "SSL version to use: TLS, SSLv23 or TLS_SERVER (negotiate TLS 1.2 or 1.3), TLSv1, "
     "TLSv1_1, TLSv1_2 (that version only), or their ssl.PROTOCOL_ numbers. Deprecated, as in "
     "gunicorn.",
     "TLS", Section::kSsl},
    {OptionId::kCertReqs, 0, "--cert-reqs", "", "CERT_REQS",
     "Whether a client certificate is required: 0 (CERT_NONE), 1 (CERT_OPTIONAL: verified if "
     "sent), 2 (CERT_REQUIRED). A certificate that --ca-certs cannot verify fails the "
     "handshake.",
     "0", Section::kSsl},
    {OptionId::kCaCerts, 0, "--ca-certs", "", "FILE",
     "CA certificates file (PEM) that verifies client certificates.", "None", Section::kSsl},
    {OptionId::kSuppressRaggedEofs, 0, "--suppress-ragged-eofs", "", "",
     "Suppress ragged EOFs: a client closing without close_notify ends its stream as a clean "
     "close does (always so).",
     "True", Section::kSsl},
    {OptionId::kDoHandshakeOnConnect, 0, "--do-handshake-on-connect", "", "",
     "Whether to perform the SSL handshake on socket connect (accepted; the handshake never "
     "blocks a worker either way).",
     "False", Section::kSsl},
    {OptionId::kCiphers, 0, "--ciphers", "", "CIPHERS",
     "SSL cipher suites for TLS 1.2 and below, in OpenSSL's cipher list format.",
     "Python's ssl default", Section::kSsl},
    {OptionId::kUnsupported, 0, "--strip-header-spaces", "", "", "", ""},
    {OptionId::kUnsupported, 0, "--permit-unconventional-http-method", "", "", "", ""},
    {OptionId::kUnsupported, 0, "--permit-unconventional-http-version", "", "", "", ""},
    {OptionId::kUnsupported, 0, "--permit-obsolete-folding", "", "", "", ""},
    {OptionId::kUnsupported, 0, "--casefold-http-method", "", "", "", ""},
    {OptionId::kUnsupported, 0, "--tolerate-dangerous-framing", "", "", "", ""},
};

bool takesValue(const OptionSpec& spec) { return !spec.meta.empty(); }

// Levenshtein distance, for "did you mean" (option names are short).
size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// argparse names an option by all its spellings: "-b/--bind", "--error-logfile/--log-file".
std::string displayName(const OptionSpec& spec) {
  std::string name;
  if (spec.shortName != 0) {
    name += '-';
    name += spec.shortName;
    if (!spec.longName.empty()) name += '/';
  }
  name += spec.longName;
  if (!spec.aliasName.empty()) {
    name += '/';
    name += spec.aliasName;
  }
  return name;
}

// Python's repr() of a str, near enough: single quotes, control bytes escaped so the
// message stays on one line.
std::string quoted(std::string_view value) {
  std::string out = "'";
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else if (c == '\'' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '\'';
  return out;
}

// Python's str.strip(): gunicorn strips every string setting.
std::string_view strip(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  size_t end = s.find_last_not_of(kSpace);
  return s.substr(begin, end - begin + 1);
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Python's int(text): optional surrounding whitespace and sign, decimal digits with single
// underscores between them.
bool parsePythonInt(std::string_view text, int64_t& out) {
  std::string_view s = strip(text);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty() || !isDigit(s.front()) || !isDigit(s.back())) return false;
  int64_t value = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '_') {
      if (!isDigit(s[i + 1])) return false;  // s.back() is a digit, so i + 1 is in range
      continue;
    }
    if (!isDigit(c)) return false;
    if (value > (std::numeric_limits<int64_t>::max() - (c - '0')) / 10) return false;
    value = value * 10 + (c - '0');
  }
  out = negative ? -value : value;
  return true;
}

// Seconds as a decimal number, optionally with an nginx time unit (ms, s, m, h, d).
bool parseSeconds(std::string_view text, double& out) {
  std::string_view s = strip(text);
  if (s.empty() || s[0] == '-' || s[0] == '+') return false;
  double value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || !std::isfinite(value)) return false;
  std::string_view unit(ptr, static_cast<size_t>(s.data() + s.size() - ptr));
  double scale = 1;
  if (unit.empty() || unit == "s") {
    scale = 1;
  } else if (unit == "ms") {
    scale = 0.001;
  } else if (unit == "m") {
    scale = 60;
  } else if (unit == "h") {
    scale = 3600;
  } else if (unit == "d") {
    scale = 86400;
  } else {
    return false;
  }
  out = value * scale;
  return std::isfinite(out);
}

// nginx's size syntax (ngx_parse_offset): digits with an optional k/K, m/M or g/G suffix.
bool parseSize(std::string_view text, uint64_t& out) {
  auto value = parseNginxOffset(strip(text));
  if (!value) return false;
  out = static_cast<uint64_t>(*value);
  return true;
}

bool validHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) || c == '.' || c == '-' ||
         c == '_';
}

// gunicorn's util.parse_address, stricter: returns an error detail, or nullopt on success.
std::optional<std::string> parseBind(std::string_view raw, BindAddress& out) {
  std::string_view spec = strip(raw);
  out = BindAddress{};
  out.spec = std::string(spec);
  auto invalid = [&](std::string_view why) {
    return "invalid address " + quoted(spec) + ": " + std::string(why);
  };

  if (spec.starts_with("unix:")) {
    std::string_view path = spec.substr(5);
    if (path.starts_with("//")) path.remove_prefix(2);  // gunicorn accepts unix://PATH too
    if (path.empty()) return invalid("the unix socket path is empty");
    if (path.size() >= sizeof(sockaddr_un::sun_path)) {
      return invalid("the unix socket path is longer than " +
                     std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
    }
    out.kind = BindAddress::Kind::kUnix;
    out.path = std::string(path);
    return std::nullopt;
  }
  if (spec.starts_with("fd://")) {
    return invalid("binding to an inherited file descriptor (fd://) is not supported");
  }
  std::string_view rest = spec;
  if (rest.starts_with("tcp://")) rest.remove_prefix(6);

  std::string_view host;
  std::string_view port = kDefaultPort;
  if (rest.empty()) {
    host = "0.0.0.0";  // gunicorn: an empty address means every IPv4 interface
  } else if (rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return invalid("missing ']'");
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return invalid("expected ':PORT' after ']'");
      port = after.substr(1);
    }
    std::string literal(host.substr(0, host.find('%')));  // allow a zone: [fe80::1%eth0]
    in6_addr addr{};
    if (literal.empty() || inet_pton(AF_INET6, literal.c_str(), &addr) != 1) {
      return invalid("not an IPv6 address between '[' and ']'");
    }
  } else {
    size_t colon = rest.find(':');
    if (colon != std::string_view::npos) {
      if (rest.find(':', colon + 1) != std::string_view::npos) {
        return invalid("write IPv6 addresses in brackets, e.g. [::1]:8000");
      }
      host = rest.substr(0, colon);  // may be empty: ":8000" is every interface, as gunicorn
      port = rest.substr(colon + 1);
    } else {
      host = rest;
    }
    for (char c : host) {
      if (!validHostChar(c))
        return invalid("the host may hold only letters, digits, '.', '-', '_'");
    }
  }
  int64_t portNumber = -1;
  if (!parsePythonInt(port, portNumber) || portNumber < 0 || portNumber > 65535) {
    return invalid("the port must be a number from 0 to 65535");
  }
  out.kind = BindAddress::Kind::kTcp;
  out.host.reserve(host.size());
  for (char c : host) out.host += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  out.port = static_cast<uint16_t>(portNumber);
  return std::nullopt;
}

// argparse's test for a value that looks like an option and so cannot be one's argument.
bool looksLikeNegativeNumber(std::string_view s) {
  if (s.size() < 2 || s[0] != '-') return false;
  s.remove_prefix(1);
  size_t dot = s.find('.');
  std::string_view intPart = s.substr(0, dot);
  std::string_view fracPart =
      dot == std::string_view::npos ? std::string_view{} : s.substr(dot + 1);
  for (char c : intPart) {
    if (!isDigit(c)) return false;
  }
  if (dot == std::string_view::npos) return !intPart.empty();
  if (fracPart.empty()) return false;
  for (char c : fracPart) {
    if (!isDigit(c)) return false;
  }
  return true;
}

bool canBeValue(std::string_view arg) {
  return arg.empty() || arg[0] != '-' || arg == "-" || looksLikeNegativeNumber(arg);
}

const OptionSpec* findShort(char c) {
  for (const auto& spec : kOptions) {
    if (spec.shortName == c) return &spec;
  }
  return nullptr;
}

void appendWrapped(std::string& out, std::string_view text, size_t indent, size_t width) {
  // Greedy word wrap, as argparse does for help lines.
  size_t column = indent;
  bool first = true;
  while (!text.empty()) {
    size_t space = text.find(' ');
    std::string_view word = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
    if (word.empty()) continue;
    if (!first && column + 1 + word.size() > width) {
      out += '\n';
      out.append(indent, ' ');
      column = indent;
      first = true;
    }
    if (!first) {
      out += ' ';
      ++column;
    }
    out += word;
    column += word.size();
    first = false;
  }
}

void appendOptionHelp(std::string& out, const OptionSpec& spec) {
  constexpr size_t kHelpColumn = 24;
  constexpr size_t kWidth = 79;
  std::string invocation = "  ";
  auto withMeta = [&](std::string_view name) {
    std::string s(name);
    if (!spec.meta.empty()) {
      s += ' ';
      s += spec.meta;
    }
    return s;
  };
  if (spec.shortName != 0) {
    invocation += withMeta(std::string{'-', spec.shortName});
    if (!spec.longName.empty()) invocation += ", ";
  }
  if (!spec.longName.empty()) invocation += withMeta(spec.longName);
  if (!spec.aliasName.empty()) invocation += ", " + withMeta(spec.aliasName);
  out += invocation;
  if (invocation.size() + 2 > kHelpColumn) {
    out += '\n';
    out.append(kHelpColumn, ' ');
  } else {
    out.append(kHelpColumn - invocation.size(), ' ');
  }
  std::string text(spec.help);
  if (!spec.defaultText.empty()) text += " [" + std::string(spec.defaultText) + "]";
  appendWrapped(out, text, kHelpColumn, kWidth);
  out += '\n';
}

std::string helpText() {
  std::string out =
      "usage: portico [OPTIONS] [APP_MODULE]       gunicorn's command line (below)\n"
      "       portico -c FILE [-t|-T] [-s SIGNAL]  nginx's: a configuration file in nginx's\n"
      "                                            syntax (`portico -c FILE -h` for its options)\n"
      "       portico --ini FILE.ini [OPTIONS]     uWSGI's: its ini file, each option with\n"
      "                                            uWSGI's meaning (docs/uwsgi-ini.md)\n"
      "\n"
      "portico serves a WSGI app (Django, Flask, ...) and static files over HTTP/1.1 and TLS,\n"
      "in place of nginx in front of gunicorn or uWSGI. With gunicorn's command line:\n"
      "  portico --bind 0.0.0.0:8000 --workers 4 --static /static/=staticfiles/ \\\n"
      "      myproject.wsgi:application\n"
      "Options take a value as `--flag VALUE` or `--flag=VALUE` (short: `-b ADDR` or `-bADDR`).\n"
      "As gunicorn, flags are also read from $GUNICORN_CMD_ARGS (the command line's win),\n"
      "--workers defaults to $WEB_CONCURRENCY and --bind to 0.0.0.0:$PORT when they are set.\n"
      "\n"
      "positional arguments:\n"
      "  APP_MODULE            A WSGI application as MODULE:CALLABLE, e.g.\n"
      "                        myapp.wsgi:application; MODULE alone means\n"
      "                        MODULE:application. Without it only --static files are\n"
      "                        served.\n";
  for (const auto& section : kSections) {
    out += '\n';
    out += section.title;
    out += ":\n";
    for (const auto& spec : kOptions) {
      if (spec.id != OptionId::kUnsupported && spec.section == section.section) {
        appendOptionHelp(out, spec);
      }
    }
  }
  out += "\ngunicorn options not supported yet (rejected with an error):\n  ";
  std::string names;
  for (const auto& spec : kOptions) {
    if (spec.id != OptionId::kUnsupported) continue;
    if (!names.empty()) names += ", ";
    names += displayName(spec);
  }
  appendWrapped(out, names, 2, 79);
  return out;  // no trailing newline: main prints every message with one
}

bool isIdentifierStart(unsigned char c) {
  // Bytes of a UTF-8 sequence count as letters: Python 3 module names may be non-ASCII.
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

// Python's importlib needs MODULE to be dotted identifiers; CALLABLE may be any expression
// (gunicorn accepts `module:create_app("x")`), so only its presence is checked here.
std::optional<std::string> checkAppModule(std::string_view app) {
  if (app.empty()) return "expected MODULE:CALLABLE, e.g. myapp.wsgi:application";
  size_t colon = app.find(':');
  std::string_view module = app.substr(0, colon);
  bool atStart = true;
  for (unsigned char c : module) {
    if (c == '.') {
      if (atStart) break;
      atStart = true;
    } else if (isIdentifierStart(c) || (!atStart && isDigit(static_cast<char>(c)))) {
      atStart = false;
    } else {
      atStart = true;
      break;
    }
  }
  if (colon == std::string_view::npos) {
    // A file where a module was meant: say what to give instead.
    if (app.ends_with(".ini")) return "a uWSGI ini file? give it as --ini FILE";
    if (app.ends_with(".conf")) return "a configuration file? give it as -c FILE";
    if (app.ends_with(".py")) {
      return "a Python file? give its module and callable, e.g. myproject.wsgi:application";
    }
  }
  if (atStart) return "MODULE must be a dotted Python module name, e.g. myapp.wsgi";
  if (colon != std::string_view::npos && strip(app.substr(colon + 1)).empty()) {
    return "CALLABLE after ':' is empty";
  }
  return std::nullopt;
}

// One pass over argv, in argparse's order: value errors, --help and --version act at once;
// unrecognized arguments and the APP_MODULE are reported after the whole line is read.
class Parser {
 public:
  Parser(const std::vector<std::string>& args, const CliEnvironment& env)
      : commandLine_(args), args_(&args), env_(env) {
    // gunicorn's default is the environment's FORWARDED_ALLOW_IPS, read when it starts.
    if (env.forwardedAllowIps) result_.flags.forwardedAllowIps = env.forwardedAllowIps;
  }

  CliResult run() {
    // gunicorn's --worker-connections default: a flood of connections cannot take a worker's
    // memory (each one costs its buffers), the kernel queues the rest.
    result_.config.workerConnections = 1000;
    if (!environmentDefaults()) return std::move(result_);
    if (!env_.configWords.empty()) {
      std::vector<std::string> list{"portico"};
      std::vector<std::string> contexts{""};
      for (const ConfigWord& w : env_.configWords) {
        list.push_back(w.word);
        contexts.push_back(env_.configSource +
                           (w.line > 0 ? ":" + std::to_string(w.line) : std::string()) + ": ");
      }
      phase_ = kConfPhase;
      contexts_ = &contexts;
      bool ok = parseList(list);
      contexts_ = nullptr;
      if (!ok) return std::move(result_);
      context_.clear();
    }
    if (env_.gunicornCmdArgs) {
      std::string problem;
      auto words = splitShellWords(env_.gunicornCmdArgs, problem);
      if (!words) return fail("GUNICORN_CMD_ARGS: " + problem);
      std::vector<std::string> list;
      list.reserve(words->size() + 1);
      list.emplace_back("portico");
      for (std::string& word : *words) list.push_back(std::move(word));
      context_ = "GUNICORN_CMD_ARGS: ";
      phase_ = kEnvPhase;
      if (!parseList(list)) return std::move(result_);
      context_.clear();
    }
    phase_ = kCommandLinePhase;
    if (!parseList(commandLine_)) return std::move(result_);
    if (!result_.flags.keyFile.empty() && result_.flags.certFile.empty()) {
      // gunicorn would start and fail every handshake ("certfile must be specified for
      // server-side operations").
      return fail("argument --keyfile: needs --certfile (the server's certificate)");
    }
    if (result_.config.reload && result_.config.preload) {
      // gunicorn starts, and its workers restart on a change but fork from the master's copy
      // of the old code ("The reloader is incompatible with application preloading").
      return fail("argument --reload: cannot be combined with --preload (the workers fork "
                  "from the code the master imported, so a change would restart them with "
                  "the old code); drop --preload while developing");
    }
    if (result_.flags.uwsgi && !result_.flags.certFile.empty()) {
      // The front server terminates TLS; nginx's uwsgi_pass speaks plain uwsgi (uwsgi_ssl_*
      // aside, which portico does not serve).
      return fail("argument --protocol: uwsgi cannot be combined with --certfile");
    }
    if (const auto& m = result_.flags.metricsBind) {
      std::vector<BindAddress> binds = result_.flags.binds;
      if (binds.empty()) binds.push_back(defaultBind());
      for (const BindAddress& b : binds) {
        if (b.kind == m->kind && b.host == m->host && b.port == m->port && b.path == m->path) {
          return fail("argument --metrics-bind: " + m->spec +
                      " is also a --bind address; the metrics need a listener of their own");
        }
      }
    }
    resolvePaths();
    if (done_) return std::move(result_);
    siteFromFlags(result_.flags, result_.config);
    if (result_.flags.wsgiApp.empty()) {
      result_.notice =
          std::string("no APP_MODULE given: ") +
          (result_.flags.statics.empty() ? "nothing to serve, every request is answered 404"
                                         : "serving the --static files only") +
          ". Give a WSGI app as `portico [OPTIONS] myproject.wsgi:application`, or a "
          "configuration file as `portico -c site.conf`; `portico --help` shows both.";
    }
    if (result_.action == CliResult::Action::kPrintConfig) result_.message = printConfig();
    return std::move(result_);
  }

 private:
  // One list of words (argv, or GUNICORN_CMD_ARGS split): false when it ended the parse (an
  // error, --help, --version). An unknown option is reported before a bad APP_MODULE: the
  // value of a mistyped option is taken for the app (`--bnd 0.0.0.0:80 app`).
  bool parseList(const std::vector<std::string>& list) {
    args_ = &list;
    bool optionsEnded = false;
    hasAppModule_ = false;
    appProblem_.clear();
    unrecognized_.clear();
    extraPositionals_.clear();
    for (index_ = 1; index_ < list.size() && !done_; ++index_) {
      const std::string& arg = list[index_];
      if (contexts_) context_ = (*contexts_)[index_];
      if (optionsEnded || canBeValue(arg)) {
        positional(arg);
      } else if (arg == "--") {
        optionsEnded = true;
      } else if (arg.starts_with("--")) {
        longOption(arg);
      } else {
        shortOptions(arg);
      }
    }
    if (done_) return false;
    if (contexts_) context_ = env_.configSource + ": ";
    if (!unrecognized_.empty()) {
      error("unrecognized arguments: " + unrecognized_ + suggestion());
      return false;
    }
    if (!extraPositionals_.empty()) {
      error("unrecognized arguments: " + extraPositionals_);
      return false;
    }
    if (!appProblem_.empty()) {
      error(appProblem_);
      return false;
    }
    return true;
  }

  // " (did you mean --bind?)" for the first unknown long option close to a known one.
  std::string suggestion() const {
    for (size_t begin = 0; begin < unrecognized_.size();) {
      size_t end = std::min(unrecognized_.find(' ', begin), unrecognized_.size());
      std::string_view word(unrecognized_.data() + begin, end - begin);
      begin = end + 1;
      if (!word.starts_with("--")) continue;
      word = word.substr(0, word.find('='));
      const OptionSpec* best = nullptr;
      size_t bestDistance = 3;  // at most two edits away
      for (const auto& spec : kOptions) {
        for (std::string_view name : {spec.longName, spec.aliasName}) {
          if (name.empty()) continue;
          size_t d = editDistance(word, name);
          if (d < bestDistance) {
            bestDistance = d;
            best = &spec;
          }
        }
      }
      if (best) {
        return " (" + std::string(word) + " is not an option; did you mean " +
               std::string(best->longName) + "?)";
      }
    }
    return {};
  }

  // The environment's defaults, as gunicorn reads them: false with the error set.
  bool environmentDefaults() {
    if (env_.webConcurrency) {
      int64_t n = 0;
      if (!parsePythonInt(env_.webConcurrency, n) || n < 1 ||
          n > std::numeric_limits<int>::max()) {
        error("WEB_CONCURRENCY: invalid value: " + quoted(std::string_view(env_.webConcurrency)) +
             " (a number of workers, 1 or more)");
        return false;
      }
      result_.config.workers = static_cast<int>(n);
    }
    if (env_.port) {
      BindAddress bind;
      std::string spec = std::string("0.0.0.0:") + env_.port;
      if (auto problem = parseBind(spec, bind)) {
        error("PORT: invalid value: " + quoted(std::string_view(env_.port)) + " (" + *problem + ")");
        return false;
      }
      result_.flags.fallbackBind = std::move(bind);
    }
    return true;
  }

  CliResult fail(std::string message) {
    error(std::move(message));
    return std::move(result_);
  }

  void error(std::string message) {
    result_.action = CliResult::Action::kError;
    result_.message = "portico: error: " + context_ + std::move(message);
    done_ = true;
  }

  void argumentError(const OptionSpec& spec, std::string detail) {
    error("argument " + displayName(spec) + ": " + std::move(detail));
  }

  void unrecognized(std::string_view arg) {
    if (!unrecognized_.empty()) unrecognized_ += ' ';
    unrecognized_ += arg;
  }

  void positional(const std::string& arg) {
    // argparse gives the first positional to APP_MODULE; any others are unrecognized (but
    // reported only when no option is: a mistyped option's value is no extra argument).
    if (hasAppModule_) {
      if (!extraPositionals_.empty()) extraPositionals_ += ' ';
      extraPositionals_ += arg;
      return;
    }
    std::string_view app = strip(arg);
    if (app.ends_with(".ini") && phase_ == kCommandLinePhase) {
      // As uWSGI reads `uwsgi FILE.ini`: a file, not a module (no module is named so).
      result_.flags.iniSource = std::string(app);
      return;
    }
    hasAppModule_ = true;
    if (auto problem = checkAppModule(app)) {
      appProblem_ = "argument APP_MODULE: invalid value: " + quoted(std::string_view(arg)) +
                    " (" + *problem + ")";
      return;
    }
    result_.flags.wsgiApp = std::string(app);
  }

  void longOption(const std::string& arg) {
    std::string_view name = arg;
    std::optional<std::string_view> explicitValue;
    if (size_t eq = name.find('='); eq != std::string_view::npos) {
      explicitValue = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (name.size() <= 2) {  // "--=x": no option name at all
      unrecognized(arg);
      return;
    }
    const OptionSpec* match = nullptr;
    for (const auto& spec : kOptions) {
      if (spec.longName == name || (!spec.aliasName.empty() && spec.aliasName == name)) {
        match = &spec;
        break;
      }
    }
    if (match == nullptr) {
      // argparse accepts any unambiguous prefix of a long option (allow_abbrev).
      std::string candidates;
      int count = 0;
      for (const auto& spec : kOptions) {
        bool hit = spec.longName.starts_with(name) ||
                   (!spec.aliasName.empty() && spec.aliasName.starts_with(name));
        if (!hit) continue;
        match = &spec;
        ++count;
        if (!candidates.empty()) candidates += ", ";
        candidates += spec.aliasName.starts_with(name) && !spec.longName.starts_with(name)
                          ? spec.aliasName
                          : spec.longName;
      }
      if (count > 1) {
        error("ambiguous option: " + arg + " could match " + candidates);
        return;
      }
      if (count == 0) {
        unrecognized(arg);
        return;
      }
    }
    apply(*match, explicitValue);
  }

  void shortOptions(const std::string& arg) {
    // A cluster such as "-vb ADDR": flags without a value may be followed by more options.
    std::string_view rest = std::string_view(arg).substr(1);
    while (!rest.empty() && !done_) {
      const OptionSpec* spec = findShort(rest[0]);
      if (spec == nullptr) {
        unrecognized(arg);
        return;
      }
      std::string_view tail = rest.substr(1);
      if (takesValue(*spec) || spec->id == OptionId::kUnsupported) {
        std::optional<std::string_view> explicitValue;
        if (!tail.empty()) explicitValue = tail.front() == '=' ? tail.substr(1) : tail;
        apply(*spec, explicitValue);
        return;
      }
      if (!tail.empty() && tail.front() == '=') {
        apply(*spec, tail.substr(1));
        return;
      }
      if (!tail.empty() && findShort(tail.front()) == nullptr) {
        apply(*spec, tail);  // reported as an ignored explicit argument
        return;
      }
      apply(*spec, std::nullopt);
      rest = tail;
    }
  }

  void apply(const OptionSpec& spec, std::optional<std::string_view> explicitValue) {
    if (spec.id == OptionId::kUnsupported) {
      // With what to use instead when there is something (the spec's help says it).
      argumentError(spec, spec.help.empty() ? std::string("not supported yet")
                                            : "not supported; " + std::string(spec.help));
      return;
    }
    if (!takesValue(spec)) {
      if (explicitValue) {
        argumentError(spec, "ignored explicit argument " + quoted(*explicitValue));
        return;
      }
      flag(spec);
      return;
    }
    std::string_view value;
    if (explicitValue) {
      value = *explicitValue;
    } else if (index_ + 1 < args_->size() && canBeValue((*args_)[index_ + 1])) {
      value = (*args_)[++index_];
    } else {
      argumentError(spec, "expected one argument");
      return;
    }
    withValue(spec, value);
  }

  void flag(const OptionSpec& spec) {
    switch (spec.id) {
      case OptionId::kHelp:
        result_.action = CliResult::Action::kHelp;
        result_.message = helpText();
        done_ = true;
        break;
      case OptionId::kVersion:
        result_.action = CliResult::Action::kVersion;
        result_.message = std::string("portico ") + kPorticoVersion;
        done_ = true;
        break;
      case OptionId::kNoServerHeader:
        result_.flags.serverHeader = false;
        break;
      case OptionId::kProxyProtocol:
        result_.flags.proxyProtocol = true;
        break;
      case OptionId::kPreload:
        result_.config.preload = true;
        break;
      case OptionId::kDaemon:
        result_.config.daemon = true;
        break;
      case OptionId::kStdioInheritance:
        result_.config.stdioInheritance = true;
        break;
      case OptionId::kCaptureOutput:
        result_.config.captureOutput = true;
        break;
      case OptionId::kReload:
        result_.config.reload = true;
        break;
      case OptionId::kInitgroups:
        result_.flags.initgroups = true;  // what portico does whenever it switches user
        break;
      case OptionId::kCheckConfig:
        if (result_.action == CliResult::Action::kRun) result_.action = CliResult::Action::kCheckConfig;
        break;
      case OptionId::kPrintConfig:
        result_.action = CliResult::Action::kPrintConfig;
        break;
      case OptionId::kSuppressRaggedEofs:
        result_.flags.suppressRaggedEofs = true;
        break;
      case OptionId::kDoHandshakeOnConnect:
        result_.flags.doHandshakeOnConnect = true;
        break;
      default:
        break;
    }
  }

  // Reads an int option; false (with the error set) when malformed or below `minimum`.
  bool intValue(const OptionSpec& spec, std::string_view value, int64_t minimum, int64_t& out) {
    if (!parsePythonInt(value, out)) {
      argumentError(spec, "invalid int value: " + quoted(value));
      return false;
    }
    if (out < minimum) {
      argumentError(
          spec, "invalid value: " + quoted(value) + " (must be " +
                    (minimum == 0 ? std::string("0 or more") : ">= " + std::to_string(minimum)) +
                    ")");
      return false;
    }
    if (out > std::numeric_limits<int>::max()) {
      argumentError(spec, "invalid value: " + quoted(value) + " (too large)");
      return false;
    }
    return true;
  }

  bool secondsValue(const OptionSpec& spec, std::string_view value, double& out) {
    if (!parseSeconds(value, out)) {
      argumentError(spec, "invalid time value: " + quoted(value) +
                              " (seconds, or a number with an ms/s/m/h/d unit)");
      return false;
    }
    return true;
  }

  // gunicorn sets each setting from the configuration file, then GUNICORN_CMD_ARGS, then the
  // command line: a list a later one gives replaces the earlier's whole.
  void replaceEnvList(OptionId id) {
    // --uwsgi-socket adds to --bind's list: a later phase's sockets of either kind replace all.
    if (id == OptionId::kUwsgiSocket) id = OptionId::kBind;
    bool isList = id == OptionId::kBind || id == OptionId::kEnv || id == OptionId::kStatic ||
                  id == OptionId::kPythonPath || id == OptionId::kReloadExtraFile;
    if (!isList) return;
    auto at = std::find_if(listPhases_.begin(), listPhases_.end(),
                           [id](const auto& entry) { return entry.first == id; });
    if (at == listPhases_.end()) {
      listPhases_.emplace_back(id, phase_);
      return;
    }
    if (at->second == phase_) return;
    at->second = phase_;
    GunicornFlags& flags = result_.flags;
    if (id == OptionId::kBind) flags.binds.clear();
    if (id == OptionId::kEnv) flags.env.clear();
    if (id == OptionId::kStatic) flags.statics.clear();
    if (id == OptionId::kPythonPath) flags.pythonPath.clear();
    if (id == OptionId::kReloadExtraFile) result_.config.reloadExtraFiles.clear();
  }

  void withValue(const OptionSpec& spec, std::string_view raw) {
    Config& config = result_.config;
    GunicornFlags& flags = result_.flags;
    std::string_view value = strip(raw);
    int64_t number = 0;
    replaceEnvList(spec.id);
    switch (spec.id) {
      case OptionId::kWorkerClass:
        workerClass(spec, value);
        break;
      case OptionId::kUser:
        config.user = std::string(value);
        if (!groupGiven_) config.keepGroup = true;
        break;
      case OptionId::kGroup:
        config.group = std::string(value);
        config.keepGroup = false;
        groupGiven_ = true;
        break;
      case OptionId::kUmask:
        umaskValue(spec, value);
        break;
      case OptionId::kStatsdHost: {
        // gunicorn 20.1's validate_hostport: exactly one ':' and a number after it.
        size_t colon = value.find(':');
        int64_t port = 0;
        if (colon == std::string_view::npos || value.find(':', colon + 1) != std::string_view::npos ||
            colon == 0 || !parsePythonInt(value.substr(colon + 1), port) || port < 0 ||
            port > 65535) {
          argumentError(spec, "invalid value: " + quoted(value) +
                                  " (Value must consist of: hostname:port)");
          return;
        }
        config.statsdHost = std::string(value);
        break;
      }
      case OptionId::kStatsdPrefix:
        config.statsdPrefix = std::string(raw);
        break;
      case OptionId::kDogstatsdTags:
        config.dogstatsdTags = std::string(raw);
        break;
      case OptionId::kName:
        config.procName = std::string(value);
        break;
      case OptionId::kWorkerTmpDir:
        config.workerTmpDir = std::string(value);
        break;
      case OptionId::kReloadEngine:
        // gunicorn's reloader_engines; its message, with the choices argparse would list.
        if (value == "auto" || value == "poll" || value == "inotify") {
          config.reloadEngine = std::string(value);
        } else {
          argumentError(spec, "Invalid reload_engine: " + quoted(value) +
                                  " (choose from 'auto', 'poll', 'inotify')");
        }
        break;
      case OptionId::kReloadExtraFile:
        // Kept relative until the whole line is read (--chdir may come later); main checks
        // that each exists, as gunicorn's validator does.
        if (value.empty()) {
          argumentError(spec, "invalid value: " + quoted(raw) + " (expected a file)");
          return;
        }
        config.reloadExtraFiles.emplace_back(value);
        break;
      case OptionId::kConfig:
        // The file's own `config` is not a setting (gunicorn ignores it there too).
        if (phase_ != kConfPhase) flags.configSource = std::string(value);
        break;
      case OptionId::kBind: {
        BindAddress bind;
        if (auto problem = parseBind(raw, bind)) {
          argumentError(spec, *problem);
          return;
        }
        flags.binds.push_back(std::move(bind));
        break;
      }
      case OptionId::kUwsgiSocket: {
        BindAddress bind;
        if (auto problem = parseBind(raw, bind)) {
          argumentError(spec, *problem);
          return;
        }
        bind.uwsgi = true;
        flags.binds.push_back(std::move(bind));
        break;
      }
      case OptionId::kChmodSocket:
        socketModeValue(spec, value);
        break;
      case OptionId::kTouchReload:
        if (value.empty()) {
          argumentError(spec, "expected a file name");
          return;
        }
        config.touchReload.emplace_back(value);
        break;
      case OptionId::kIni:
        if (phase_ == kConfPhase) {
          argumentError(spec, "an ini file cannot name another (uWSGI's include is not read)");
          return;
        }
        if (value.empty()) {
          argumentError(spec, "expected FILE[:SECTION]");
          return;
        }
        flags.iniSource = std::string(value);
        break;
      case OptionId::kMetricsBind: {
        BindAddress bind;
        if (auto problem = parseBind(raw, bind)) {
          argumentError(spec, *problem);
          return;
        }
        flags.metricsBind = std::move(bind);
        break;
      }
      case OptionId::kBacklog:
        if (intValue(spec, raw, 1, number)) flags.backlog = static_cast<int>(number);
        break;
      case OptionId::kLogFormat:
        if (raw == "text" || raw == "json") {
          config.jsonLogs = raw == "json";
        } else {
          argumentError(spec, "invalid choice: " + quoted(raw) + " (choose from 'text', 'json')");
        }
        break;
      case OptionId::kProtocol:
        if (raw == "http" || raw == "uwsgi") {
          flags.uwsgi = raw == "uwsgi";
        } else {
          argumentError(spec, "invalid choice: " + quoted(raw) + " (choose from 'http', 'uwsgi')");
        }
        break;
      case OptionId::kWorkerConnections:
        if (intValue(spec, raw, 1, number)) config.workerConnections = static_cast<int>(number);
        break;
      case OptionId::kThreads:
        if (intValue(spec, raw, 1, number)) flags.threads = static_cast<int>(number);
        break;
      case OptionId::kWorkers:
        if (value == "auto") {
          config.workers = 0;  // the master resolves it to the number of cores
        } else if (intValue(spec, raw, 1, number)) {
          config.workers = static_cast<int>(number);
        }
        break;
      case OptionId::kMaxRequests:
        if (intValue(spec, raw, 0, number)) config.maxRequests = static_cast<uint64_t>(number);
        break;
      case OptionId::kMaxRequestsJitter:
        if (intValue(spec, raw, 0, number)) {
          config.maxRequestsJitter = static_cast<uint64_t>(number);
        }
        break;
      case OptionId::kMaxWorkerMemory:
        if (intValue(spec, raw, 0, number)) {
          config.maxWorkerMemoryMb = static_cast<uint64_t>(number);
        }
        break;
      case OptionId::kGracefulTimeout:
        secondsValue(spec, raw, config.gracefulTimeoutSeconds);
        break;
      case OptionId::kSignal:
        if (raw == "stop" || raw == "quit" || raw == "reload" || raw == "reopen") {
          config.signalCommand = std::string(raw);
        } else {
          argumentError(spec, "invalid choice: " + quoted(raw) +
                                  " (choose from 'stop', 'quit', 'reload', 'reopen')");
        }
        break;
      case OptionId::kTimeout:
        secondsValue(spec, raw, config.timeoutSeconds);
        break;
      case OptionId::kKeepAlive:
        secondsValue(spec, raw, flags.keepAliveSeconds);
        break;
      case OptionId::kHeaderTimeout:
        secondsValue(spec, raw, flags.headerTimeoutSeconds);
        break;
      case OptionId::kBodyTimeout:
        secondsValue(spec, raw, flags.bodyTimeoutSeconds);
        break;
      case OptionId::kSendTimeout:
        secondsValue(spec, raw, flags.sendTimeoutSeconds);
        break;
      case OptionId::kLimitRequestLine:
        if (intValue(spec, raw, 0, number)) {
          flags.limitRequestLine = number == 0
                                        ? kUnlimitedHeaderSize
                                        : static_cast<size_t>(std::min(number, kMaxRequestLine));
        }
        break;
      case OptionId::kLimitRequestFields:
        if (intValue(spec, raw, 0, number)) {
          flags.limitRequestFields =
              number == 0 ? kMaxRequestFields
                          : static_cast<size_t>(std::min(number, kMaxRequestFields));
        }
        break;
      case OptionId::kLimitRequestFieldSize:
        if (intValue(spec, raw, 0, number)) {
          flags.limitRequestFieldSize =
              number == 0 ? kUnlimitedHeaderSize : static_cast<size_t>(number);
        }
        break;
      case OptionId::kLimitRequestBody: {
        uint64_t size = 0;
        if (!parseSize(raw, size)) {
          argumentError(spec, "invalid size value: " + quoted(raw) +
                                  " (bytes, or a number with a k, m or g suffix)");
          return;
        }
        flags.limitRequestBody = size;
        break;
      }
      case OptionId::kAccessLogFile:
        flags.accessLogFile = std::string(value);
        break;
      case OptionId::kAccessLogFormat:
        flags.accessLogFormat = std::string(value);
        break;
      case OptionId::kErrorLogFile:
        config.errorLogFile = std::string(value);
        break;
      case OptionId::kLogLevel:
        if (!parseLogLevel(value, config.logLevel)) {
          argumentError(spec, "invalid choice: " + quoted(raw) +
                                  " (choose from 'debug', 'info', 'warning', 'error', 'critical')");
        }
        break;
      case OptionId::kPid:
        config.pidFile = std::string(value);
        break;
      case OptionId::kForwardedAllowIps:
        flags.forwardedAllowIps = std::string(value);
        break;
      case OptionId::kProxyAllowFrom:
        flags.proxyAllowFrom = std::string(value);
        break;
      case OptionId::kChdir:
        if (value.empty()) {
          argumentError(spec, "invalid value: " + quoted(raw) + " (expected a directory)");
          return;
        }
        config.chdir = std::string(value);
        break;
      case OptionId::kPythonPath:
        // Kept relative until the whole line is read, as --static directories.
        for (size_t begin = 0; begin <= value.size();) {
          size_t comma = std::min(value.find(',', begin), value.size());
          std::string_view path = strip(value.substr(begin, comma - begin));
          if (!path.empty()) flags.pythonPath.emplace_back(path);
          begin = comma + 1;
        }
        break;
      case OptionId::kEnv: {
        size_t eq = value.find('=');
        if (eq == std::string_view::npos || eq == 0) {
          argumentError(spec, "invalid value: " + quoted(raw) +
                                  (eq == 0 ? " (KEY is empty)" : " (expected KEY=VALUE)"));
          return;
        }
        flags.env.emplace_back(std::string(value.substr(0, eq)),
                                std::string(value.substr(eq + 1)));
        break;
      }
      case OptionId::kVirtualenv:
        if (value.empty()) {
          argumentError(spec, "invalid value: " + quoted(raw) + " (expected a directory)");
          return;
        }
        flags.virtualenv = std::string(value);
        break;
      case OptionId::kStatic:
        staticMount(spec, value);
        break;
      case OptionId::kKeyFile:
        flags.keyFile = std::string(value);
        break;
      case OptionId::kCertFile:
        flags.certFile = std::string(value);
        break;
      case OptionId::kCaCerts:
        flags.caCerts = std::string(value);
        break;
      case OptionId::kCiphers:
        flags.ciphers = std::string(value);
        break;
      case OptionId::kCertReqs:
        // gunicorn takes any int 0 or more; Python's ssl knows only these three.
        if (!intValue(spec, raw, 0, number)) return;
        if (number > 2) {
          argumentError(spec, "invalid value: " + quoted(raw) +
                                  " (0: CERT_NONE, 1: CERT_OPTIONAL, 2: CERT_REQUIRED)");
          return;
        }
        flags.certReqs = static_cast<int>(number);
        break;
      case OptionId::kSslVersion:
        sslVersion(spec, value);
        break;
      default:
        break;
    }
  }

  // gunicorn's auto_int: 18, 0o22, 0x12, and 022 (octal, as a shell's umask).
  void umaskValue(const OptionSpec& spec, std::string_view value) {
    std::string text(value);
    int base = 10;
    size_t digits = 0;
    if (text.size() > 1 && text[0] == '0' && (text[1] == 'o' || text[1] == 'O')) {
      base = 8;
      digits = 2;
    } else if (text.size() > 1 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
      base = 16;
      digits = 2;
    } else if (text.size() > 1 && text[0] == '0') {
      base = 8;
      digits = 1;
    }
    int parsed = 0;
    const char* begin = text.data() + digits;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(begin, end, parsed, base);
    if (begin == end || ec != std::errc() || ptr != end || parsed < 0 || parsed > 0777) {
      argumentError(spec, "invalid value: " + quoted(value) + " (a mask from 0 to 0o777, e.g. 0o022)");
      return;
    }
    result_.config.umask = parsed;
  }

  // uWSGI's chmod-socket: octal digits (660, 0660, 0o660).
  void socketModeValue(const OptionSpec& spec, std::string_view value) {
    std::string_view digits = value;
    if (digits.starts_with("0o") || digits.starts_with("0O")) digits.remove_prefix(2);
    int parsed = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), parsed, 8);
    if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size() ||
        parsed > 07777) {
      argumentError(spec, "invalid value: " + quoted(value) + " (an octal mode, e.g. 660)");
      return;
    }
    result_.flags.socketMode = parsed;
  }

  // -k: gunicorn's sync and gthread workers are what portico's workers are (a sync worker with
  // --threads > 1 is gthread in gunicorn too); the others would change the app's concurrency
  // model, so they are refused with what to use.
  void workerClass(const OptionSpec& spec, std::string_view value) {
    static constexpr std::pair<std::string_view, std::string_view> kAccepted[] = {
        {"sync", "sync"},
        {"egg:gunicorn#sync", "sync"},
        {"gunicorn.workers.sync.SyncWorker", "sync"},
        {"gthread", "gthread"},
        {"egg:gunicorn#gthread", "gthread"},
        {"gunicorn.workers.gthread.ThreadWorker", "gthread"},
    };
    for (const auto& [name, kind] : kAccepted) {
      if (value == name) {
        result_.flags.workerClass = std::string(kind);
        return;
      }
    }
    std::string why;
    if (value.find("uvicorn") != std::string_view::npos || value.find("asgi") != std::string_view::npos ||
        value.find("Uvicorn") != std::string_view::npos) {
      why = "an ASGI worker; portico serves WSGI apps (Django's wsgi.py, not asgi.py)";
    } else if (value.find("gevent") != std::string_view::npos ||
               value.find("eventlet") != std::string_view::npos ||
               value.find("tornado") != std::string_view::npos) {
      why = "portico does not run green threads or Tornado";
    } else {
      why = "not a worker class portico knows";
    }
    argumentError(spec, "invalid value: " + quoted(value) + " (" + why +
                            "); portico's workers run the app in Python threads on an event "
                            "loop: use -k gthread (or sync) with --threads N");
  }

  // gunicorn's validate_ssl_version: a name after ssl.PROTOCOL_ or its number, as Python's
  // ssl module on Debian 12 has them (no SSLv2/SSLv3), mapped to the protocol range it means.
  void sslVersion(const OptionSpec& spec, std::string_view value) {
    struct Version {
      std::string_view name;
      int number;
      std::string_view protocols;  // ssl_protocols words; empty: cannot serve
    };
    static constexpr Version kVersions[] = {
        {"SSLv23", 2, "TLSv1.2 TLSv1.3"},   {"TLS", 2, "TLSv1.2 TLSv1.3"},
        {"TLS_CLIENT", 16, ""},             {"TLS_SERVER", 17, "TLSv1.2 TLSv1.3"},
        {"TLSv1", 3, "TLSv1"},              {"TLSv1_1", 4, "TLSv1.1"},
        {"TLSv1_2", 5, "TLSv1.2"},
    };
    const Version* match = nullptr;
    int64_t number = -1;
    bool numeric = parsePythonInt(value, number);
    for (const Version& version : kVersions) {
      if (value == version.name || (numeric && number == version.number)) {
        match = &version;
        break;
      }
    }
    if (match == nullptr) {
      argumentError(spec, "Invalid ssl_version: " + std::string(value) +
                              ". Valid options: SSLv23, TLS, TLS_CLIENT, TLS_SERVER, TLSv1, "
                              "TLSv1_1, TLSv1_2");
      return;
    }
    if (match->protocols.empty()) {
      // gunicorn starts with it and then fails every handshake.
      argumentError(spec, "invalid value: " + quoted(value) +
                              " (TLS_CLIENT is for clients: a server cannot use it)");
      return;
    }
    result_.flags.sslProtocols = std::string(match->protocols);
  }

  void staticMount(const OptionSpec& spec, std::string_view value) {
    size_t eq = value.find('=');
    auto bad = [&](std::string_view why) {
      argumentError(spec, "invalid value: " + quoted(value) + " (" + std::string(why) + ")");
    };
    if (eq == std::string_view::npos) {
      bad("expected PREFIX=DIR, e.g. /static/=./staticfiles/");
      return;
    }
    std::string prefix(strip(value.substr(0, eq)));
    std::string directory(strip(value.substr(eq + 1)));
    if (prefix.empty() || prefix.front() != '/') {
      bad("PREFIX must start with '/'");
      return;
    }
    if (directory.empty()) {
      bad("DIR is empty");
      return;
    }
    if (prefix.back() != '/') prefix += '/';
    for (const auto& mount : result_.flags.statics) {
      if (mount.prefix == prefix) {
        bad("PREFIX " + prefix + " is already mounted");
        return;
      }
    }
    // The directory stays relative until the whole line is read: --chdir may come later.
    result_.flags.statics.push_back({std::move(prefix), std::move(directory)});
  }

  // gunicorn's print(cfg): every setting portico takes from the flags, by gunicorn's name,
  // sorted, "name = value" with the names padded, values as Python's str() shows them.
  std::string printConfig() const {
    const Config& config = result_.config;
    const GunicornFlags& flags = result_.flags;
    auto text = [](const std::string& value) { return value.empty() ? std::string("None") : value; };
    auto number = [](double value) {
      char buf[32];
      if (value == std::floor(value) && std::fabs(value) < 1e15) {
        std::snprintf(buf, sizeof buf, "%.0f", value);
      } else {
        std::snprintf(buf, sizeof buf, "%g", value);
      }
      return std::string(buf);
    };
    auto list = [](const std::vector<std::string>& items) {
      std::string out = "[";
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        out += "'" + items[i] + "'";
      }
      return out + "]";
    };
    std::vector<std::string> binds;
    for (const BindAddress& b : flags.binds.empty() ? std::vector<BindAddress>{flags.fallbackBind}
                                                     : flags.binds) {
      binds.push_back(b.spec);
    }
    std::vector<std::string> env;
    for (const auto& [key, value] : flags.env) env.push_back(key + "=" + value);
    std::string pythonPath;
    for (const std::string& path : flags.pythonPath) {
      pythonPath += (pythonPath.empty() ? "" : ",") + path;
    }
    static constexpr std::string_view kLevels[] = {"debug", "info", "notice", "warning",
                                                   "error", "critical", "alert", "emerg"};
    int workers = config.workers > 0 ? config.workers : usableCpuCount();
    std::vector<std::pair<std::string, std::string>> settings = {
        {"accesslog", text(flags.accessLogFile)},
        {"backlog", std::to_string(flags.backlog)},
        {"bind", list(binds)},
        {"ca_certs", text(flags.caCerts)},
        {"capture_output", config.captureOutput ? "True" : "False"},
        {"cert_reqs", std::to_string(flags.certReqs)},
        {"certfile", text(flags.certFile)},
        {"chdir", config.chdir.empty() ? currentDirectory() : config.chdir},
        {"ciphers", text(flags.ciphers)},
        {"daemon", config.daemon ? "True" : "False"},
        {"dogstatsd_tags", config.dogstatsdTags},
        {"enable_stdio_inheritance", config.stdioInheritance ? "True" : "False"},
        {"errorlog", config.errorLogFile},
        {"forwarded_allow_ips", list(splitAllowIps(flags.forwardedAllowIps))},
        {"graceful_timeout", number(config.gracefulTimeoutSeconds)},
        {"initgroups", flags.initgroups ? "True" : "False"},
        {"keepalive", number(flags.keepAliveSeconds)},
        {"keyfile", text(flags.keyFile)},
        {"limit_request_field_size", std::to_string(flags.limitRequestFieldSize)},
        {"limit_request_fields", std::to_string(flags.limitRequestFields)},
        {"limit_request_line", std::to_string(flags.limitRequestLine)},
        {"loglevel", std::string(kLevels[static_cast<size_t>(config.logLevel)])},
        {"max_requests", std::to_string(config.maxRequests)},
        {"max_requests_jitter", std::to_string(config.maxRequestsJitter)},
        {"pidfile", text(config.pidFile)},
        {"preload_app", config.preload ? "True" : "False"},
        {"proc_name", text(config.procName)},
        {"proxy_allow_ips", list(splitAllowIps(flags.proxyAllowFrom))},
        {"proxy_protocol", flags.proxyProtocol ? "True" : "False"},
        {"pythonpath", text(pythonPath)},
        {"raw_env", list(env)},
        {"reload", config.reload ? "True" : "False"},
        {"reload_engine", config.reloadEngine},
        {"reload_extra_files", list(config.reloadExtraFiles)},
        {"statsd_host", statsdHost(config.statsdHost)},
        {"statsd_prefix", config.statsdPrefix},
        {"threads", std::to_string(flags.threads)},
        {"timeout", number(config.timeoutSeconds)},
        {"umask", std::to_string(config.umask < 0 ? 0 : config.umask)},
        {"worker_class", flags.workerClass},
        {"worker_connections", std::to_string(config.workerConnections)},
        {"worker_tmp_dir", text(config.workerTmpDir)},
        {"workers", std::to_string(workers)},
    };
    size_t width = 0;
    for (const auto& setting : settings) width = std::max(width, setting.first.size());
    std::string out;
    for (const auto& [name, value] : settings) {
      out += name + std::string(width - name.size(), ' ') + " = " + value + "\n";
    }
    return out;
  }

  // gunicorn's statsd_host as it prints it: ('host', port), or None.
  static std::string statsdHost(const std::string& hostPort) {
    if (hostPort.empty()) return "None";
    size_t colon = hostPort.find(':');
    int64_t port = 0;
    parsePythonInt(hostPort.substr(colon + 1), port);
    return "('" + hostPort.substr(0, colon) + "', " + std::to_string(port) + ")";
  }

  static std::string currentDirectory() {
    std::error_code ec;
    std::string cwd = std::filesystem::current_path(ec).string();
    return ec ? std::string("None") : cwd;
  }

  void resolvePaths() {
    Config& config = result_.config;
    GunicornFlags& flags = result_.flags;
    namespace fs = std::filesystem;
    auto relative = [](const std::string& path) { return path.front() != '/'; };
    bool needCwd = !config.chdir.empty() && relative(config.chdir);
    for (const auto& mount : flags.statics) needCwd |= relative(mount.directory);
    for (const auto& path : flags.pythonPath) needCwd |= relative(path);
    needCwd |= !flags.virtualenv.empty() && relative(flags.virtualenv);
    for (const auto& path : config.reloadExtraFiles) needCwd |= relative(path);
    for (const std::string* path : {&flags.certFile, &flags.keyFile, &flags.caCerts}) {
      needCwd |= !path->empty() && relative(*path);
    }
    fs::path cwd;
    if (needCwd) {
      std::error_code ec;
      cwd = fs::current_path(ec);
      if (ec) {
        error("cannot determine the current directory: " + ec.message());
        return;
      }
    }
    // Like Python's os.path.abspath: normalized, no trailing '/' (except the root itself).
    auto absolute = [](const fs::path& base, const std::string& path) {
      std::string out = (base / path).lexically_normal().string();
      if (out.size() > 1 && out.back() == '/') out.pop_back();
      return out;
    };
    fs::path base = cwd;
    if (!config.chdir.empty()) {
      config.chdir = absolute(cwd, config.chdir);
      base = config.chdir;
    }
    for (auto& mount : flags.statics) {
      std::string directory = absolute(base, mount.directory);
      if (directory.back() != '/') directory += '/';
      mount.directory = std::move(directory);
    }
    // gunicorn adds a directory to sys.path only once; the first mention keeps its place.
    std::vector<std::string> pythonPath;
    for (const auto& path : flags.pythonPath) {
      std::string resolved = absolute(base, path);
      if (std::find(pythonPath.begin(), pythonPath.end(), resolved) == pythonPath.end()) {
        pythonPath.push_back(std::move(resolved));
      }
    }
    flags.pythonPath = std::move(pythonPath);
    if (!flags.virtualenv.empty()) flags.virtualenv = absolute(base, flags.virtualenv);
    // The watcher looks for them by absolute path (the worker runs in --chdir).
    for (std::string& path : config.reloadExtraFiles) path = absolute(base, path);
    // gunicorn opens them after its chdir.
    for (std::string* path : {&flags.certFile, &flags.keyFile, &flags.caCerts}) {
      if (!path->empty()) *path = absolute(base, *path);
    }
  }

  const std::vector<std::string>& commandLine_;
  const std::vector<std::string>* args_;  // the list being read: GUNICORN_CMD_ARGS', then argv
  const CliEnvironment& env_;
  size_t index_ = 1;
  bool done_ = false;
  CliResult result_;
  std::string unrecognized_;       // unknown options, as written
  std::string extraPositionals_;  // positionals after APP_MODULE
  bool hasAppModule_ = false;
  std::string appProblem_;  // a bad APP_MODULE, reported after unknown options
  bool groupGiven_ = false;  // --group seen (--user alone keeps the master's group)
  std::string context_;     // "GUNICORN_CMD_ARGS: " while its words are read
  // Which source is being read, and the one that last gave each repeatable setting (a later
  // source's first occurrence replaces the list whole).
  enum Phase { kConfPhase, kEnvPhase, kCommandLinePhase };
  Phase phase_ = kCommandLinePhase;
  std::vector<std::pair<OptionId, Phase>> listPhases_;
  const std::vector<std::string>* contexts_ = nullptr;  // per word: "FILE:LINE: " (the file's)
};

}  // namespace

CliResult parseCommandLine(const std::vector<std::string>& args, const char* forwardedAllowIps) {
  CliEnvironment env;
  env.forwardedAllowIps = forwardedAllowIps;
  return Parser(args, env).run();
}

CliResult parseCommandLine(const std::vector<std::string>& args, const CliEnvironment& env) {
  return Parser(args, env).run();
}

CliEnvironment CliEnvironment::fromProcess() {
  CliEnvironment env;
  env.forwardedAllowIps = std::getenv("FORWARDED_ALLOW_IPS");
  env.gunicornCmdArgs = std::getenv("GUNICORN_CMD_ARGS");
  env.webConcurrency = std::getenv("WEB_CONCURRENCY");
  env.port = std::getenv("PORT");
  return env;
}

std::optional<std::vector<std::string>> splitShellWords(std::string_view text, std::string& error) {
  std::vector<std::string> words;
  std::string word;
  bool inWord = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (inWord) words.push_back(std::exchange(word, {}));
      inWord = false;
      continue;
    }
    inWord = true;
    if (c == '\'') {
      size_t end = text.find('\'', i + 1);
      if (end == std::string_view::npos) {
        error = "No closing quotation";
        return std::nullopt;
      }
      word.append(text.substr(i + 1, end - i - 1));
      i = end;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < text.size() && text[j] != '"'; ++j) {
        // Inside double quotes a backslash escapes only " and itself (shlex's posix mode).
        if (text[j] == '\\' && j + 1 < text.size() &&
            (text[j + 1] == '"' || text[j + 1] == '\\')) {
          ++j;
        }
        word += text[j];
      }
      if (j >= text.size()) {
        error = "No closing quotation";
        return std::nullopt;
      }
      i = j;
    } else if (c == '\\') {
      if (i + 1 >= text.size()) {
        error = "No escaped character";
        return std::nullopt;
      }
      word += text[++i];
    } else {
      word += c;
    }
  }
  if (inWord) words.push_back(std::move(word));
  return words;
}

}  // namespace portico::config
