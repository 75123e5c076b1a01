#include "config/upstream_module.h"

#include <optional>
#include <string>
#include <utility>

#include "config/conf_values.h"
#include "config/upstream_address.h"

namespace portico::config {
namespace {

using Method = UpstreamSpec::Method;

UpstreamSpec& current(UpstreamLoad& load) { return (*load.upstreams)[load.current]; }

// ngx_atoi: digits only, no sign; nullopt otherwise.
std::optional<int64_t> atoiNginx(std::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

// An address as nginx's ngx_parse_url reads it without resolving (no_resolve): the host (a unix
// socket's path), the port, whether one was written. nullopt and `error` (nginx's u->err) else.
struct ParsedAddress {
  std::string host;
  uint16_t port = 0;
  bool noPort = false;
  bool unixPath = false;
};

std::optional<ParsedAddress> parseAddress(const std::string& text, uint16_t defaultPort,
                                          std::string& error) {
  ParsedAddress out;
  if (text.size() >= 5 && iequals(std::string_view(text).substr(0, 5), "unix:")) {
    out.host = text.substr(5);
    out.unixPath = true;
    if (out.host.empty()) {
      error = "no path in the unix domain socket";
      return std::nullopt;
    }
    if (out.host.size() + 1 > 108) {
      error = "too long path in the unix domain socket";
      return std::nullopt;
    }
    return out;
  }
  std::string portText;
  bool hasPort = false;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) {
      error = "invalid host";
      return std::nullopt;
    }
    out.host = text.substr(0, close + 1);
    std::string rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') {
        error = "invalid host";
        return std::nullopt;
      }
      portText = rest.substr(1);
      hasPort = true;
    }
    if (close == 1) {
      error = "no host";
      return std::nullopt;
    }
  } else {
    if (text.find_first_of("/?") != std::string::npos) {
      error = "invalid host";
      return std::nullopt;
    }
    size_t colon = text.find(':');
    out.host = text.substr(0, colon);
    if (colon != std::string::npos) {
      portText = text.substr(colon + 1);
      hasPort = true;
    }
  }
  if (hasPort) {
    auto n = atoiNginx(portText);
    if (!n || *n < 1 || *n > 65535) {
      error = "invalid port";
      return std::nullopt;
    }
    out.port = static_cast<uint16_t>(*n);
  } else {
    out.noPort = true;
    out.port = defaultPort;
  }
  if (out.host.empty()) {
    error = "no host";
    return std::nullopt;
  }
  return out;
}

// ---- the directives inside upstream { } ----

void serverLine(const DirectiveCall& call, UpstreamLoad& load) {
  UpstreamServerSpec server;
  const auto& args = call.args();
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& v = args[i];
    auto invalid = [&] { call.emerg("invalid parameter " + quote(v)); };
    if (v.starts_with("weight=")) {
      auto n = atoiNginx(std::string_view(v).substr(7));
      if (!n || *n == 0 || *n > 1000000) invalid();
      server.weight = static_cast<int>(*n);
    } else if (v.starts_with("max_conns=")) {
      auto n = atoiNginx(std::string_view(v).substr(10));
      if (!n || *n > 1000000000) invalid();
      server.maxConns = static_cast<int>(*n);
    } else if (v.starts_with("max_fails=")) {
      auto n = atoiNginx(std::string_view(v).substr(10));
      if (!n || *n > 1000000000) invalid();
      server.maxFails = static_cast<int>(*n);
    } else if (v.starts_with("fail_timeout=")) {
      auto t = parseNginxTime(std::string_view(v).substr(13), true);
      if (!t) invalid();
      server.failTimeoutSeconds = static_cast<int>(std::min<int64_t>(*t, 1 << 30));
    } else if (v == "backup") {
      if (!load.backupAllowed) call.emerg("balancing method does not support parameter " + quote(v));
      server.backup = true;
    } else if (v == "down") {
      server.down = true;
    } else {
      invalid();  // nginx-plus's resolve, service=, slow_start=, route=, drain too, as nginx 1.22
    }
  }
  server.name = args[0];
  if (auto error = resolveUpstreamAddress(args[0], 80, server.addresses)) call.emerg(*error);
  server.file = call.directive().source.file;
  server.line = call.directive().source.line;
  current(load).servers.push_back(std::move(server));
}

