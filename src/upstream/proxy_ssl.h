#pragma once

// A location's TLS to its upstream (proxy_pass https://, nginx's ngx_http_upstream_ssl_*): the
// client context made from its proxy_ssl_* settings, the name it checks and sends as SNI
// (proxy_ssl_name, proxy_ssl_server_name), and the checks after a handshake
// (proxy_ssl_verify). The engine (proxy_content.cpp) drives the handshake itself.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/site.h"
#include "http/variables.h"
#include "transport/tls_client.h"

namespace portico::http {
class Exchange;
}

namespace portico::upstream {

// What a location needs to speak TLS to its upstream. Owned by its ProxyHandler; loop thread.
struct UpstreamTls {
  std::shared_ptr<transport::TlsClientContext> context;
  std::optional<http::Template> name;  // proxy_ssl_name (nullopt: the host of proxy_pass)
  std::string defaultName;             // the host of proxy_pass (an upstream block's name)
  bool serverName = false;
  bool verify = false;
  // proxy_ssl_certificate(_key) with variables: loaded per request (useRequestCertificate).
  std::optional<http::Template> certificate, certificateKey;
  std::string certificateDirectory;
  std::vector<std::string> passwords;  // proxy_ssl_password_file's
};

// Null with `error` (nginx's message) when a file cannot be read or a value is refused.
std::unique_ptr<UpstreamTls> makeUpstreamTls(const config::ProxySettings& settings,
                                             const std::vector<std::string>& captures,
                                             const http::VariableRegistry* users,
                                             std::string& error);

// ngx_http_upstream_ssl_certificate: the client certificate this request names, set on the
// connection's `ssl` before its handshake (an empty name: none). False with `error` (nginx's
// "cannot load certificate ..." words) when it cannot be loaded: nginx answers 500.
bool useRequestCertificate(const UpstreamTls& tls, SSL* ssl, const http::Exchange* exchange,
                           std::string& error);

// ngx_http_upstream_ssl_name: the name for this request, any ":port" stripped; without
// proxy_ssl_name the host of proxy_pass, or `target` (the host and port a pass with
// variables made) when given.
std::string upstreamSslName(const UpstreamTls& tls, const http::Exchange* exchange,
                            const std::string* target = nullptr);
// The SNI to send for `name`: "" when proxy_ssl_server_name is off or the name is an IP
// literal (RFC 6066).
std::string upstreamSni(const UpstreamTls& tls, const std::string& name);
// After the handshake, with proxy_ssl_verify on: "" when the certificate verified and matches
// `name`, else nginx's message ("upstream SSL certificate verify error: (N:...)", "upstream SSL
// certificate does not match \"name\"").
std::string verifyUpstream(const UpstreamTls& tls, SSL* ssl, const std::string& name);

// nginx's words for a failed read or write on an upstream connection: "recv() failed (N: ...)"
// on a plain one, "SSL_read() failed (SSL: ...)" (or SSL_write) on a TLS one.
std::string ioFailureText(const transport::Transport& conn, const char* plainCall,
                          const char* sslCall, int error);

}  // namespace portico::upstream
