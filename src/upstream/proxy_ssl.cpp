#include "upstream/proxy_ssl.h"

#include <arpa/inet.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "http/exchange.h"
#include "transport/tls_context.h"

namespace portico::upstream {
namespace {

// The host part of proxy_pass's address without its port (nginx's uscf->host).
std::string hostOf(const config::ProxyPass& pass) {
  std::string host = pass.upstream;
  if (host.starts_with('[')) {
    size_t close = host.find(']');
    return close == std::string::npos ? host : host.substr(0, close + 1);
  }
  size_t colon = host.find(':');
  if (colon != std::string::npos && !host.starts_with("unix:")) host.resize(colon);
  return host;
}

}  // namespace

std::unique_ptr<UpstreamTls> makeUpstreamTls(const config::ProxySettings& settings,
                                             const std::vector<std::string>& captures,
                                             const http::VariableRegistry* users,
                                             std::string& error) {
  const config::ProxySslSettings& s = settings.ssl;
  transport::TlsClientSettings client;
  client.protocols = s.protocols;
  client.ciphers = s.ciphers;
  client.verify = s.verify;
  client.verifyDepth = s.verifyDepth;
  client.trustedCertificate = s.trustedCertificate;
  client.crl = s.crl;
  if (!s.certificateHasVariables()) {
    client.certificate = s.certificate;
    client.certificateKey = s.certificateKey;
  }
  client.sessionReuse = s.sessionReuse;
  client.confCommands = s.confCommands;
  client.confCommandPaths = s.confCommandPaths;
  if (!s.passwordFile.empty() &&
      !transport::readPasswordFile(s.passwordFile, client.passwords, error)) {
    return nullptr;
  }
  auto tls = std::make_unique<UpstreamTls>();
  tls->context = transport::TlsClientContext::create(client, error);
  if (!tls->context) return nullptr;
  if (!s.name.empty()) {
    tls->name = http::Template::compile(s.name, error, captures, users);
    if (!tls->name) return nullptr;
  }
  if (settings.pass) tls->defaultName = hostOf(*settings.pass);
  tls->serverName = s.serverName;
  tls->verify = s.verify;
  if (s.certificateHasVariables() && !s.certificate.empty()) {
    tls->certificate = http::Template::compile(s.certificate, error, captures, users);
    if (!tls->certificate) return nullptr;
    tls->certificateKey = http::Template::compile(s.certificateKey, error, captures, users);
    if (!tls->certificateKey) return nullptr;
    tls->certificateDirectory = s.certificateDirectory;
    tls->passwords = client.passwords;
  }
  return tls;
}

bool useRequestCertificate(const UpstreamTls& tls, SSL* ssl, const http::Exchange* exchange,
                           std::string& error) {
  if (!tls.certificate || !exchange) return true;
  std::string certificate = exchange->expand(*tls.certificate);
  if (certificate.empty()) return true;
  std::string key = exchange->expand(*tls.certificateKey);
  auto full = [&tls](std::string path) {
    return path.starts_with('/') ? path : tls.certificateDirectory + path;
  };
  return transport::useCertificateAndKey(ssl, full(certificate), full(key), tls.passwords,
                                         error);
}

std::string upstreamSslName(const UpstreamTls& tls, const http::Exchange* exchange,
                            const std::string* target) {
  std::string name = target ? *target : tls.defaultName;
  if (tls.name) name = exchange ? exchange->expand(*tls.name) : std::string();
  // The name may carry a port ($proxy_host, $http_host): stripped, as nginx does.
  size_t from = 0;
  if (name.starts_with('[')) {
    size_t close = name.find(']');
    from = close == std::string::npos ? 0 : close;
  }
  size_t colon = name.find(':', from);
  if (colon != std::string::npos) name.resize(colon);
  return name;
}

std::string upstreamSni(const UpstreamTls& tls, const std::string& name) {
  if (!tls.serverName || name.empty() || name.starts_with('[')) return "";
  in_addr scratch{};
  if (::inet_pton(AF_INET, name.c_str(), &scratch) == 1) return "";
  return name;
}

std::string verifyUpstream(const UpstreamTls& tls, SSL* ssl, const std::string& name) {
  if (!tls.verify) return "";
  long rc = SSL_get_verify_result(ssl);
  if (rc != X509_V_OK) {
    return "upstream SSL certificate verify error: (" + std::to_string(rc) + ":" +
           X509_verify_cert_error_string(rc) + ")";
  }
  // ngx_ssl_check_host: X509_check_host on the peer's certificate.
  X509* cert = SSL_get1_peer_certificate(ssl);
  bool match = cert && X509_check_host(cert, name.data(), name.size(), 0, nullptr) == 1;
  if (cert) X509_free(cert);
  if (!match) return "upstream SSL certificate does not match \"" + name + "\"";
  return "";
}

std::string ioFailureText(const transport::Transport& conn, const char* plainCall,
                          const char* sslCall, int error) {
  std::string errnoPart =
      " (" + std::to_string(error) + ": " + std::strerror(error) + ")";
  if (!conn.tlsSession()) return plainCall + std::string(" failed") + errnoPart;
  const auto& tls = static_cast<const transport::TlsClientTransport&>(conn);
  if (error == EPROTO && !tls.lastError().empty()) {
    return sslCall + std::string(" failed") + tls.lastError();
  }
  return sslCall + std::string(" failed") + errnoPart;
}

}  // namespace portico::upstream