// The balancing methods: nginx warns when one replaces another (or keepalive, which in nginx
// wraps the method before it: a method after keepalive replaces the wrapper and so turns the
// connection cache off — kept, with nginx's warning).
void setMethod(const DirectiveCall& call, UpstreamLoad& load, Method method, bool backupAllowed) {
  if (load.methodSet || load.keepaliveSet) call.warn("load balancing method redefined");
  load.methodSet = true;
  load.backupAllowed = backupAllowed;
  UpstreamSpec& spec = current(load);
  if (load.keepaliveSet) spec.keepalive = 0;
  load.keepaliveSet = false;
  spec.method = method;
  spec.hashKey.clear();
  spec.hashConsistent = false;
}

void leastConn(const DirectiveCall& call, UpstreamLoad& load) {
  setMethod(call, load, Method::kLeastConn, true);
}

void ipHash(const DirectiveCall& call, UpstreamLoad& load) {
  setMethod(call, load, Method::kIpHash, false);
}

void hash(const DirectiveCall& call, UpstreamLoad& load) {
  bool consistent = false;
  if (call.args().size() == 2) {
    if (call.arg(1) != "consistent") call.emerg("invalid parameter " + quote(call.arg(1)));
    consistent = true;
  }
  setMethod(call, load, Method::kHash, false);
  current(load).hashKey = call.arg(0);
  current(load).hashConsistent = consistent;
}

void keepalive(const DirectiveCall& call, UpstreamLoad& load) {
  if (current(load).keepalive > 0) call.directiveError("is duplicate");
  auto n = atoiNginx(call.arg(0));
  if (!n || *n == 0 || *n > 1000000) {
    call.emerg("invalid value " + quote(call.arg(0)) + " in " + quote(call.name()) + " directive");
  }
  current(load).keepalive = static_cast<int>(*n);
  load.keepaliveSet = true;
}

void keepaliveMsec(const DirectiveCall& call, UpstreamLoad& load) {
  bool timeout = call.name() == "keepalive_timeout";
  bool& seen = timeout ? load.timeoutSet : load.timeSet;
  if (seen) call.directiveError("is duplicate");
  seen = true;
  auto ms = parseNginxTime(call.arg(0), false);
  if (!ms) call.directiveError("invalid value");
  (timeout ? current(load).keepaliveTimeoutMs : current(load).keepaliveTimeMs) =
      static_cast<uint64_t>(*ms);
}

void keepaliveRequests(const DirectiveCall& call, UpstreamLoad& load) {
  if (load.requestsSet) call.directiveError("is duplicate");
  load.requestsSet = true;
  auto n = parseNginxNumber(call.arg(0));
  if (!n) call.directiveError("invalid number");
  current(load).keepaliveRequests = static_cast<uint64_t>(*n);
}

std::string at(const std::string& file, int line) {
  return describeSource(SourceRef{file, line});
}

}  // namespace

const std::vector<ModuleMainDirective<UpstreamLoad>>& upstreamDirectives() {
  static const std::vector<ModuleMainDirective<UpstreamLoad>> kDirectives = {
      {"server", kUpstream, Args::k1More, &serverLine},
      {"least_conn", kUpstream, Args::kNone, &leastConn},
      {"ip_hash", kUpstream, Args::kNone, &ipHash},
      {"hash", kUpstream, Args::k12, &hash},
      {"keepalive", kUpstream, Args::k1, &keepalive},
      {"keepalive_requests", kUpstream, Args::k1, &keepaliveRequests},
      {"keepalive_timeout", kUpstream, Args::k1, &keepaliveMsec},
      {"keepalive_time", kUpstream, Args::k1, &keepaliveMsec},
  };
  return kDirectives;
}

