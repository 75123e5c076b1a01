#pragma once

// nginx's ngx_http_ssl_module as portico implements it: the ssl_* directives (http, server),
// what each level wrote, the merge http → server, and the server's TlsServerSettings with
// nginx's checks of a server that listens with `ssl`. Paths are kept as names (relative ones
// are the configuration directory's); certificates are read when the worker's TLS contexts are
// made (process/tls_contexts), and at -t.

#include <optional>
#include <string>
#include <vector>

#include "config/conf_module.h"
#include "config/site.h"

namespace portico::config {

// What one level (http or server) wrote; unset fields inherit from http.
struct SslPartial {
  std::optional<std::vector<std::string>> certificates, certificateKeys;
  std::optional<std::string> protocols, ciphers, ecdhCurve;
  std::optional<bool> preferServerCiphers;
  // Client certificates (mutual TLS) and OCSP stapling; paths already the conf directory's.
  std::optional<std::string> clientCertificate, trustedCertificate, crl;
  std::optional<TlsServerSettings::VerifyClient> verifyClient;
  std::optional<int> verifyDepth;
  std::optional<bool> stapling, staplingVerify;
  std::optional<std::string> staplingFile, staplingResponder;
  // ssl_session_cache: the builtin part (TlsServerSettings::kSessionCache* or a size) and the
  // shared zone; a level without a zone takes its parent's, as nginx's shm_zone.
  struct SharedCache {
    std::string name;
    uint64_t size = 0;
    SourceRef source;
  };
  std::optional<int64_t> builtinSessionCache;
  std::optional<SharedCache> sessionCacheShared;
  std::optional<int64_t> sessionTimeout;
  std::optional<bool> sessionTickets;
  std::optional<std::vector<std::string>> sessionTicketKeys;
  std::optional<std::string> dhparam, passwordFile;
  std::optional<std::vector<std::pair<std::string, std::string>>> confCommands;
  std::optional<std::vector<std::string>> confCommandPaths;  // the values as conf-relative paths
  std::optional<uint64_t> bufferSize;
  std::optional<bool> earlyData, rejectHandshake;
};

const std::vector<ModuleDirective<SslPartial>>& sslDirectives();

void mergeSsl(SslPartial& child, const SslPartial& parent);

// Fills vs.tls from the server's merged partial (nginx's ngx_http_ssl_merge_srv_conf). Throws
// ConfFailure.
void finishSsl(const SslPartial& level, VirtualServer& vs);

// nginx's ngx_http_ssl_init, once every server is finished: an address that listens with `ssl`
// needs certificates in its default server (the others may go without: they use the default's
// unless SNI selects one of theirs). Throws ConfFailure.
void checkSslAddresses(const std::vector<VirtualServer>& servers);

// nginx's ngx_shared_memory_add over a whole site: an ssl_session_cache zone named as a
// limit_req/limit_conn zone, or declared twice with different sizes, is nginx's message with
// the FILE:LINE of the later declaration; "" when the zones agree.
std::string checkSslCacheZones(const HttpSite& site);

}  // namespace portico::config
