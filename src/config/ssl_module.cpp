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

// ngx_http_ssl_session_cache: `off | none | [builtin[:size]] [shared:name:size]`.
void sessionCache(const DirectiveCall& call, SslPartial& level) {
  std::optional<int64_t> builtin = level.builtinSessionCache;
  for (const std::string& word : call.args()) {
    if (word == "off") {
      builtin = TlsServerSettings::kSessionCacheOff;
      continue;
    }
    if (word == "none") {
      builtin = TlsServerSettings::kSessionCacheNone;
      continue;
    }
    if (word == "builtin") {
      builtin = TlsServerSettings::kSessionCacheBuiltinDefault;
      continue;
    }
    const std::string_view text(word);
    if (text.size() > 8 && text.starts_with("builtin:")) {
      std::optional<int64_t> n = parseNginxNumber(text.substr(8));
      if (!n) call.emerg("invalid session cache " + quote(word));
      builtin = *n;
      continue;
    }
    if (text.size() > 7 && text.starts_with("shared:")) {
      size_t colon = text.find(':', 7);
      if (colon == 7 || colon == std::string_view::npos) {
        call.emerg("invalid session cache " + quote(word));
      }
      std::optional<int64_t> size = parseNginxSize(text.substr(colon + 1));
      if (!size) call.emerg("invalid session cache " + quote(word));
      if (*size < static_cast<int64_t>(8 * 4096)) {
        call.emerg("session cache " + quote(word) + " is too small");
      }
      level.sessionCacheShared = SslPartial::SharedCache{
          std::string(text.substr(7, colon - 7)), static_cast<uint64_t>(*size),
          call.directive().source};
      continue;
    }
    call.emerg("invalid session cache " + quote(word));
  }
  if (level.sessionCacheShared && !builtin) builtin = TlsServerSettings::kSessionCacheNoBuiltin;
  level.builtinSessionCache = builtin;
}

void sessionTimeout(const DirectiveCall& call, SslPartial& level) {
  call.setSeconds(level.sessionTimeout);
}
void sessionTickets(const DirectiveCall& call, SslPartial& level) {
  call.setFlag(level.sessionTickets);
}

// ngx_conf_set_str_array_slot: each one adds a file (the first encrypts, all decrypt).
void sessionTicketKey(const DirectiveCall& call, SslPartial& level) {
  call.noVariables(call.arg(0));
  if (!level.sessionTicketKeys) level.sessionTicketKeys.emplace();
  level.sessionTicketKeys->push_back(call.confName(call.arg(0)));
}

void dhparam(const DirectiveCall& call, SslPartial& level) {
  call.checkUnset(level.dhparam);
  level.dhparam = call.confName(call.arg(0));
}

void passwordFile(const DirectiveCall& call, SslPartial& level) {
  call.checkUnset(level.passwordFile);
  level.passwordFile = call.confName(call.arg(0));
}

// ngx_conf_set_keyval_slot: NAME VALUE pairs, applied with SSL_CONF_cmd in order.
void confCommand(const DirectiveCall& call, SslPartial& level) {
  if (!level.confCommands) level.confCommands.emplace();
  level.confCommands->emplace_back(call.arg(0), call.arg(1));
  if (!level.confCommandPaths) level.confCommandPaths.emplace();
  level.confCommandPaths->push_back(call.confName(call.arg(1)));
}

void bufferSize(const DirectiveCall& call, SslPartial& level) { call.setSize(level.bufferSize); }

// TLS 1.3 0-RTT, as nginx 1.22: accepted as it comes (replayable), marked by $ssl_early_data.
void earlyData(const DirectiveCall& call, SslPartial& level) { call.setFlag(level.earlyData); }

