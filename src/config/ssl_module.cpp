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

}  // namespace

const std::vector<ModuleDirective<SslPartial>>& sslDirectives() {
  static const std::vector<ModuleDirective<SslPartial>> kDirectives = {
      {"ssl_certificate", kHttp | kServer, Args::k1, &certificate},
      {"ssl_certificate_key", kHttp | kServer, Args::k1, &certificate},
      {"ssl_protocols", kHttp | kServer, Args::k1More, &protocols},
      {"ssl_ciphers", kHttp | kServer, Args::k1, &ciphers},
      {"ssl_ecdh_curve", kHttp | kServer, Args::k1, &ecdhCurve},
      {"ssl_prefer_server_ciphers", kHttp | kServer, Args::k1, &preferServerCiphers},
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
}

void finishSsl(const SslPartial& level, VirtualServer& vs) {
  TlsServerSettings& tls = vs.tls;
  if (level.certificates) tls.certificates = *level.certificates;
  if (level.certificateKeys) tls.keys = *level.certificateKeys;
  if (level.protocols) tls.protocols = *level.protocols;
  if (level.ciphers) tls.ciphers = *level.ciphers;
  if (level.ecdhCurve) tls.ecdhCurve = *level.ecdhCurve;
  if (level.preferServerCiphers) tls.preferServerCiphers = *level.preferServerCiphers;
  if (tls.keys.size() < tls.certificates.size()) {
    throw ConfFailure{"[emerg] no \"ssl_certificate_key\" is defined for certificate \"" +
                      tls.certificates[tls.keys.size()] + "\""};
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
