#include "config/ssl_module.h"

#include <map>
#include <set>

#include "config/conf_values.h"

namespace portico::config {
namespace {

// ssl_certificate and ssl_certificate_key may repeat (an ECDSA and an RSA pair, say).
void certificate(const DirectiveCall& call, SslPartial& level) {
  call.noVariables(call.arg(0));
  auto& slot = call.name() == "ssl_certificate" ? level.certificates : level.certificateKeys;
  if (!slot) slot.emplace();
  slot->push_back(call.confName(call.arg(0)));
}

void protocols(const DirectiveCall& call, SslPartial& level) {
  call.checkUnset(level.protocols);
  static const std::set<std::string> kKnown = {"SSLv2", "SSLv3", "TLSv1", "TLSv1.1",
                                               "TLSv1.2", "TLSv1.3"};
  std::string words;
  for (const std::string& word : call.args()) {
    if (!kKnown.count(word)) call.emerg("invalid value " + quote(word));
    if (word == "SSLv2" || word == "SSLv3") {
      call.unsupported(quote(word) + " (OpenSSL 3 has no such protocol)");
    }
    words += (words.empty() ? "" : " ") + word;
  }
  level.protocols = words;
}

void ciphers(const DirectiveCall& call, SslPartial& level) { call.setString(level.ciphers); }
void ecdhCurve(const DirectiveCall& call, SslPartial& level) { call.setString(level.ecdhCurve); }
void preferServerCiphers(const DirectiveCall& call, SslPartial& level) {
  call.setFlag(level.preferServerCiphers);
}

// ngx_conf_set_str_slot for a file named relative to the configuration's directory.
void confPath(const DirectiveCall& call, std::optional<std::string>& slot) {
  call.checkUnset(slot);
  slot = call.arg(0).empty() ? std::string() : call.confName(call.arg(0));
}

void clientCertificate(const DirectiveCall& call, SslPartial& level) {
  confPath(call, level.clientCertificate);
}
void trustedCertificate(const DirectiveCall& call, SslPartial& level) {
  confPath(call, level.trustedCertificate);
}
void crl(const DirectiveCall& call, SslPartial& level) { confPath(call, level.crl); }

void verifyClient(const DirectiveCall& call, SslPartial& level) {
  call.checkUnset(level.verifyClient);
  using V = TlsServerSettings::VerifyClient;
  static const V kValues[] = {V::kOff, V::kOn, V::kOptional, V::kOptionalNoCa};
  level.verifyClient = kValues[call.enumValue({"off", "on", "optional", "optional_no_ca"})];
}

void verifyDepth(const DirectiveCall& call, SslPartial& level) {
  call.checkUnset(level.verifyDepth);
  int64_t depth = call.number(call.arg(0));
  if (depth > 0x7fffffff) call.directiveError("invalid number");
  level.verifyDepth = static_cast<int>(depth);
}

void stapling(const DirectiveCall& call, SslPartial& level) { call.setFlag(level.stapling); }
void staplingVerify(const DirectiveCall& call, SslPartial& level) {
  call.setFlag(level.staplingVerify);
}
void staplingFile(const DirectiveCall& call, SslPartial& level) {
  confPath(call, level.staplingFile);
}
void staplingResponder(const DirectiveCall& call, SslPartial& level) {
  call.setString(level.staplingResponder);
}

}  // namespace

const std::vector<ModuleDirective<SslPartial>>& sslDirectives() {
  static const std::vector<ModuleDirective<SslPartial>> kDirectives = {
      {"ssl_certificate", kHttp | kServer, Args::k1, &certificate},
      {"ssl_certificate_key", kHttp | kServer, Args::k1, &certificate},
      {"ssl_protocols", kHttp | kServer, Args::k1More, &protocols},
      {"ssl_ciphers", kHttp | kServer, Args::k1, &ciphers},
      {"ssl_ecdh_curve", kHttp | kServer, Args::k1, &ecdhCurve},
      {"ssl_prefer_server_ciphers", kHttp | kServer, Args::k1, &preferServerCiphers},
      {"ssl_client_certificate", kHttp | kServer, Args::k1, &clientCertificate},
      {"ssl_trusted_certificate", kHttp | kServer, Args::k1, &trustedCertificate},
      {"ssl_crl", kHttp | kServer, Args::k1, &crl},
      {"ssl_verify_client", kHttp | kServer, Args::k1, &verifyClient},
      {"ssl_verify_depth", kHttp | kServer, Args::k1, &verifyDepth},
      {"ssl_stapling", kHttp | kServer, Args::k1, &stapling},
      {"ssl_stapling_file", kHttp | kServer, Args::k1, &staplingFile},
      {"ssl_stapling_responder", kHttp | kServer, Args::k1, &staplingResponder},
      {"ssl_stapling_verify", kHttp | kServer, Args::k1, &staplingVerify},
  };
  return kDirectives;
}

void mergeSsl(SslPartial& child, const SslPartial& parent) {
  inherit(child.certificates, parent.certificates);
  inherit(child.certificateKeys, parent.certificateKeys);
  inherit(child.protocols, parent.protocols);
  inherit(child.ciphers, parent.ciphers);
  inherit(child.ecdhCurve, parent.ecdhCurve);
  inherit(child.preferServerCiphers, parent.preferServerCiphers);
  inherit(child.clientCertificate, parent.clientCertificate);
  inherit(child.trustedCertificate, parent.trustedCertificate);
  inherit(child.crl, parent.crl);
  inherit(child.verifyClient, parent.verifyClient);
  inherit(child.verifyDepth, parent.verifyDepth);
  inherit(child.stapling, parent.stapling);
  inherit(child.staplingVerify, parent.staplingVerify);
  inherit(child.staplingFile, parent.staplingFile);
  inherit(child.staplingResponder, parent.staplingResponder);
}

void finishSsl(const SslPartial& level, VirtualServer& vs) {
  TlsServerSettings& tls = vs.tls;
  if (level.certificates) tls.certificates = *level.certificates;
  if (level.certificateKeys) tls.keys = *level.certificateKeys;
  if (level.protocols) tls.protocols = *level.protocols;
  if (level.ciphers) tls.ciphers = *level.ciphers;
  if (level.ecdhCurve) tls.ecdhCurve = *level.ecdhCurve;
  if (level.preferServerCiphers) tls.preferServerCiphers = *level.preferServerCiphers;
  if (level.clientCertificate) tls.clientCertificate = *level.clientCertificate;
  if (level.trustedCertificate) tls.trustedCertificate = *level.trustedCertificate;
  if (level.crl) tls.crl = *level.crl;
  if (level.verifyClient) tls.verifyClient = *level.verifyClient;
  if (level.verifyDepth) tls.verifyDepth = *level.verifyDepth;
  if (level.stapling) tls.stapling = *level.stapling;
  if (level.staplingVerify) tls.staplingVerify = *level.staplingVerify;
  if (level.staplingFile) tls.staplingFile = *level.staplingFile;
  if (level.staplingResponder) tls.staplingResponder = *level.staplingResponder;
  if (tls.keys.size() < tls.certificates.size()) {
    throw ConfFailure{"[emerg] no \"ssl_certificate_key\" is defined for certificate \"" +
                      tls.certificates[tls.keys.size()] + "\""};
  }
  // nginx 1.22's ngx_http_ssl_merge_srv_conf: optional_no_ca verifies nothing, so needs no CAs.
  if (tls.verifyClient != TlsServerSettings::VerifyClient::kOff &&
      tls.verifyClient != TlsServerSettings::VerifyClient::kOptionalNoCa &&
      tls.clientCertificate.empty()) {
    throw ConfFailure{"[emerg] no ssl_client_certificate for ssl_verify_client in " +
                      describeSource(vs.source)};
  }
}

void checkSslAddresses(const std::vector<VirtualServer>& servers) {
  // One entry per address (nginx's port → addr list): `ssl` is ORed over its listens, and its
  // default server is the one marked default_server, else the first to listen on it.
  struct Address {
    bool ssl = false;
    const VirtualServer* defaultServer = nullptr;
    bool marked = false;
  };
  std::map<std::string, Address> addresses;
  std::vector<std::string> order;
  for (const VirtualServer& vs : servers) {
    for (const ListenSpec& listen : vs.listens) {
      std::string key = listen.isUnix ? "unix:" + listen.path
                                      : "[" + listen.host + "]:" + std::to_string(listen.port);
      auto [it, added] = addresses.try_emplace(key);
      if (added) order.push_back(key);
      Address& address = it->second;
      address.ssl = address.ssl || listen.ssl;
      if (!address.defaultServer || (listen.defaultServer && !address.marked)) {
        address.defaultServer = &vs;
        address.marked = listen.defaultServer;
      }
    }
  }
  // ngx_http_ssl_init: only the default server needs certificates; the others use its
  // certificates unless SNI picks one that has its own.
  for (const std::string& key : order) {
    const Address& address = addresses[key];
    if (!address.ssl || !address.defaultServer->tls.certificates.empty()) continue;
    throw ConfFailure{"[emerg] no \"ssl_certificate\" is defined for the \"listen ... ssl\""
                      " directive in " + describeSource(address.defaultServer->source)};
  }
}

}  // namespace portico::config
