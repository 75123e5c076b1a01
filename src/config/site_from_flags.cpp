#include "config/site_from_flags.h"

#include <sys/socket.h>

namespace portico::config {

namespace {

// Python's default cipher string (CPython ≥ 3.10, Modules/_ssl.c PY_SSL_DEFAULT_CIPHER_STRING),
// which gunicorn uses when --ciphers is not given: forward secrecy and AEAD first, no SHA-1.
constexpr const char* kPythonDefaultCiphers =
    "@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM";

// gunicorn's SSL section as the server's ssl_* settings (what Python's ssl.SSLContext does).
void tlsFromFlags(const GunicornFlags& flags, VirtualServer& server) {
  TlsServerSettings& tls = server.tls;
  tls.certificates = {flags.certFile};
  tls.keys = {flags.keyFile.empty() ? flags.certFile : flags.keyFile};
  tls.protocols = flags.sslProtocols;
  tls.ciphers = flags.ciphers.empty() ? kPythonDefaultCiphers : flags.ciphers;
  tls.preferServerCiphers = true;  // Python sets SSL_OP_CIPHER_SERVER_PREFERENCE
  tls.clientCertificate = flags.caCerts;
  tls.verifyClient = flags.certReqs == 2   ? TlsServerSettings::VerifyClient::kOn
                     : flags.certReqs == 1 ? TlsServerSettings::VerifyClient::kOptional
                                           : TlsServerSettings::VerifyClient::kOff;
  tls.verifyDepth = 100;  // OpenSSL's default, which Python leaves
  tls.verifyInHandshake = true;
  // A uwsgi socket's front server terminates TLS (nginx's uwsgi_pass speaks plain uwsgi).
  for (ListenSpec& listen : server.listens) listen.ssl = !listen.uwsgi;
}

ListenSpec listenOf(const BindAddress& bind) {
  ListenSpec listen;
  listen.isUnix = bind.kind == BindAddress::Kind::kUnix;
  listen.host = bind.host;
  listen.port = bind.port;
  listen.path = bind.path;
  listen.spec = bind.spec;
  return listen;
}

// --metrics-bind: a server of its own (plain HTTP, whatever --protocol and --certfile say for
// the app's binds) whose locations are the service endpoints (metrics, health, the status page
// and its JSON); anything else is 404. As the
// file's `location = /metrics { prometheus_metrics; }`.
VirtualServer metricsServer(const BindAddress& bind, const LocationSettings& base) {
  VirtualServer server;
  server.listens.push_back(listenOf(bind));
  server.serverNames = {""};
  server.headerNames.nginx = false;
  server.settings = base;
  server.settings.clientMaxBodySize = 0;
  auto endpoint = [&](std::string path, ServiceEndpoint kind) {
    Location location;
    location.match = Location::Match::kExact;
    location.pattern = std::move(path);
    location.settings = base;
    location.settings.access.endpoint = kind;
    server.locations.push_back(std::move(location));
  };
  endpoint("/metrics", ServiceEndpoint::kMetrics);
  endpoint("/health/live", ServiceEndpoint::kLive);
  endpoint("/health/ready", ServiceEndpoint::kReady);
  endpoint("/status", ServiceEndpoint::kStatus);
  endpoint("/status.json", ServiceEndpoint::kStatus);
  Location rest;
  rest.match = Location::Match::kPrefix;
  rest.pattern = "/";
  rest.settings = base;
  rest.settings.rewrites = {RewriteStep::returning(ReturnSpec{404, {}, false})};
  server.locations.push_back(std::move(rest));
  return server;
}

}  // namespace

std::vector<std::string> splitAllowIps(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view item = text.substr(start, comma - start);
    // gunicorn: `[v.strip() for v in val.split(",") if v]`
    if (item.empty()) {
      start = comma + 1;
      continue;
    }
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    out.emplace_back(item);
    start = comma + 1;
  }
  return out;
}

