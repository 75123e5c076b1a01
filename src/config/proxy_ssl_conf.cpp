#include "config/proxy_ssl_conf.h"

#include <string_view>

#include "config/conf_parser.h"
#include "config/conf_values.h"
#include "config/proxy_module.h"

namespace portico::config {
namespace {

ProxySslPartial& of(ProxyPartial& level) { return level.ssl; }

// ngx_conf_set_bitmask_slot with ngx_http_proxy_ssl_protocols: the words add up (SSLv2 and
// SSLv3 are accepted as nginx built with OpenSSL 3 accepts them: that library cannot speak
// them, so they enable nothing).
void protocols(const DirectiveCall& call, ProxyPartial& level) {
  static constexpr std::string_view kKnown[] = {"SSLv2", "SSLv3", "TLSv1", "TLSv1.1",
                                                "TLSv1.2", "TLSv1.3"};
  std::string words = of(level).protocols.value_or("");
  for (const std::string& word : call.args()) {
    bool known = false;
    for (std::string_view k : kKnown) known = known || word == k;
    if (!known) call.emerg("invalid value " + quote(word));
    if (word == "SSLv2" || word == "SSLv3") continue;
    words += (words.empty() ? "" : " ") + word;
  }
  of(level).protocols = words;
}

void ciphers(const DirectiveCall& call, ProxyPartial& level) { call.setString(of(level).ciphers); }
// proxy_ssl_name: a complex value (variables allowed), expanded per connection.
void name(const DirectiveCall& call, ProxyPartial& level) { call.setString(of(level).name); }
void serverName(const DirectiveCall& call, ProxyPartial& level) {
  call.setFlag(of(level).serverName);
}
void verify(const DirectiveCall& call, ProxyPartial& level) { call.setFlag(of(level).verify); }
void sessionReuse(const DirectiveCall& call, ProxyPartial& level) {
  call.setFlag(of(level).sessionReuse);
}
void verifyDepth(const DirectiveCall& call, ProxyPartial& level) {
  call.checkUnset(of(level).verifyDepth);
  of(level).verifyDepth = call.number(call.arg(0));
}

// ngx_conf_set_str_slot for a file named relative to the configuration's directory.
void confPath(const DirectiveCall& call, std::optional<std::string>& slot) {
  call.checkUnset(slot);
  slot = call.arg(0).empty() ? std::string() : call.confName(call.arg(0));
}
void trusted(const DirectiveCall& call, ProxyPartial& level) {
  confPath(call, of(level).trustedCertificate);
}
void crl(const DirectiveCall& call, ProxyPartial& level) { confPath(call, of(level).crl); }
void passwordFile(const DirectiveCall& call, ProxyPartial& level) {
  confPath(call, of(level).passwordFile);
}
// proxy_ssl_certificate(_key): a file named relative to the configuration's directory, or
// (nginx 1.21+) a value with variables, expanded and loaded per request: kept as written, with
// the directory it is relative to.
void certificate(const DirectiveCall& call, ProxyPartial& level) {
  bool key = call.name().ends_with("_key");
  std::optional<std::string>& slot = key ? of(level).certificateKey : of(level).certificate;
  if (call.arg(0).find('$') == std::string::npos) {
    confPath(call, slot);
    return;
  }
  call.checkUnset(slot);
  slot = call.arg(0);
  of(level).certificateDirectory = call.confName("");
}

// ngx_conf_set_keyval_slot: NAME VALUE pairs, applied with SSL_CONF_cmd in order.
void confCommand(const DirectiveCall& call, ProxyPartial& level) {
  ProxySslPartial& s = of(level);
  if (!s.confCommands) s.confCommands.emplace();
  s.confCommands->emplace_back(call.arg(0), call.arg(1));
  if (!s.confCommandPaths) s.confCommandPaths.emplace();
  s.confCommandPaths->push_back(call.confName(call.arg(1)));
}

}  // namespace

std::vector<ModuleDirective<ProxyPartial>> proxySslDirectives() {
  return {
      {"proxy_ssl_session_reuse", kHsl, Args::k1, &sessionReuse},
      {"proxy_ssl_protocols", kHsl, Args::k1More, &protocols},
      {"proxy_ssl_ciphers", kHsl, Args::k1, &ciphers},
      {"proxy_ssl_name", kHsl, Args::k1, &name},
      {"proxy_ssl_server_name", kHsl, Args::k1, &serverName},
      {"proxy_ssl_verify", kHsl, Args::k1, &verify},
      {"proxy_ssl_verify_depth", kHsl, Args::k1, &verifyDepth},
      {"proxy_ssl_trusted_certificate", kHsl, Args::k1, &trusted},
      {"proxy_ssl_crl", kHsl, Args::k1, &crl},
      {"proxy_ssl_certificate", kHsl, Args::k1, &certificate},
      {"proxy_ssl_certificate_key", kHsl, Args::k1, &certificate},
      {"proxy_ssl_password_file", kHsl, Args::k1, &passwordFile},
      {"proxy_ssl_conf_command", kHsl, Args::k2, &confCommand},
  };
}

void mergeProxySsl(ProxySslPartial& c, const ProxySslPartial& p) {
  inherit(c.protocols, p.protocols);
  inherit(c.ciphers, p.ciphers);
  inherit(c.name, p.name);
  inherit(c.trustedCertificate, p.trustedCertificate);
  inherit(c.crl, p.crl);
  inherit(c.certificate, p.certificate);
  inherit(c.certificateKey, p.certificateKey);
  inherit(c.certificateDirectory, p.certificateDirectory);
  inherit(c.passwordFile, p.passwordFile);
  inherit(c.serverName, p.serverName);
  inherit(c.verify, p.verify);
  inherit(c.sessionReuse, p.sessionReuse);
  inherit(c.verifyDepth, p.verifyDepth);
  inherit(c.confCommands, p.confCommands);
  inherit(c.confCommandPaths, p.confCommandPaths);
}

void finishProxySsl(const ProxySslPartial& l, ProxySslSettings& s) {
  if (l.protocols) s.protocols = *l.protocols;
  if (l.ciphers) s.ciphers = *l.ciphers;
  if (l.name) s.name = *l.name;
  if (l.trustedCertificate) s.trustedCertificate = *l.trustedCertificate;
  if (l.crl) s.crl = *l.crl;
  if (l.certificate) s.certificate = *l.certificate;
  if (l.certificateKey) s.certificateKey = *l.certificateKey;
  if (l.certificateDirectory) s.certificateDirectory = *l.certificateDirectory;
  if (l.passwordFile) s.passwordFile = *l.passwordFile;
  if (l.serverName) s.serverName = *l.serverName;
  if (l.verify) s.verify = *l.verify;
  if (l.sessionReuse) s.sessionReuse = *l.sessionReuse;
  if (l.verifyDepth) s.verifyDepth = static_cast<int>(*l.verifyDepth);
  if (l.confCommands) s.confCommands = *l.confCommands;
  if (l.confCommandPaths) s.confCommandPaths = *l.confCommandPaths;
}

void checkProxySsl(const ProxySettings& settings, const SourceRef& at, const std::string& prefix) {
  if (!settings.pass || !settings.pass->ssl) return;
  const ProxySslSettings& s = settings.ssl;
  auto fail = [&](const std::string& text) {
    throw ConfFailure{confMessage("emerg", text, at)};
  };
  if (!s.certificate.empty() && s.certificateKey.empty()) {
    fail("no \"" + prefix + "_ssl_certificate_key\" is defined for certificate \"" +
         s.certificate + "\"");
  }
  if (s.verify && s.trustedCertificate.empty()) {
    fail("no " + prefix + "_ssl_trusted_certificate for " + prefix + "_ssl_verify");
  }
}

}  // namespace portico::config
