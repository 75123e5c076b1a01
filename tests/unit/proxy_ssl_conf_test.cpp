// proxy_pass https:// and the proxy_ssl_* / uwsgi_ssl_* directives (config/proxy_ssl_conf.h):
// nginx 1.22's defaults, inheritance, $proxy_host/$proxy_port for https, and its messages.

#include <gtest/gtest.h>

#include <string>

#include "config/conf_builder.h"
#include "config/conf_loader.h"

namespace portico::config {
namespace {

const std::string kConf = "/etc/p/site.conf";

ConfLoadResult load(const std::string& text) {
  ConfLoader loader;
  loader.addMemoryFile(kConf, text);
  ConfLoadOptions options{kConf, "/srv/prefix/", "", ""};
  return loadConf(options, loader);
}

std::string site(const std::string& server, const std::string& http = "") {
  return "events {}\nhttp {\n" + http + "\nserver {\n" + server + "\n}\n}\n";
}

const Location& first(const ConfLoadResult& r) { return r.config.site.servers.at(0).locations.at(0); }

TEST(ProxySslConf, HttpsPassDefaults) {
  ConfLoadResult r = load(site("location / { proxy_pass https://127.0.0.1; }"));
  ASSERT_TRUE(r.ok) << r.messages.back();
  const ProxySettings& p = first(r).settings.proxy;
  ASSERT_TRUE(p.pass);
  EXPECT_TRUE(p.pass->ssl);
  EXPECT_EQ(p.pass->proxyHost, "127.0.0.1");
  EXPECT_EQ(p.pass->proxyPort, "443");
  EXPECT_EQ(p.ssl.protocols, "TLSv1 TLSv1.1 TLSv1.2 TLSv1.3");
  EXPECT_EQ(p.ssl.ciphers, "DEFAULT");
  EXPECT_FALSE(p.ssl.serverName);
  EXPECT_FALSE(p.ssl.verify);
  EXPECT_EQ(p.ssl.verifyDepth, 1);
  EXPECT_TRUE(p.ssl.sessionReuse);
}

TEST(ProxySslConf, PortAndInheritance) {
  ConfLoadResult r = load(site(
      "proxy_ssl_server_name on; proxy_ssl_name $host;\n"
      "location / { proxy_pass https://127.0.0.1:8443; proxy_ssl_protocols TLSv1.2;"
      " proxy_ssl_trusted_certificate ca.pem; proxy_ssl_verify on; proxy_ssl_verify_depth 3; }",
      "proxy_ssl_session_reuse off;"));
  ASSERT_TRUE(r.ok) << r.messages.back();
  const ProxySettings& p = first(r).settings.proxy;
  EXPECT_EQ(p.pass->proxyHost, "127.0.0.1:8443");
  EXPECT_EQ(p.pass->proxyPort, "8443");
  EXPECT_TRUE(p.ssl.serverName);
  EXPECT_EQ(p.ssl.name, "$host");
  EXPECT_EQ(p.ssl.protocols, "TLSv1.2");
  EXPECT_EQ(p.ssl.trustedCertificate, "/etc/p/ca.pem");  // relative to the conf's directory
  EXPECT_TRUE(p.ssl.verify);
  EXPECT_EQ(p.ssl.verifyDepth, 3);
  EXPECT_FALSE(p.ssl.sessionReuse);
}

TEST(ProxySslConf, SuwsgiPass) {
  ConfLoadResult r = load(site(
      "location / { uwsgi_pass suwsgi://127.0.0.1:3031; uwsgi_ssl_server_name on; }"));
  ASSERT_TRUE(r.ok) << r.messages.back();
  const ProxySettings& u = first(r).settings.uwsgi;
  ASSERT_TRUE(u.pass);
  EXPECT_TRUE(u.pass->ssl);
  EXPECT_TRUE(u.ssl.serverName);
}

TEST(ProxySslConf, NginxMessages) {
  auto error = [](const std::string& text) {
    ConfLoadResult r = load(text);
    return r.ok ? std::string("(accepted)") : r.messages.back();
  };
  EXPECT_EQ(error(site("location / { proxy_pass https://a:1; proxy_ssl_protocols SSLv4; }")),
            "[emerg] invalid value \"SSLv4\" in /etc/p/site.conf:5");
  EXPECT_EQ(error(site("location / { proxy_pass https://a:1; proxy_ssl_verify_depth x; }")),
            "[emerg] \"proxy_ssl_verify_depth\" directive invalid number in /etc/p/site.conf:5");
  EXPECT_EQ(error(site("location / { proxy_pass https://127.0.0.1:1; proxy_ssl_verify on; }")),
            "[emerg] no proxy_ssl_trusted_certificate for proxy_ssl_verify in "
            "/etc/p/site.conf:7");
  EXPECT_EQ(error(site("location / { proxy_pass https://127.0.0.1:1; "
                       "proxy_ssl_certificate c.pem; }")),
            "[emerg] no \"proxy_ssl_certificate_key\" is defined for certificate "
            "\"/etc/p/c.pem\" in /etc/p/site.conf:7");
  EXPECT_EQ(error(site("location / { uwsgi_pass suwsgi://127.0.0.1:1; uwsgi_ssl_verify on; }")),
            "[emerg] no uwsgi_ssl_trusted_certificate for uwsgi_ssl_verify in "
            "/etc/p/site.conf:7");
  EXPECT_EQ(error(site("location / { proxy_pass https://a:1; proxy_ssl_verify maybe; }")),
            "[emerg] invalid value \"maybe\" in \"proxy_ssl_verify\" directive, it must be "
            "\"on\" or \"off\" in /etc/p/site.conf:5");
}

}  // namespace
}  // namespace portico::config