void siteFromFlags(const GunicornFlags& flags, Config& config) {
  // Every pending connection accepted per event (gunicorn's workers have no such knob); the
  // per-worker connection limit is --worker-connections (cli.cpp, gunicorn's 1000).
  config.multiAccept = true;
  HttpSite site;
  VirtualServer server;
  std::vector<BindAddress> binds = flags.binds;
  if (binds.empty()) binds.push_back(flags.fallbackBind);
  for (const BindAddress& bind : binds) {
    ListenSpec listen = listenOf(bind);
    listen.backlog = flags.backlog;
    if (flags.proxyProtocol) {
      listen.proxyProtocol = true;
      listen.proxyProtocolOptional = true;
      listen.proxyAllowFrom = splitAllowIps(flags.proxyAllowFrom);
    }
    listen.uwsgi = flags.uwsgi || bind.uwsgi;
    listen.socketMode = flags.socketMode;
    server.listens.push_back(std::move(listen));
  }
  if (!flags.certFile.empty()) tlsFromFlags(flags, server);
  server.serverNames = {""};
  server.clientHeaderTimeoutSeconds = flags.headerTimeoutSeconds;
  server.fieldLimits = VirtualServer::FieldLimits{flags.limitRequestLine, flags.limitRequestFields,
                                                  flags.limitRequestFieldSize};
  server.headerNames.nginx = false;  // RFC 9110 tokens (else 400); '_' names dropped

  LocationSettings& s = server.settings;
  s.defaultType = "application/octet-stream";  // as the shipped nginx.conf says
  s.clientMaxBodySize = flags.limitRequestBody;
  s.keepaliveTimeoutSeconds = flags.keepAliveSeconds;
  s.sendTimeoutSeconds = flags.sendTimeoutSeconds;
  s.clientBodyTimeoutSeconds = flags.bodyTimeoutSeconds;
  s.serverTokens = false;  // "Server: portico"; --no-server-header drops it (site.serverHeader)
  s.sendfile = true;
  s.accessLogs.clear();    // the flags' access log is the process-level one (gunicorn atoms)
  s.logNotFound = false;   // as before: a 404 is an answer, not an error-log line
  // As before (and as whitenoise): a file not modified since the date is a 304, where nginx's
  // default (exact) wants the very date of the file.
  s.ifModifiedSince = LocationSettings::IfModifiedSince::kBefore;
  if (flags.proxyProtocol) {
    // gunicorn's proxy_environ: REMOTE_ADDR/REMOTE_PORT are the header's client. The reader
    // takes headers only from --proxy-allow-from peers, so realip trusts every peer here; the
    // access log and $remote_addr follow too.
    Cidr any;
    std::vector<Cidr> from;
    for (const char* mask : {"0.0.0.0/0", "::/0"}) {
      if (parseCidr(mask, any) == CidrParse::kOk) from.push_back(any);
    }
    Cidr unixPeers;
    unixPeers.family = AF_UNIX;  // set_real_ip_from unix:
    from.push_back(unixPeers);
    s.access.realIpFrom = std::move(from);
    s.access.realIpHeader = RealIpHeader::kProxyProtocol;
  }

  for (const StaticMount& mount : flags.statics) {
    Location location;
    location.match = Location::Match::kPrefix;
    location.pattern = mount.prefix;
    location.settings = s;
    location.settings.alias = mount.directory;
    location.settings.gzip.staticMode = GzipSettings::Static::kOn;
    location.settings.gzip.vary = true;
    server.locations.push_back(std::move(location));
  }
  bool rootAnswered = false;
  if (!flags.wsgiApp.empty()) {
    Location location;
    location.match = Location::Match::kPrefix;
    location.pattern = flags.wsgiMount.empty() ? "/" : flags.wsgiMount;
    location.settings = s;
    WsgiSpec wsgi;
    wsgi.app = flags.wsgiApp;
    wsgi.pythonPath = flags.pythonPath;
    wsgi.virtualenv = flags.virtualenv;
    wsgi.chdir = config.chdir;
    wsgi.threads = flags.threads;
    wsgi.env = flags.env;
    wsgi.forwardedAllowIps = splitAllowIps(flags.forwardedAllowIps);
    wsgi.scriptName = location.pattern;
    while (!wsgi.scriptName.empty() && wsgi.scriptName.back() == '/') wsgi.scriptName.pop_back();
    location.settings.wsgi = std::move(wsgi);
    rootAnswered = location.pattern == "/";
    server.locations.push_back(std::move(location));
  }
  for (const StaticMount& mount : flags.statics) rootAnswered |= mount.prefix == "/";
  if (!rootAnswered) {
    // Without an app only the --static prefixes exist; anything else is not found.
    Location location;
    location.match = Location::Match::kPrefix;
    location.pattern = "/";
    location.settings = s;
    location.settings.rewrites = {RewriteStep::returning(ReturnSpec{404, {}, false})};
    server.locations.push_back(std::move(location));
  }
  site.servers.push_back(std::move(server));
  if (flags.metricsBind) site.servers.push_back(metricsServer(*flags.metricsBind, s));
  site.logFormats["combined"] = LogFormat{
      "combined", "default",
      "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent "
      "\"$http_referer\" \"$http_user_agent\""};
  // What nginx's configuration cannot say: gunicorn's own access log, no Server header at all,
  // and --static directories that must exist when a worker starts.
  site.processAccessLog = ProcessAccessLog{flags.accessLogFile, flags.accessLogFormat,
                                          config.jsonLogs && flags.accessLogFormat.empty()};
  site.serverHeader = flags.serverHeader;
  for (const StaticMount& mount : flags.statics) {
    site.requiredDirectories.push_back(
        RequiredDirectory{mount.directory, "--static " + mount.prefix + "=" + mount.directory});
  }
  config.site = std::move(site);
}

}  // namespace portico::config