void rejectHandshake(const DirectiveCall& call, SslPartial& level) {
  call.setFlag(level.rejectHandshake);
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
      {"ssl_session_cache", kHttp | kServer, Args::k12, &sessionCache},
      {"ssl_session_timeout", kHttp | kServer, Args::k1, &sessionTimeout},
      {"ssl_session_tickets", kHttp | kServer, Args::k1, &sessionTickets},
      {"ssl_session_ticket_key", kHttp | kServer, Args::k1, &sessionTicketKey},
      {"ssl_dhparam", kHttp | kServer, Args::k1, &dhparam},
      {"ssl_password_file", kHttp | kServer, Args::k1, &passwordFile},
      {"ssl_conf_command", kHttp | kServer, Args::k2, &confCommand},
      {"ssl_buffer_size", kHttp | kServer, Args::k1, &bufferSize},
      {"ssl_early_data", kHttp | kServer, Args::k1, &earlyData},
      {"ssl_reject_handshake", kHttp | kServer, Args::k1, &rejectHandshake},
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
  inherit(child.builtinSessionCache, parent.builtinSessionCache);
  inherit(child.sessionCacheShared, parent.sessionCacheShared);
  inherit(child.sessionTimeout, parent.sessionTimeout);
  inherit(child.sessionTickets, parent.sessionTickets);
  inherit(child.sessionTicketKeys, parent.sessionTicketKeys);
  inherit(child.dhparam, parent.dhparam);
  inherit(child.passwordFile, parent.passwordFile);
  inherit(child.confCommands, parent.confCommands);
  inherit(child.confCommandPaths, parent.confCommandPaths);
  inherit(child.bufferSize, parent.bufferSize);
  inherit(child.earlyData, parent.earlyData);
  inherit(child.rejectHandshake, parent.rejectHandshake);
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
  if (level.builtinSessionCache) tls.builtinSessionCache = *level.builtinSessionCache;
  if (level.sessionCacheShared) {
    tls.sessionCacheZone = level.sessionCacheShared->name;
    tls.sessionCacheSize = level.sessionCacheShared->size;
    tls.sessionCacheSource = level.sessionCacheShared->source;
  }
  if (level.sessionTimeout) tls.sessionTimeout = *level.sessionTimeout;
  if (level.sessionTickets) tls.sessionTickets = *level.sessionTickets;
  if (level.sessionTicketKeys) tls.sessionTicketKeys = *level.sessionTicketKeys;
  if (level.dhparam) tls.dhparam = *level.dhparam;
  if (level.passwordFile) tls.passwordFile = *level.passwordFile;
  if (level.confCommands) tls.confCommands = *level.confCommands;
  if (level.confCommandPaths) tls.confCommandPaths = *level.confCommandPaths;
  if (level.bufferSize) tls.bufferSize = *level.bufferSize;
  if (level.earlyData) tls.earlyData = *level.earlyData;
  if (level.rejectHandshake) tls.rejectHandshake = *level.rejectHandshake;
  if (tls.keys.size() < tls.certificates.size()) {
    throw ConfFailure{"[emerg] no \"ssl_certificate_key\" is defined for certificate \"" +
                      tls.certificates[tls.keys.size()] + "\""};
  }
  // nginx 1.22's ngx_http_ssl_merge_srv_conf: optional_no_ca verifies nothing, so needs no CAs;
  // a server with no certificates of its own (it uses its address's default's) makes no
  // context, and is not checked.
  bool hasContext = !tls.certificates.empty() || tls.rejectHandshake;
  if (hasContext && tls.verifyClient != TlsServerSettings::VerifyClient::kOff &&
      tls.verifyClient != TlsServerSettings::VerifyClient::kOptionalNoCa &&
      tls.clientCertificate.empty()) {
    // nginx logs it with no FILE:LINE (ngx_log_error at merge time, not ngx_conf_log_error).
    throw ConfFailure{"[emerg] no ssl_client_certificate for ssl_verify_client"};
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
    const TlsServerSettings& tls = address.defaultServer->tls;
    // A server that rejects every handshake needs no certificate (nginx 1.19.4+).
    if (!address.ssl || !tls.certificates.empty() || tls.rejectHandshake) continue;
    throw ConfFailure{"[emerg] no \"ssl_certificate\" is defined for the \"listen ... ssl\""
                      " directive in " + describeSource(address.defaultServer->source)};
  }
}

std::string checkSslCacheZones(const HttpSite& site) {
  std::vector<const TlsServerSettings*> zones;
  for (const VirtualServer& vs : site.servers) {
    const TlsServerSettings& tls = vs.tls;
    if (tls.sessionCacheZone.empty()) continue;
    const std::string where = " in " + describeSource(tls.sessionCacheSource);
    for (const LimitZoneSpec& limit : site.limitZones) {
      if (limit.name == tls.sessionCacheZone) {
        return "the shared memory zone " + quote(limit.name) +
               " is already declared for a different use" + where;
      }
    }
    for (const TlsServerSettings* other : zones) {
      if (other->sessionCacheZone == tls.sessionCacheZone &&
          other->sessionCacheSize != tls.sessionCacheSize) {
        return "the size " + std::to_string(tls.sessionCacheSize) + " of shared memory zone " +
               quote(tls.sessionCacheZone) + " conflicts with already declared size " +
               std::to_string(other->sessionCacheSize) + where;
      }
    }
    zones.push_back(&tls);
  }
  return {};
}

}  // namespace portico::config
