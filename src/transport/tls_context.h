#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

namespace portico::transport {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

// What one TLS server context is made of (a virtual server's ssl_* directives, or gunicorn's
// --certfile/--keyfile/...): paths are read when the context is made, before privileges drop.
struct TlsSettings {
  // Certificate chains (PEM, leaf first) and their keys, pairwise: an ECDSA and an RSA pair may
  // both be given; OpenSSL picks the one the client's signature algorithms allow.
  std::vector<std::pair<std::string, std::string>> certificates;
  std::string protocols = "TLSv1.2 TLSv1.3";  // nginx's ssl_protocols default
  std::string ciphers = "HIGH:!aNULL:!MD5:!kRSA";  // ssl_ciphers default (TLS 1.2 and below)
  bool preferServerCiphers = false;
  std::string ecdhCurve = "auto";
  // Client certificates: the CA file (verifies them; its names are the acceptable-CA list),
  // whether one is asked for, and how deep a chain may be (config::TlsServerSettings).
  std::string clientCertificate;
  enum class VerifyClient { kOff, kOn, kOptional, kOptionalNoCa } verifyClient = VerifyClient::kOff;
  int verifyDepth = 1;
  bool verifyInHandshake = false;  // fail the handshake (gunicorn) rather than the request (nginx)
  // SSL_OP_ENABLE_KTLS: after the handshake OpenSSL hands the keys to the kernel (where the
  // kernel and the cipher allow), and static files leave with SSL_sendfile. Set only where
  // kernelTlsSupport() found the kernel able, so no connection pays a failing setsockopt.
  bool kernelTls = false;
};

// A server-side SSL_CTX made from TlsSettings. Owned by the worker (one per virtual server
// with TLS), shared by every TlsTransport made from it; event-loop thread only once serving.
class TlsContext {
 public:
  // Null with `error` set (nginx's wording: the file and OpenSSL's reason) when a certificate
  // or key cannot be read, does not match, or a setting is not understood.
  static std::unique_ptr<TlsContext> create(const TlsSettings& settings, std::string& error);

  SSL_CTX* get() const { return ctx_.get(); }

 private:
  explicit TlsContext(SslCtxPtr ctx) : ctx_(std::move(ctx)) {}
  SslCtxPtr ctx_;
};

// OpenSSL's queued errors as one line ("reason:reason"), emptying the queue.
std::string takeSslErrors();

}  // namespace portico::transport
