#pragma once

// nginx's $ssl_* variables (ngx_http_ssl_module's ngx_ssl_get_*), read from one TLS
// connection's SSL object. The http layer's variable templates resolve every `$ssl_NAME`
// through here, so a new variable touches this file only. Pure reads; any thread.

#include <string>
#include <string_view>

struct ssl_st;

namespace portico::transport {

// Whether NAME (without "ssl_") is a variable portico knows; an unknown one is a load error.
bool isTlsVariable(std::string_view name);

// The value of $ssl_NAME on `ssl`; empty on a plain connection (nullptr), as nginx's.
std::string tlsVariable(const ssl_st* ssl, std::string_view name);

// nginx's check of the client's certificate once the request head is read (ngx_http_process_
// request, with ssl_verify_client not off): 0 lets the request go on; 495 (verification failed)
// or 496 (`required` and none was sent) refuse it, with nginx's info line in `log`.
// `optionalNoCa` lets an unknown issuer or a self-signed certificate through.
int clientCertificateStatus(const ssl_st* ssl, bool required, bool optionalNoCa, std::string& log);

}  // namespace portico::transport
