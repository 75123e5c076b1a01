#pragma once

// The proxy_ssl_* directives (nginx 1.22's ngx_http_proxy_module, its upstream-TLS part): what
// one level wrote, the merge parent → child and the finish into ProxySslSettings. The rows are
// appended to the proxy module's table (proxy_module.cpp); the uwsgi module reuses them under
// uwsgi_ssl_* names. Pure of I/O: the files are read when the engine makes its SSL_CTX.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/conf_module.h"
#include "config/site.h"

namespace portico::config {

struct ProxyPartial;

// What one level wrote of proxy_ssl_*; unset fields inherit from the enclosing level.
struct ProxySslPartial {
  std::optional<std::string> protocols, ciphers, name, trustedCertificate, crl, certificate,
      certificateKey, passwordFile;
  std::optional<std::string> certificateDirectory;  // where a certificate with variables is
  std::optional<bool> serverName, verify, sessionReuse;
  std::optional<int64_t> verifyDepth;
  std::optional<std::vector<std::pair<std::string, std::string>>> confCommands;
  std::optional<std::vector<std::string>> confCommandPaths;
};

// The rows (proxy_ssl_*), appended at the end of proxyDirectives().
std::vector<ModuleDirective<ProxyPartial>> proxySslDirectives();

void mergeProxySsl(ProxySslPartial& child, const ProxySslPartial& parent);
void finishProxySsl(const ProxySslPartial& level, ProxySslSettings& settings);

// nginx's ngx_http_proxy_set_ssl checks for a location whose pass is https (a certificate
// without its key, proxy_ssl_verify without trusted certificates): a ConfFailure at `at`.
// `prefix` names the module's directives ("proxy" or "uwsgi").
void checkProxySsl(const ProxySettings& settings, const SourceRef& at, const std::string& prefix);

}  // namespace portico::config
