#include "process/tls_contexts.h"

#include <cctype>

#include "core/log.h"
#include "transport/kernel_tls.h"
#include "transport/tls_transport.h"

namespace portico::process {

namespace {

transport::TlsSettings::VerifyClient verifyClientOf(config::TlsServerSettings::VerifyClient v) {
  using From = config::TlsServerSettings::VerifyClient;
  using To = transport::TlsSettings::VerifyClient;
  switch (v) {
    case From::kOn: return To::kOn;
    case From::kOptional: return To::kOptional;
    case From::kOptionalNoCa: return To::kOptionalNoCa;
    case From::kOff: break;
  }
  return To::kOff;
}

}  // namespace

bool TlsContexts::build(const config::HttpSite& site, std::string& error, bool logWarnings) {
  // The master's shared caches and ticket keys; a process no master forked (-t, tests) makes
  // its own.
  shared_ = TlsShared::installed();
  if (!shared_ || !shared_->covers(site)) shared_ = TlsShared::create(site, nullptr, error);
  if (!shared_) return false;
  for (const config::VirtualServer& server : site.servers) {
    for (const config::ListenSpec& listen : server.listens) {
      // nginx ORs `ssl` over every listen of an address.
      if (listen.ssl) sslKeys_.insert(http::SiteMap::listenKey(listen));
    }
    const config::TlsServerSettings& tls = server.tls;
    if (tls.certificates.empty() && !tls.rejectHandshake) continue;
    transport::TlsSettings settings;
    settings.allowNoCertificate = tls.rejectHandshake;
    settings.builtinSessionCache = tls.builtinSessionCache;
    if (!tls.sessionCacheZone.empty()) {
      settings.sharedCache = shared_->cache(tls.sessionCacheZone, tls.sessionCacheSize);
    }
    settings.sessionTimeout = tls.sessionTimeout;
    settings.sessionTickets = tls.sessionTickets;
    // Key files are read here, before privileges drop; without them every worker uses the
    // master's random keys (nginx 1.22 leaves them to OpenSSL, per context).
    for (const std::string& path : tls.sessionTicketKeys) {
      transport::TicketKey key;
      if (!transport::readTicketKeyFile(path, key, error)) return false;
      settings.ticketKeys.push_back(key);
    }
    if (tls.sessionTicketKeys.empty()) settings.ticketKeys = shared_->ticketKeys();
    settings.dhparam = tls.dhparam;
    if (!tls.passwordFile.empty()) settings.passwords = *shared_->passwords(tls.passwordFile);
    settings.confCommands = tls.confCommands;
    settings.confCommandPaths = tls.confCommandPaths;
    settings.bufferSize = static_cast<size_t>(tls.bufferSize);
    settings.earlyData = tls.earlyData;
    for (size_t i = 0; i < tls.certificates.size() && i < tls.keys.size(); ++i) {
      settings.certificates.emplace_back(tls.certificates[i], tls.keys[i]);
    }
    settings.protocols = tls.protocols;
    settings.ciphers = tls.ciphers;
    settings.preferServerCiphers = tls.preferServerCiphers;
    settings.ecdhCurve = tls.ecdhCurve;
    settings.clientCertificate = tls.clientCertificate;
    settings.verifyClient = verifyClientOf(tls.verifyClient);
    settings.verifyDepth = tls.verifyDepth;
    settings.verifyInHandshake = tls.verifyInHandshake;
    settings.kernelTls = transport::kernelTlsSupport().available;
    settings.trustedCertificate = tls.trustedCertificate;
    settings.crl = tls.crl;
    settings.stapling = tls.stapling;
    settings.staplingFile = tls.staplingFile;
    settings.staplingResponder = tls.staplingResponder;
    std::unique_ptr<transport::TlsContext> context = transport::TlsContext::create(settings, error);
    if (!context) return false;
    if (logWarnings) {
      for (const std::string& warning : context->warnings()) logWarning(warning);
    }
    SSL_CTX_set_tlsext_servername_callback(context->get(), &TlsContexts::onServerName);
    SSL_CTX_set_tlsext_servername_arg(context->get(), this);
    contexts_.emplace(&server, std::move(context));
  }
  return true;
}

const transport::TlsContext* TlsContexts::forServer(const config::VirtualServer* server) const {
  auto it = contexts_.find(server);
  return it == contexts_.end() ? nullptr : it->second.get();
}

const transport::TlsContext* TlsContexts::forGroup(const http::ServerGroup& group) const {
  return group.defaultServer ? forServer(group.defaultServer->config) : nullptr;
}

int TlsContexts::onServerName(SSL* ssl, int* alert, void* arg) {
  const auto* self = static_cast<const TlsContexts*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  const auto* group = static_cast<const http::ServerGroup*>(transport::TlsTransport::tagOf(ssl));
  if (!group) return SSL_TLSEXT_ERR_NOACK;
  if (!name || !*name) {
    // ssl_reject_handshake on the default server refuses clients that name no server.
    if (group->defaultServer && group->defaultServer->config->tls.rejectHandshake) {
      *alert = SSL_AD_UNRECOGNIZED_NAME;
      return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_NOACK;
  }
  std::string host(name);
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const http::ServerNode* node = group->select(host, nullptr);
  if (!node) node = group->defaultServer;
  if (node && node->config->tls.rejectHandshake) {
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  const transport::TlsContext* context = node ? self->forServer(node->config) : nullptr;
  // A server without certificates keeps the default server's (nginx does the same).
  if (context && context->get() != SSL_get_SSL_CTX(ssl)) {
    SSL_set_SSL_CTX(ssl, context->get());
    // SSL_set_SSL_CTX keeps the first context's verification: take the server's (nginx's
    // ngx_http_ssl_servername does the same).
    SSL_set_verify(ssl, SSL_CTX_get_verify_mode(context->get()),
                   SSL_CTX_get_verify_callback(context->get()));
    SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(context->get()));
  }
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace portico::process
