#include "upstream/proxy_target.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "config/upstream_address.h"
#include "http/request.h"

namespace portico::upstream {
namespace {

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace

std::optional<PassTarget> parsePassTarget(std::string_view url, std::string& error) {
  size_t skip = 0;
  if (startsWithCaseless(url, "http://")) {
    skip = 7;
  } else if (startsWithCaseless(url, "https://")) {
    skip = 8;
  }
  if (skip == 0 || url.size() <= skip) {
    error = "invalid URL prefix in " + quoted(url);
    return std::nullopt;
  }
  std::string_view rest = url.substr(skip);
  PassTarget t;
  t.pass.url = std::string(url);
  t.pass.variables = true;
  t.pass.ssl = skip == 8;  // the location's proxy_ssl_* context (made for any variable pass)
  const uint16_t defaultPort = t.pass.ssl ? 443 : 80;
  t.port = defaultPort;
  std::string_view hostPart;
  if (startsWithCaseless(rest, "unix:")) {
    size_t colon = rest.find(':', 5);
    hostPart = rest.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    t.pass.unixSocket = true;
    t.host = std::string(hostPart.substr(5));
    std::vector<config::UpstreamAddress> addresses;
    if (auto failure = config::resolveUpstreamAddress(std::string(hostPart), 80, addresses)) {
      error = *failure;
      return std::nullopt;
    }
    t.address = addresses.front();
    t.pass.proxyHost = "localhost";
  } else {
    size_t end = rest.find_first_of("/?");
    hostPart = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
    std::string_view host = hostPart;
    std::string_view port;
    if (host.starts_with('[')) {
      size_t close = host.find(']');
      if (close == std::string_view::npos) {
        error = "invalid host in upstream " + quoted(url.substr(skip));
        return std::nullopt;
      }
      if (close + 1 < host.size()) {
        if (host[close + 1] != ':') {
          error = "invalid host in upstream " + quoted(url.substr(skip));
          return std::nullopt;
        }
        port = host.substr(close + 2);
      }
      host = host.substr(0, close + 1);
    } else if (size_t colon = host.find(':'); colon != std::string_view::npos) {
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
    }
    if (!port.empty() || hostPart.find(':') != std::string_view::npos) {
      int value = 0;
      bool ok = !port.empty() && port.size() <= 5;
      for (char c : port) {
        ok = ok && c >= '0' && c <= '9';
        if (ok) value = value * 10 + (c - '0');
      }
      if (!ok || value < 1 || value > 65535) {
        error = "invalid port in upstream " + quoted(url.substr(skip));
        return std::nullopt;
      }
      t.port = static_cast<uint16_t>(value);
      t.noPort = false;
    }
    if (host.empty()) {
      error = "no host in upstream " + quoted(url.substr(skip));
      return std::nullopt;
    }
    t.host = std::string(host);
    // $proxy_host: the host alone for the default port (ngx_http_proxy_set_vars).
    t.pass.proxyHost = t.noPort || t.port == defaultPort ? t.host : std::string(hostPart);
    t.pass.proxyPort =
        t.noPort || t.port == defaultPort ? std::to_string(defaultPort) : std::string(port);
    std::string literal = host.starts_with('[') ? std::string(host.substr(1, host.size() - 2))
                                                : std::string(host);
    in6_addr scratch;
    bool isLiteral = ::inet_pton(host.starts_with('[') ? AF_INET6 : AF_INET, literal.c_str(),
                                 &scratch) == 1;
    if (isLiteral) {
      std::vector<config::UpstreamAddress> addresses;
      std::string text = t.host + ":" + std::to_string(t.port);
      if (auto failure = config::resolveUpstreamAddress(text, 80, addresses)) {
        error = *failure;
        return std::nullopt;
      }
      t.address = addresses.front();
    }
  }
  t.pass.upstream = std::string(hostPart);
  if (!rest.empty()) {
    t.pass.hasUri = true;
    t.pass.uri = rest.starts_with('?') ? "/" + std::string(rest) : std::string(rest);
  }
  return t;
}

std::optional<PassTarget> parseUwsgiTarget(std::string_view target, std::string& error) {
  std::string_view rest = target;
  bool ssl = false;
  if (startsWithCaseless(rest, "uwsgi://")) {
    rest.remove_prefix(8);
  } else if (startsWithCaseless(rest, "suwsgi://")) {
    rest.remove_prefix(9);  // uwsgi over TLS, with the location's uwsgi_ssl_* context
    ssl = true;
  }
  if (rest.empty()) {
    error = "no host in upstream \"\"";
    return std::nullopt;
  }
  // The address is read as a URL's host and port are (ngx_parse_url, as nginx's
  // ngx_http_uwsgi_eval); a path or query after it means nothing to uwsgi.
  std::optional<PassTarget> t = parsePassTarget("http://" + std::string(rest), error);
  if (!t) return std::nullopt;
  t->pass.url = std::string(target);
  t->pass.upstream = std::string(rest.substr(0, rest.find_first_of(t->pass.unixSocket ? "" : "/?")));
  t->pass.hasUri = false;
  t->pass.uri.clear();
  t->pass.ssl = ssl;
  return t;
}

int findUpstream(const std::vector<config::UpstreamSpec>& upstreams, const PassTarget& target) {
  if (target.address) return -1;
  for (size_t i = 0; i < upstreams.size(); ++i) {
    const config::UpstreamSpec& spec = upstreams[i];
    if (spec.hostIsUnixPath || spec.name.size() != target.host.size() ||
        !http::iequals(spec.name, target.host)) {
      continue;
    }
    if ((spec.port == 0 && target.noPort) || spec.port == target.port) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

config::UpstreamSpec singleServerUpstream(const PassTarget& target) {
  config::UpstreamSpec spec;
  spec.name = target.host;
  spec.implicit = true;
  spec.port = target.port;
  config::UpstreamServerSpec server;
  server.name = target.pass.upstream;
  if (target.address) server.addresses.push_back(*target.address);
  spec.servers.push_back(std::move(server));
  return spec;
}

std::optional<config::UpstreamAddress> parseLocalAddress(std::string_view text) {
  std::string_view host = text;
  std::string_view port;
  bool v6 = false;
  if (host.starts_with('[')) {
    size_t close = host.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    if (close + 1 < host.size()) {
      if (host[close + 1] != ':') return std::nullopt;
      port = host.substr(close + 2);
      if (port.empty()) return std::nullopt;
    }
    host = host.substr(1, close - 1);
    v6 = true;
  } else if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    if (host.find(':') != colon) {
      v6 = true;  // a bare IPv6 address, no port
    } else {
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
      if (port.empty()) return std::nullopt;
    }
  }
  int portValue = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || port.size() > 5) return std::nullopt;
    portValue = portValue * 10 + (c - '0');
  }
  if (portValue > 65535) return std::nullopt;
  config::UpstreamAddress out;
  std::string name(host);
  if (v6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
    if (::inet_pton(AF_INET6, name.c_str(), &in6->sin6_addr) != 1) return std::nullopt;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(portValue));
    out.length = sizeof(sockaddr_in6);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&out.addr);
    if (::inet_pton(AF_INET, name.c_str(), &in->sin_addr) != 1) return std::nullopt;
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(portValue));
    out.length = sizeof(sockaddr_in);
  }
  out.text = std::string(text);
  return out;
}

bool bindLocal(int fd, std::string_view text, std::string& message) {
  if (text.empty()) return true;
  std::optional<config::UpstreamAddress> local = parseLocalAddress(text);
  if (!local) {
    message = "invalid local address " + quoted(text);
    return true;
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&local->addr), local->length) != 0) {
    int error = errno;
    message = "bind(" + std::string(text) + ") failed (" + std::to_string(error) + ": " +
              std::strerror(error) + ")";
    return false;
  }
  return true;
}

}  // namespace portico::upstream