void beginUpstreamBlock(const DirectiveCall& call, UpstreamLoad& load) {
  std::vector<UpstreamSpec>& upstreams = *load.upstreams;
  const std::string& name = call.arg(0);
  std::optional<size_t> found;
  for (size_t i = 0; i < upstreams.size(); ++i) {
    UpstreamSpec& u = upstreams[i];
    if (!iequals(u.name, name)) continue;
    if (!u.implicit) call.emerg("duplicate upstream " + quote(name));
    if (!u.noPort) {
      // nginx reports the place of the *_pass that wrote the port.
      throw ConfFailure{"[emerg] upstream " + quote(name) + " may not have port " +
                        std::to_string(u.port) + " in " + at(u.file, u.line)};
    }
    if (!found) found = i;  // nginx adopts the first; later ones with other ports stay implicit
    break;
  }
  if (!found) {
    upstreams.emplace_back();
    found = upstreams.size() - 1;
  }
  UpstreamSpec& spec = upstreams[*found];
  spec = UpstreamSpec{};
  spec.name = name;
  spec.implicit = false;
  spec.file = call.directive().source.file;
  spec.line = call.directive().source.line;
  load.current = *found;
  load.backupAllowed = true;
  load.methodSet = load.keepaliveSet = false;
  load.requestsSet = load.timeoutSet = load.timeSet = false;
}

void endUpstreamBlock(const DirectiveCall& call, UpstreamLoad& load) {
  if (current(load).servers.empty()) {
    throw ConfFailure{"[emerg] no servers are inside upstream in " +
                      at(call.directive().source.file, call.directive().endLine)};
  }
}

size_t upstreamFor(std::vector<UpstreamSpec>& upstreams, const std::string& address,
                   uint16_t defaultPort, const DirectiveCall& call) {
  std::string error;
  auto parsed = parseAddress(address, defaultPort, error);
  if (!parsed) call.emerg(error + " in upstream " + quote(address));
  for (size_t i = 0; i < upstreams.size(); ++i) {
    UpstreamSpec& u = upstreams[i];
    if (!iequals(u.name, parsed->host)) continue;
    if (!u.implicit && !parsed->noPort) {
      call.emerg("upstream " + quote(parsed->host) + " may not have port " +
                 std::to_string(parsed->port));
    }
    if (u.port != 0 && parsed->port != 0 && u.port != parsed->port) continue;
    return i;
  }
  UpstreamSpec spec;
  spec.name = parsed->host;
  spec.implicit = true;
  spec.port = parsed->port;
  spec.noPort = parsed->noPort;
  spec.hostIsUnixPath = parsed->unixPath;
  spec.file = call.directive().source.file;
  spec.line = call.directive().source.line;
  upstreams.push_back(std::move(spec));
  return upstreams.size() - 1;
}

void finishUpstreams(std::vector<UpstreamSpec>& upstreams) {
  for (UpstreamSpec& u : upstreams) {
    if (!u.implicit) {
      // ngx_http_upstream_init_round_robin: backups alone are no upstream.
      bool primary = false;
      for (const UpstreamServerSpec& s : u.servers) primary = primary || !s.backup;
      if (!primary) {
        throw ConfFailure{"[emerg] no servers in upstream " + quote(u.name) + " in " +
                          at(u.file, u.line)};
      }
      continue;
    }
    if (!u.servers.empty()) continue;
    UpstreamServerSpec server;
    std::string text;
    if (u.hostIsUnixPath) {
      text = "unix:" + u.name;
    } else {
      if (u.port == 0) {
        throw ConfFailure{"[emerg] no port in upstream " + quote(u.name) + " in " +
                          at(u.file, u.line)};
      }
      text = u.name + ":" + std::to_string(u.port);
    }
    if (auto error = resolveUpstreamAddress(text, u.port, server.addresses)) {
      // nginx names the upstream by its host here: "host not found in upstream \"x\" in F:L".
      std::string reason = error->substr(0, error->find(" in upstream "));
      throw ConfFailure{"[emerg] " + reason + " in upstream " + quote(u.name) + " in " +
                        at(u.file, u.line)};
    }
    server.name = text;
    server.file = u.file;
    server.line = u.line;
    u.servers.push_back(std::move(server));
  }
}

}  // namespace portico::config
