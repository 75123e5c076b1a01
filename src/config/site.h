#pragma once

// The HTTP part of the typed configuration model: virtual servers, their locations and the
// settings nginx lets each level inherit. Filled by the nginx-style file (conf_builder) and by the
// gunicorn-style flags (one server built from --bind, --static and the app). Pure data: no I/O,
// no compiled regexes (the runtime compiles them). Read-only once the server starts.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/log.h"
#include "config/access_conf.h"
#include "config/upstream.h"

namespace portico::config {

// Where a directive came from, for messages ("in /etc/portico/site.conf:12").
struct SourceRef {
  std::string file;
  int line = 0;
};

// One `listen` directive (nginx: address:port, port, address, [::]:port, unix:PATH).
struct ListenSpec {
  // TCP host ("" = any IPv4, "::" = any IPv6) and port, or a unix path.
  bool isUnix = false;
  std::string host;
  uint16_t port = 80;
  std::string path;
  std::string spec;           // as written, for messages
  bool defaultServer = false; // `default_server` (or `default`)
  bool reuseport = false;
  // nginx's lsopt.bind: `bind`, and every socket option (backlog=, reuseport) implies it; the
  // address then gets its own socket even when a wildcard listens on the same port.
  bool bind = false;
  int backlog = -1;           // -1: portico's default, 2048 (nginx's is 511; the flags: --backlog)
  bool ssl = false;           // `ssl`: connections on this address speak TLS first
  // `proxy_protocol`: connections on this address begin with a PROXY protocol header (v1 or
  // v2), read before anything else (nginx ORs it over the listens of an address). The flags'
  // --proxy-protocol makes it optional, taken from the --proxy-allow-from peers ("*": all).
  bool proxyProtocol = false;
  bool proxyProtocolOptional = false;
  std::vector<std::string> proxyAllowFrom;
  // `uwsgi` (portico's own parameter): the address speaks the uwsgi protocol to a front server
  // (nginx's uwsgi_pass) instead of HTTP; ORed over the address's listens, as `ssl`.
  bool uwsgi = false;
  // The flags' --chmod-socket (uWSGI's chmod-socket): a unix socket's mode once bound; -1: as
  // the umask leaves it (nginx's listen has no such parameter).
  int socketMode = -1;
  // rcvbuf= / sndbuf=: SO_RCVBUF / SO_SNDBUF on the listening socket (accepted connections
  // inherit them); -1: the kernel's default.
  int64_t rcvbuf = -1;
  int64_t sndbuf = -1;
  SourceRef source;
};

// A virtual server's ssl_* directives (nginx's ngx_http_ssl_module), merged http → server.
// Certificates and keys are paths, read when the worker's TLS contexts are made (before
// privileges drop) and at -t.
struct TlsServerSettings {
  std::vector<std::string> certificates;  // ssl_certificate, in order (ECDSA and RSA may both be)
  std::vector<std::string> keys;          // ssl_certificate_key, pairwise with certificates
  std::string protocols = "TLSv1.2 TLSv1.3";  // ssl_protocols, as written (nginx's default)
  // ssl_ciphers: nginx's default less the static RSA key exchange, so that the default offers
  // forward secrecy only (testssl.sh: tests/integration/test_testssl.py).
  std::string ciphers = "HIGH:!aNULL:!MD5:!kRSA";
  bool preferServerCiphers = false;           // ssl_prefer_server_ciphers
  std::string ecdhCurve = "auto";             // ssl_ecdh_curve
  std::string clientCertificate;  // ssl_client_certificate (CAs that verify, and whose names are sent)
  enum class VerifyClient { kOff, kOn, kOptional, kOptionalNoCa } verifyClient = VerifyClient::kOff;
  int verifyDepth = 1;            // ssl_verify_depth
  std::string trustedCertificate;  // ssl_trusted_certificate (CAs that verify, names not sent)
  std::string crl;                 // ssl_crl
  bool stapling = false;           // ssl_stapling
  std::string staplingFile;        // ssl_stapling_file (a DER OCSP response, served as is)
  std::string staplingResponder;   // ssl_stapling_responder
  bool staplingVerify = false;     // ssl_stapling_verify
  // gunicorn's way (Python's ssl): a missing (kOn) or unverifiable certificate fails the
  // handshake. nginx's way (false): every handshake completes and the request is refused
  // with 400 from the verification result.
  bool verifyInHandshake = false;
  // ssl_session_cache, as nginx's builtin_session_cache: kSessionCache* or a builtin size.
  static constexpr int64_t kSessionCacheOff = -2, kSessionCacheNone = -3,
                           kSessionCacheNoBuiltin = -4, kSessionCacheBuiltinDefault = -5;
  int64_t builtinSessionCache = kSessionCacheNone;
  std::string sessionCacheZone;    // shared:NAME:SIZE ("" without)
  uint64_t sessionCacheSize = 0;   // bytes of the shared zone
  SourceRef sessionCacheSource;    // where the zone was declared, for messages
  int64_t sessionTimeout = 300;    // ssl_session_timeout, seconds
  bool sessionTickets = true;      // ssl_session_tickets
  std::vector<std::string> sessionTicketKeys;  // ssl_session_ticket_key files (first encrypts)
  std::string dhparam;             // ssl_dhparam
  std::string passwordFile;        // ssl_password_file
  std::vector<std::pair<std::string, std::string>> confCommands;  // ssl_conf_command
  std::vector<std::string> confCommandPaths;  // each value as a path (for file-valued commands)
  uint64_t bufferSize = 16384;     // ssl_buffer_size: the largest record written
  bool earlyData = false;          // ssl_early_data
  bool rejectHandshake = false;    // ssl_reject_handshake
};

// `add_header NAME VALUE [always];` — VALUE may hold $variables, expanded per response.
struct AddHeader {
  std::string name;
  std::string value;
  bool always = false;  // without it: only for 200, 201, 204, 206, 301, 302, 303, 304, 307, 308
};

// `error_page CODE... [=[RESPONSE]] URI;`
struct ErrorPage {
  std::vector<int> codes;
  // 0: keep the original status; -1: `=` alone (the status of the redirected request);
  // otherwise the status to answer with.
  int overrideStatus = 0;
  std::string uri;  // "/50x.html", "@named", or an absolute URL (then a 302 unless overridden)
};

// `return CODE [TEXT|URL];` or `return URL;` (302).
struct ReturnSpec {
  int code = 0;
  std::string text;  // body text (for non-redirect codes) or URL (301, 302, 303, 307, 308); may hold $vars
  bool hasText = false;
};

struct LocationSettings;

// One directive of the rewrite module (rewrite, return, set, break, if) as parsed: a level's
// steps run in file order (the server's before location matching, the location's after).
struct RewriteStep {
  enum class Kind { kRewrite, kReturn, kSet, kBreak, kIf };
  // rewrite's last parameter; a replacement starting with http://, https:// or $scheme is a
  // redirect (302) whatever it says, as nginx.
  enum class Flag { kNone, kLast, kBreak, kRedirect, kPermanent };
  // if's condition: a variable alone, a comparison, a regex test, or a file test.
  enum class Condition {
    kVariable, kEqual, kNotEqual, kMatch, kNotMatch,
    kFile, kNotFile, kDirectory, kNotDirectory, kExists, kNotExists, kExecutable, kNotExecutable,
  };
  Kind kind = Kind::kBreak;
  SourceRef source;
  // kRewrite: regex, replacement (without a final '?'), flag, whether the args are kept.
  // kSet: variable (no '$'), value. kIf: subject (the "$var" or the file path), operand (the
  // compared value or regex), caseless for ~* and !~*.
  std::string regex;
  std::string replacement;
  Flag flag = Flag::kNone;
  bool keepArgs = true;
  bool redirect = false;     // replacement starts with http://, https:// or $scheme
  ReturnSpec returnSpec;     // kReturn
  std::string variable;      // kSet
  std::string value;         // kSet
  Condition condition = Condition::kVariable;
  std::string subject;
  std::string operand;
  bool caseless = false;
  std::vector<RewriteStep> body;  // kIf: the block's rewrite directives
  // kIf in a location: the implicit location nginx makes of the block (the enclosing
  // location's settings merged with what the block sets); the content uses it when the
  // condition held. Null for a server-level if.
  std::shared_ptr<LocationSettings> ifSettings;

