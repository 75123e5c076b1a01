#include "pipeline/access_phase.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/log.h"
#include "core/unique_fd.h"
#include "http/htpasswd.h"
#include "http/realip.h"

namespace portico::pipeline {
namespace {

constexpr int kDeclined = -1;

// The access module: the first rule matching the client's family decides (0 allow, 403 deny).
int checkRules(const config::AccessSettings& s, const http::ConnectionInfo& client) {
  if (s.rules.empty()) return kDeclined;
  bool unix = client.isUnix && client.peerAddress.empty();
  config::PeerAddress peer = config::peerAddressOf(client.peerAddress, unix);
  bool hasV4 = false;
  for (const config::AccessRule& r : s.rules) hasV4 = hasV4 || r.all || r.cidr.family == AF_INET;
  // nginx: an IPv4-mapped client is checked against the IPv4 rules when there are any.
  if (peer.v4Mapped() && hasV4) peer = peer.asV4();
  for (const config::AccessRule& r : s.rules) {
    if (!r.all && !config::cidrMatches(r.cidr, peer)) continue;
    if (!r.deny) return 0;
    if (!s.satisfyAny) logError("access forbidden by rule");
    return 403;
  }
  return kDeclined;
}

std::string errnoText(int error) {
  return "(" + std::to_string(error) + ": " + std::strerror(error) + ")";
}

// The auth_basic module: kDeclined, 0, 401 (with `realmOut`), 403 or 500.
int checkAuth(const config::AccessSettings& s, const AuthBasicRuntime& rt,
              const http::Request& request, const http::VariableContext& vars,
              std::string& realmOut) {
  if (!rt.realm || !rt.userFile) return kDeclined;
  std::string realm = rt.realm->expand(vars);
  if (realm == "off") return kDeclined;
  realmOut = "Basic realm=\"" + realm + "\"";
  const std::string* header = request.header("Authorization");
  std::optional<http::BasicCredentials> credentials;
  if (header) credentials = http::parseBasicAuthorization(*header);
  if (!credentials) {
    logInfo("no user/password was provided for basic authentication");
    return 401;
  }
  std::string path = rt.userFile->expand(vars);
  if (path.empty() || path[0] != '/') path.insert(0, s.confPrefix);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    int error = errno;
    std::string line = "open() \"" + path + "\" failed " + errnoText(error);
    if (error == ENOENT) {
      logError(line);
      return 403;
    }
    logCritical(line);
    return 500;
  }
  std::string text;
  char buffer[4096];
  while (true) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      logCritical("read() \"" + path + "\" failed " + errnoText(error));
      return 500;
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  std::optional<std::string> hash = http::findHtpasswdEntry(text, credentials->user);
  std::fill(text.begin(), text.end(), '\0');
  if (!hash) {
    logError("user \"" + credentials->user + "\" was not found in \"" + path + "\"");
    return 401;
  }
  switch (http::checkPassword(credentials->password, *hash)) {
    case http::PasswordCheck::kMatch:
      return 0;
    case http::PasswordCheck::kError:
      return 500;
    case http::PasswordCheck::kMismatch:
      break;
  }
  logError("user \"" + credentials->user + "\": password mismatch");
  return 401;
}

}  // namespace

std::optional<http::ConnectionInfo> realClient(const config::AccessSettings& s,
                                               const http::Request& request,
                                               const http::ConnectionInfo& client) {
  if (!s.realIpFrom) return std::nullopt;
  std::vector<std::string_view> values;
  switch (s.realIpHeader) {
    case config::RealIpHeader::kXRealIp:
      if (const std::string* v = request.header("X-Real-IP")) values.push_back(*v);
      break;
    case config::RealIpHeader::kXForwardedFor:
      for (const http::Header& h : request.headers) {
        if (http::iequals(h.name, "X-Forwarded-For")) values.push_back(h.value);
      }
      break;
    case config::RealIpHeader::kOther:
      if (const std::string* v = request.header(s.realIpHeaderName)) values.push_back(*v);
      break;
    case config::RealIpHeader::kProxyProtocol:
      // nginx's NGX_HTTP_REALIP_PROXY: the header's source address, as X-Real-IP's one value,
      // and its port.
      if (!client.proxyProtocolAddress.empty()) values.push_back(client.proxyProtocolAddress);
      break;
  }
  if (values.empty()) return std::nullopt;
  http::ClientAddress current;
  bool unix = client.isUnix && client.peerAddress.empty();
  current.peer = config::peerAddressOf(client.peerAddress, unix);
  current.text = client.peerAddress;
  current.port = client.peerPort;
  std::optional<http::ClientAddress> real =
      http::forwardedAddress(current, values, *s.realIpFrom, s.realIpRecursive);
  if (!real) return std::nullopt;
  http::ConnectionInfo replaced = client;
  replaced.peerAddress = real->text;
  replaced.peerPort = real->port;
  if (s.realIpHeader == config::RealIpHeader::kProxyProtocol) {
    replaced.peerPort = client.proxyProtocolPort;
  }
  return replaced;
}

AccessVerdict runAccessPhase(const config::AccessSettings& s, const AuthBasicRuntime& auth,
                             const http::ConnectionInfo& client, const http::Request& request,
                             const http::VariableContext& vars) {
  AccessVerdict verdict;
  int accessCode = 0;
  auto fail = [&](int status) {
    verdict.status = status;
    if (status == 401) verdict.delayMs = s.authDelayMs;
    return verdict;
  };
  int rc = checkRules(s, client);
  if (rc != kDeclined) {
    if (!s.satisfyAny) {
      if (rc != 0) return fail(rc);
    } else {
      if (rc == 0) return verdict;
      accessCode = rc;
    }
  }
  std::string realm;
  rc = checkAuth(s, auth, request, vars, realm);
  if (rc == 401) verdict.wwwAuthenticate = realm;
  if (rc != kDeclined) {
    if (!s.satisfyAny) {
      if (rc != 0) return fail(rc);
    } else {
      if (rc == 0) {
        verdict.wwwAuthenticate.clear();
        return verdict;
      }
      if (rc == 401 || rc == 403) {
        if (accessCode != 401) accessCode = rc;
      } else {
        return fail(rc);
      }
    }
  }
  if (accessCode != 0) {
    // ngx_http_core_post_access_phase
    if (accessCode == 403) logError("access forbidden by rule");
    return fail(accessCode);
  }
  return verdict;
}

}  // namespace portico::pipeline