  // A `return` step (hand-built models: the flags' site, tests).
  static RewriteStep returning(ReturnSpec spec) {
    RewriteStep step;
    step.kind = Kind::kReturn;
    step.returnSpec = std::move(spec);
    return step;
  }
};

// `map $source $variable { ... }` (http level): the value of $variable for the value of source.
struct MapSpec {
  struct Entry {
    std::string key;    // exact (a leading backslash removed), "*.x"/".x"/"x.*" with hostnames,
                        // or the regex without its "~" / "~*"
    bool regex = false;
    bool caseless = false;
    std::string value;  // may hold variables
    SourceRef source;
  };
  std::string sourceValue;   // the template whose value is looked up ("$args")
  std::string variable;      // without '$'
  bool hostnames = false;
  bool isVolatile = false;
  std::optional<std::string> defaultValue;
  std::vector<Entry> entries;
  SourceRef source;
};

// `try_files FILE... FALLBACK;` — files may hold $uri and other variables; a file ending in '/'
// tests for a directory. The fallback is "=CODE", a URI ("/index.php?$args") or "@named".
struct TryFiles {
  std::vector<std::string> files;
  std::string fallback;
};

// `expires` — off, epoch, max, a time (possibly negative), `modified` TIME, @TIME, or a value
// with variables.
struct Expires {
  // kAfter: from the response's time (nginx's access); kModified: from its Last-Modified (the
  // response's time without one); kDaily (`@15h30m`): the next such local time of day.
  enum class Kind { kOff, kEpoch, kMax, kAfter, kModified, kDaily };
  Kind kind = Kind::kOff;
  int64_t seconds = 0;  // kAfter, kModified: negative → "Cache-Control: no-cache"
  // The value has variables: parsed per response (parseExpires) from `value`; `kind` is kAfter
  // or kModified, as written.
  bool variable = false;
  std::string value;
};

// ngx_http_parse_expires: fills `e` from one value (epoch, max, off, @TIME, [+-]TIME; after
// `modified` only the times); the error text otherwise ("invalid value", ...).
std::optional<std::string> parseExpires(std::string_view value, Expires& e);

// The gzip module's settings (ngx_http_gzip_module, ngx_http_gzip_static_module).
struct GzipSettings {
  bool enabled = false;                          // gzip on|off
  std::vector<std::string> types{"text/html"};   // gzip_types; "*" matches any; text/html always
  int level = 1;                                 // gzip_comp_level 1..9
  int64_t minLength = 20;                        // gzip_min_length (by Content-Length when known)
  bool vary = false;                             // gzip_vary
  // gzip_proxied: off | any of expired no-cache no-store private no_last_modified no_etag auth any
  std::vector<std::string> proxied{"off"};
  std::vector<std::string> disable;              // gzip_disable regexes ("msie6" is special)
  int buffersNumber = 32;                        // gzip_buffers NUMBER SIZE
  int64_t buffersSize = 4096;
  int httpVersionMinor = 1;                      // gzip_http_version 1.0|1.1
  enum class Static { kOff, kOn, kAlways };
  Static staticMode = Static::kOff;              // gzip_static
};

// `log_format NAME [escape=default|json|none] STRING...;` (http level only).
struct LogFormat {
  std::string name;
  std::string escape = "default";
  std::string format;  // the strings concatenated, nginx $variables inside
};

// `syslog:server=ADDR[:PORT],facility=F,severity=S,tag=T,nohostname` (nginx's syslog target):
// one UDP (or unix datagram) message per line, RFC 3164 header as nginx writes it.
struct SyslogSpec {
  std::string server;        // as written, for messages
  std::string host;          // numeric address after resolution ("" for unix)
  uint16_t port = 514;
  std::string unixPath;      // unix:PATH
  int facility = 23;         // local7
  int severity = 6;          // info
  std::string tag = "nginx";
  bool noHostname = false;
};

// One `access_log PATH [FORMAT] [buffer=..] [flush=..] [if=..];`, or `access_log off;` (empty list).
struct AccessLogSpec {
  std::string path;            // absolute after the prefix is applied; "/dev/stdout" allowed
  std::string format = "combined";
  bool pathVariables = false;  // the path holds $variables: expanded and opened per request
  std::string condition;       // if=COND: the line is skipped when COND expands to "" or "0"
  // buffer=SIZE, flush=TIME, gzip[=LEVEL] (gzip alone implies a 64k buffer), checked as nginx
  // checks them. portico writes every line at once (each gzip line is one gzip member), so
  // buffer and flush only bound what nginx would hold back: nothing is held back here.
  uint64_t bufferSize = 0;
  uint64_t flushMs = 0;
  int gzipLevel = 0;           // 0: plain text
  std::optional<SyslogSpec> syslog;  // `syslog:...` instead of a file (path is then empty)
};

// `error_log FILE|stderr [LEVEL];` at the http, server or location level.
struct ErrorLogSpec {
  std::string path;  // absolute, or "-" for stderr
  LogLevel level = LogLevel::kError;
};

// nginx's implicit `access_log logs/access.log combined;`.
inline AccessLogSpec defaultAccessLog() {
  AccessLogSpec spec;
  spec.path = "logs/access.log";
  return spec;
}

// `open_log_file_cache max=N [inactive=TIME] [min_uses=N] [valid=TIME];` — descriptors of
// access logs whose path has variables stay open (ngx_open_cached_file's rules).
struct OpenLogFileCache {
  int max = 0;
  int64_t inactiveSeconds = 10;
  int minUses = 1;
  int64_t validSeconds = 60;
  SourceRef source;            // the directive: levels that inherit it share one cache
};

// The WSGI app a location runs (portico's content directive, in place of proxy_pass/uwsgi_pass).
struct WsgiSpec {
  std::string app;                      // wsgi_app module:callable
  std::vector<std::string> pythonPath;  // wsgi_pythonpath DIR...;
  std::string virtualenv;               // wsgi_virtualenv DIR;
  std::string chdir;                    // wsgi_chdir DIR; (the app's working directory)
  int threads = 1;                      // wsgi_threads N;
  std::vector<std::pair<std::string, std::string>> env;  // wsgi_env KEY VALUE;
  std::string scriptName;               // SCRIPT_NAME: the location prefix less a trailing '/'
  std::string tempPath;                 // the location's client_body_temp_path ("" = default)
  // client_body_in_file_only on|clean: every body goes to a temp file (`on`: a named one, kept
  // after the request, as nginx keeps it).
  bool bodyInFileOnly = false;
  bool keepBodyFile = false;
  // --forwarded-allow-ips / wsgi_forwarded_allow_ips: the front ends whose X-Forwarded-Proto
  // (and kin) and X-Forwarded-For the environ follows (http/forwarded.h); nullopt: none.
  std::optional<std::vector<std::string>> forwardedAllowIps;
  SourceRef source;
};

// limit_req_zone / limit_conn_zone: a named zone of shared memory holding the module's state
// per key (ngx_http_limit_req_module, ngx_http_limit_conn_module).
struct LimitZoneSpec {
  enum class Kind { kReq, kConn };
  Kind kind = Kind::kReq;
  std::string name;
  std::string key;    // a template: `$binary_remote_addr`, `$server_name` ...
  uint64_t size = 0;  // bytes
  uint64_t rate = 0;  // limit_req: milli-requests per second (nginx's rate * 1000 / scale)
  SourceRef source;
};

// `limit_req zone=NAME [burst=N] [nodelay | delay=N];` (burst and delay in milli-requests).
struct LimitReqRule {
  std::string zone;
  uint64_t burst = 0;
  uint64_t delay = 0;
};

// `limit_conn ZONE N;`
struct LimitConnRule {
  std::string zone;
  uint32_t conn = 0;
};

// limit_req_log_level / limit_conn_log_level: nginx's info, notice, warn, error.
enum class LimitLogLevel { kInfo, kNotice, kWarn, kError };

// A level's limit_req and limit_conn settings; the rule lists are inherited only by levels
// that set none (nginx's merge of `limits`).
struct LimitSettings {
  std::vector<LimitReqRule> req;
  int reqStatus = 503;
  LimitLogLevel reqLogLevel = LimitLogLevel::kError;
  bool reqDryRun = false;
  std::vector<LimitConnRule> conn;
  int connStatus = 503;
  LimitLogLevel connLogLevel = LimitLogLevel::kError;
  bool connDryRun = false;
};

// A location's proxy_pass and the proxy_* settings (ngx_http_proxy_module). `pass` is never
// inherited (the location that writes proxy_pass is the one proxied); the rest merge per level
// as nginx merges them (proxy_set_header's list: a level with one of its own inherits none).
struct ProxyPass {
  std::string url;          // as written ("http://127.0.0.1:8081/app/")
  std::string upstream;     // the host part as written: an upstream name or host:port
  std::string proxyHost;    // $proxy_host: host[:port] as written (":80" dropped)
  std::string proxyPort;    // $proxy_port
  bool hasUri = false;      // a URI part follows the host ("/" included)
  std::string uri;          // that URI part
  std::string locationPrefix;  // what the URI part replaces (the location's prefix)
  bool unixSocket = false;
  // The upstream proxied to: an index into HttpSite::upstreams (an `upstream` block, or the
  // implicit upstream of the address), set by the file's proxy_pass. A hand-built model may give
  // its upstream here instead (`implicit`, used when the index is -1).
  int upstreamIndex = -1;
  std::optional<UpstreamSpec> implicit;
  SourceRef source;
  // The address has variables (proxy_pass http://$host..., uwsgi_pass $target): made per
  // request (upstream/proxy_target.h; no URI replacement; a host name through `resolver`);
  // upstreamIndex is -1.
  bool variables = false;
  // proxy_pass https://... (default port 443): the connection speaks TLS (ProxySslSettings).
  bool ssl = false;
};

// One uwsgi_param NAME VALUE [if_not_empty]: VALUE is a template, expanded per request.
struct UwsgiParam {
  std::string name;
  std::string value;
  bool ifNotEmpty = false;  // an empty expansion sends no param
};

// One proxy_redirect, proxy_cookie_domain or proxy_cookie_path rule: a prefix to replace (its
// text may hold variables; a domain rule compares the whole value, caselessly, a leading '.'
// ignored) or a regex whose match replaces the whole value, and the replacement (a template;
// $1.. and named groups are the regex's captures).
struct ProxyRewriteRule {
  enum class Kind { kPrefix, kDomain, kRegex, kRegexCaseless };
  Kind kind = Kind::kPrefix;
  std::string pattern;
  std::string replacement;
};

// One proxy_cookie_flags line: the cookie (a template compared caselessly with the cookie's
// name, or after '~' a caseless regex searched in it) and up to three flags (templates: secure,
// nosecure, httponly, nohttponly, samesite=strict|lax|none, nosamesite; others are ignored).
struct ProxyCookieFlags {
  std::string cookie;
  bool regex = false;
  std::vector<std::string> flags;
};

// The proxy_ssl_* settings of a location (nginx 1.22's defaults), used when its proxy_pass is
// https: the client SSL_CTX (upstream/proxy_ssl.h) is made from them. Paths are absolute.
struct ProxySslSettings {
  std::string protocols = "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3";  // proxy_ssl_protocols
  std::string ciphers = "DEFAULT";                         // proxy_ssl_ciphers
  std::string name;            // proxy_ssl_name (a template; "": the host of proxy_pass)
  bool serverName = false;     // proxy_ssl_server_name: send the name as SNI
  bool verify = false;         // proxy_ssl_verify
  int verifyDepth = 1;         // proxy_ssl_verify_depth
  std::string trustedCertificate, crl;          // proxy_ssl_trusted_certificate, proxy_ssl_crl
  std::string certificate, certificateKey;      // proxy_ssl_certificate(_key): a client cert
  // Either holds variables: both are templates, expanded and loaded per request ("": none),
  // a relative result taken from `certificateDirectory` (the configuration's).
  bool certificateHasVariables() const {
    return certificate.find('$') != std::string::npos ||
           certificateKey.find('$') != std::string::npos;
  }
  std::string certificateDirectory;
  std::string passwordFile;                     // proxy_ssl_password_file
  bool sessionReuse = true;                     // proxy_ssl_session_reuse
  std::vector<std::pair<std::string, std::string>> confCommands;  // proxy_ssl_conf_command
  std::vector<std::string> confCommandPaths;  // their values as paths (file/dir commands)
};

struct ProxySettings {
  std::optional<ProxyPass> pass;  // not inherited
  // proxy_set_header NAME VALUE (templates); nginx's defaults are added by the engine under them.
  std::vector<std::pair<std::string, std::string>> setHeaders;
  int httpVersionMinor = 0;                  // proxy_http_version 1.0 | 1.1
  double connectTimeoutSeconds = 60.0;
  double readTimeoutSeconds = 60.0;
  double sendTimeoutSeconds = 60.0;
  bool passRequestHeaders = true;
  bool passRequestBody = true;
  std::optional<std::string> setBody;        // proxy_set_body (a template)
  std::optional<std::string> method;         // proxy_method (a template)
  uint64_t bufferSize = 4096;                // proxy_buffer_size: the response head's bound
  int buffersNumber = 8;                     // proxy_buffers N SIZE: the read-ahead
  uint64_t buffersSize = 4096;
  bool buffering = true;                     // proxy_buffering
  std::vector<std::string> hideHeaders;      // proxy_hide_header (besides nginx's defaults)
  std::vector<std::string> passHeaders;      // proxy_pass_header (un-hides a default)
  // proxy_next_upstream: the conditions (bit flags), _tries (0 = every peer) and _timeout.
  static constexpr unsigned kNextError = 1, kNextTimeout = 2, kNextInvalidHeader = 4,
                            kNextHttp500 = 8, kNextHttp502 = 16, kNextHttp503 = 32,
                            kNextHttp504 = 64, kNextHttp403 = 128, kNextHttp404 = 256,
                            kNextHttp429 = 512, kNextNonIdempotent = 1024;
  unsigned nextUpstream = kNextError | kNextTimeout;
  int nextUpstreamTries = 0;
  double nextUpstreamTimeoutSeconds = 0;     // 0: no bound
  // A buffered response the client reads slower than the upstream sends: past the proxy_buffers
  // read-ahead it goes to an unlinked temporary file in tempPath (proxy_temp_path; "" = $TMPDIR,
  // else /tmp, as client bodies), written tempFileWriteSize bytes at a time, up to
  // maxTempFileSize (0: never; reading the upstream then waits for the client). Defaults as
  // nginx's merge: 2 × max(proxy_buffer_size, one proxy_buffers buffer); busyBuffersSize is
  // checked as nginx checks it (the connection's output queue plays the busy buffers' part).
  uint64_t busyBuffersSize = 8192;           // proxy_busy_buffers_size
  // proxy_limit_rate: bytes per second a buffered response is read from the upstream (0: no
  // limit), as nginx's event pipe paces it.
  uint64_t limitRate = 0;
  uint64_t tempFileWriteSize = 8192;         // proxy_temp_file_write_size
  uint64_t maxTempFileSize = 1024ull << 20;  // proxy_max_temp_file_size
  std::string tempPath;                      // proxy_temp_path
  // The codec: false sends an HTTP/1 request (proxy_pass), true one uwsgi packet of CGI params
  // (uwsgi_pass: LocationSettings::uwsgi, src/config/uwsgi_module.h). The response is HTTP in
  // both. The proxy-only fields above (setHeaders, httpVersionMinor, setBody, method) are unused
  // by the uwsgi codec, which sends these instead:
  bool uwsgi = false;
  std::vector<UwsgiParam> uwsgiParams;       // uwsgi_param, in order (inherited whole)
  int uwsgiModifier1 = 0;                    // uwsgi_modifier1 / uwsgi_modifier2 (0..255)
  int uwsgiModifier2 = 0;
  // proxy_redirect's rules in order, `default` already made from proxy_pass (empty: off, or a
  // proxy_pass with variables); they rewrite Location and Refresh.
  std::vector<ProxyRewriteRule> redirects;
  bool interceptErrors = false;              // proxy_intercept_errors
  // proxy_ignore_headers: the upstream headers whose effect is ignored. portico has no proxy
  // cache, so Expires, Cache-Control, Set-Cookie and Vary change nothing (accepted as nginx);
  // the X-Accel-* ones switch off their handling.
  static constexpr unsigned kIgnoreXAccelRedirect = 1, kIgnoreXAccelExpires = 2,
                            kIgnoreXAccelLimitRate = 4, kIgnoreXAccelBuffering = 8,
                            kIgnoreXAccelCharset = 16, kIgnoreExpires = 32,
                            kIgnoreCacheControl = 64, kIgnoreSetCookie = 128, kIgnoreVary = 256;
  unsigned ignoreHeaders = 0;
  bool ignores(unsigned header) const { return (ignoreHeaders & header) != 0; }
  // proxy_cookie_domain / proxy_cookie_path: rewrite Set-Cookie's domain= and path= (empty: off).
  std::vector<ProxyRewriteRule> cookieDomains;
  std::vector<ProxyRewriteRule> cookiePaths;
  // proxy_cookie_flags: Set-Cookie's Secure, HttpOnly and SameSite set or cleared (empty: off).
  std::vector<ProxyCookieFlags> cookieFlags;
  // proxy_bind ADDRESS (a template; empty: off): the local address upstream connections use.
  std::string bind;
  // proxy_request_buffering off: the body goes to the upstream as it arrives (chunked when its
  // length is unknown and proxy_http_version is 1.1; a chunked body to an HTTP/1.0 upstream is
  // still read whole, as nginx), and no other peer is tried once body bytes were sent.
  bool requestBuffering = true;
  ProxySslSettings ssl;  // proxy_ssl_* (uwsgi_ssl_*): used when pass->ssl
};

// Everything a location (or the server, or http) may set, already merged from the enclosing
// levels as nginx merges: a location holds its effective values.
struct LocationSettings {
  std::string root = "html";            // root, absolute after the prefix is applied
  std::optional<std::string> alias;     // alias (location only); nested locations that set
                                        // neither root nor alias inherit it, as nginx merges
  // The location whose `alias` this is: its prefix is what the alias replaces, also for the
  // nested locations that inherit it; a regex location's alias names the whole file. Empty:
  // the alias is the location's own (hand-built models).
  std::string aliasPrefix;
  bool aliasRegex = false;
  SourceRef directorySource;            // where root/alias was written ("" file: the default)
  std::vector<std::string> index{"index.html"};
  std::optional<TryFiles> tryFiles;     // not inherited
  // The rewrite module's directives of this level in file order (return among them); not
  // inherited (nginx: a location without any runs none of the server's, which ran before).
  std::vector<RewriteStep> rewrites;
  bool rewriteLog = false;                // rewrite_log: notices for each rewrite/if match
  bool uninitializedVariableWarn = true;  // uninitialized_variable_warn
  std::vector<ErrorPage> errorPages;    // inherited only when the level sets none
  std::vector<AddHeader> addHeaders;    // inherited only when the level sets none
  // add_trailer: sent after a chunked body (a response with one is chunked on HTTP/1.1 even
  // when its length is known); inherited only when the level sets none.
  std::vector<AddHeader> addTrailers;
  Expires expires;
  std::string defaultType = "text/plain";
  // `types { ... }`: extension (lower case, no dot) → MIME type; nullopt = the shipped table
  // (the command-line site; an nginx-style file without `types` gets nginx's html, gif, jpg).
  std::optional<std::map<std::string, std::string>> types;
  GzipSettings gzip;
  uint64_t clientMaxBodySize = 1024 * 1024;   // 0 = unlimited
  uint64_t clientBodyBufferSize = 16 * 1024;
  // client_body_temp_path: where request bodies beyond memory go (unlinked files). Empty: $TMPDIR,
  // else /tmp (portico's default; nginx's is PREFIX/client_body_temp, which a package creates).
  std::string clientBodyTempPath;
  // client_body_in_file_only: kOff keeps a body in memory up to client_body_buffer_size (then
  // in a temp file removed at the request's end); kOn/kClean always write it to a temp file,
  // which kOn keeps after the request (as nginx, for whatever reads $request_body_file) and
  // kClean removes. client_body_in_single_buffer: the in-memory body is one buffer (portico's
  // engines keep it so in any case; the flag is read for nginx's files).
  enum class BodyInFile { kOff, kOn, kClean };
  // limit_rate / limit_rate_after: a size, or text with variables sized per response ("":
  // none, 0).
  std::string limitRate;
  std::string limitRateAfter;
  BodyInFile clientBodyInFileOnly = BodyInFile::kOff;
  bool clientBodyInSingleBuffer = false;
  bool sendfile = false;                      // nginx's default is off
  // chunked_transfer_encoding off: a response of unknown length on HTTP/1.1 is delimited by
  // the connection's close instead.
  bool chunkedTransferEncoding = true;
  bool tcpNopush = false;
  bool tcpNodelay = true;
  double keepaliveTimeoutSeconds = 75.0;      // keepalive_timeout (second argument: header value)
  std::optional<double> keepaliveHeaderSeconds;
  uint64_t keepaliveRequests = 1000;
  // keepalive_disable none|msie6|safari (bits; nginx's default msie6: no keep-alive after a
  // POST from MSIE 4-6, none for Safari on macOS when `safari` is set).
  static constexpr unsigned kKeepaliveDisableNone = 1, kKeepaliveDisableMsie6 = 2,
                            kKeepaliveDisableSafari = 4;
  unsigned keepaliveDisable = kKeepaliveDisableMsie6;
  double sendTimeoutSeconds = 60.0;
  double clientBodyTimeoutSeconds = 60.0;
  bool serverTokens = true;                   // "Server: portico/VERSION" vs "Server: portico"
  bool absoluteRedirect = true;
  bool serverNameInRedirect = false;
  bool portInRedirect = true;
  // log_not_found: whether a missing file is also written to the error log (nginx writes
  // "open() ... failed (2: ...)" at error level). Added for the file's `log_not_found off;`.
  bool logNotFound = true;
  // if_modified_since off|exact|before: how If-Modified-Since is compared with Last-Modified.
  enum class IfModifiedSince { kOff, kExact, kBefore };
  IfModifiedSince ifModifiedSince = IfModifiedSince::kExact;
  // keepalive_time: no request starts on a connection older than this (nginx 1.19.10+).
  double keepaliveTimeSeconds = 3600.0;
  // error_log of this level (inherited whole); empty: the main error_log.
  std::vector<ErrorLogSpec> errorLogs;
  std::vector<AccessLogSpec> accessLogs{defaultAccessLog()};  // empty = off
  std::optional<OpenLogFileCache> openLogFileCache;  // nullopt: off (nginx's default)
  std::optional<WsgiSpec> wsgi;               // not inherited: only where wsgi_app is written
  AccessSettings access;                      // allow/deny, auth_basic, realip, autoindex, stub_status
  LimitSettings limit;                        // limit_req*, limit_conn*
  ProxySettings proxy;                        // proxy_pass and proxy_*
  ProxySettings uwsgi;                        // uwsgi_pass and uwsgi_* (codec: uwsgi = true)
  // `resolver` (an index into HttpSite::resolvers; -1: none, nginx's "no resolver defined")
  // and resolver_timeout: how a *_pass with variables looks a host name up per request.
  int resolver = -1;
  double resolverTimeoutSeconds = 30.0;
  // `internal`: only internal redirects (X-Accel-Redirect, error_page, try_files, index) reach
  // this location; a client's own request gets 404 (inherited, as nginx merges it).
  bool internal = false;
  // `limit_except METHOD... { }`: a request whose method is not in `limitExceptAllowed` (as
  // the request line spells it; GET brings HEAD) is served with `limitExcept`, the implicit
  // location nginx makes of the block (this location's settings merged with the block's; like
  // any nested location it has no rewrite directives, try_files or nested locations).
  std::vector<std::string> limitExceptAllowed;
  std::shared_ptr<LocationSettings> limitExcept;
  // An `if` or `limit_except` block's settings: it names a proxy_pass or uwsgi_pass of its
  // own (else it serves with its location's content).
  bool ownContent = false;
};

// One `location` block, with its nested locations in file order.
struct Location {
  enum class Match { kPrefix, kPrefixNoRegex /* ^~ */, kExact /* = */, kRegex /* ~ */,
                     kRegexCaseless /* ~* */, kNamed /* @name */ };
  Match match = Match::kPrefix;
  std::string pattern;  // the prefix, exact URI, regex source, or "@name"
  LocationSettings settings;
  std::vector<Location> children;
  SourceRef source;
};

// One `server` block.
struct VirtualServer {
  std::vector<ListenSpec> listens;        // none written → *:80 (portico: 0.0.0.0:80 as nginx)
  // server_name entries as written: "example.com", "*.example.com", ".example.com",
  // "www.example.*", "~^(?<sub>.+)\.example\.net$", "" (no Host), "_" (matches nothing special).
  std::vector<std::string> serverNames{""};
  LocationSettings settings;              // the server level's own effective settings
  std::vector<Location> locations;
  double clientHeaderTimeoutSeconds = 60.0;
  size_t largeHeaderBuffersNumber = 4;    // large_client_header_buffers 4 8k
  size_t largeHeaderBuffersSize = 8 * 1024;
  // client_header_buffer_size and connection_pool_size are nginx's first, small buffers: portico
  // reads every connection into one growing buffer (16 KiB steps) whose limits are
  // large_client_header_buffers', so these are checked as nginx checks them and kept for -T,
  // with no effect on how much a header may hold.
  size_t clientHeaderBufferSize = 1024;
  size_t connectionPoolSize = 512;
  bool mergeSlashes = true;               // merge_slashes: "//" in the URI becomes "/"
  // Which header names the request parser keeps (http::ParserLimits' name rule): nginx's by default
  // (ignore_invalid_headers on, underscores_in_headers off); the flags' server has gunicorn's
  // (any RFC 9110 token but one with '_', which would pose as its dashed twin in the environ).
  struct HeaderNames {
    bool nginx = true;           // false: RFC 9110 tokens (other names are a 400)
    bool ignoreInvalid = true;   // ignore_invalid_headers: drop (on) or keep (off) invalid names
    bool underscores = false;    // underscores_in_headers: '_' is valid in a name
  } headerNames;
  // gunicorn's --limit-request-line, --limit-request-fields and --limit-request-field_size
  // (the flags' server): a request head is limited per line (without its CRLF, as gunicorn's
  // request line; a field line's limit counts its CRLF) and per number of fields, and a head
  // past them is 431. Unset (the file): large_client_header_buffers, which count bytes — a
  // line must fit one buffer with its CRLF, the head all of them — and 400 past them.
  struct FieldLimits {
    size_t requestLine = 4094;
    size_t fields = 100;
    size_t fieldSize = 8190;
  };
  std::optional<FieldLimits> fieldLimits;
  TlsServerSettings tls;
  SourceRef source;
};

// gunicorn's --access-logfile/--access-logformat: one log of every request the process answers,
// in gunicorn's %(x)s atoms, besides the locations' access_log.
struct ProcessAccessLog {
  std::string file;    // empty: none; "-": stdout
  std::string format;  // empty: nginx's combined
  bool json = false;   // --log-format json without --access-logformat: one JSON object a line
};

// A directory that must exist when a worker starts, else it does not boot (the flags' --static
// promise; a file's root or alias is looked at only when a request reaches it).
struct RequiredDirectory {
  std::string path;
  std::string what;  // for the message: "--static /static/=/srv/static/"
};

// The `http` block: what it holds beyond the servers.
struct HttpSite {
  std::vector<VirtualServer> servers;
  std::map<std::string, LogFormat> logFormats;  // "combined" always present
  size_t typesHashMaxSize = 1024;
  size_t serverNamesHashBucketSize = 64;
  // Every *_temp_path directory written, created at startup (nginx's ngx_create_paths).
  std::vector<std::string> tempPaths;
  std::vector<MapSpec> maps;  // in file order; a later map of the same variable wins
  std::vector<LimitZoneSpec> limitZones;  // limit_req_zone, limit_conn_zone, in file order
  ProcessAccessLog processAccessLog;      // the flags' --access-logfile (the file: none)
  // gunicorn's --no-server-header clears it: no Server header at all (nginx always sends one,
  // server_tokens choosing its value).
  bool serverHeader = true;
  std::vector<RequiredDirectory> requiredDirectories;
  // `upstream {}` blocks in file order, then the implicit upstreams the *_pass directives made
  // (nginx's upstream main conf); a location's proxy/uwsgi settings name one by index.
  std::vector<UpstreamSpec> upstreams;
  // Every `resolver` line, in file order; a level without one inherits its parent's (each line
  // is one resolver with its own cache, as nginx's).
  std::vector<ResolverSpec> resolvers;
};

}  // namespace portico::config
