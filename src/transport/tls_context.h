#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <vector>

namespace portico::transport {

class TlsSessionStore;

// A session ticket key (nginx's ngx_ssl_ticket_key_t): an ssl_session_ticket_key file's 48
// bytes (AES-128, HMAC-SHA256 with a 16-byte key) or 80 bytes (AES-256, 32-byte HMAC key), or
// random bytes the master makes (80).
struct TicketKey {
  unsigned char name[16] = {};
  unsigned char aesKey[32] = {};
  unsigned char hmacKey[32] = {};
  size_t size = 80;  // 48 or 80
};

// Reads an ssl_session_ticket_key file; false with nginx's message.
bool readTicketKeyFile(const std::string& path, TicketKey& key, std::string& error);
// 80 random bytes from OpenSSL's RNG (false when it fails).
bool randomTicketKey(TicketKey& key);
// Reads an ssl_password_file: one passphrase a line (CR LF or LF, empty lines skipped), tried
// in order; false with nginx's message.
bool readPasswordFile(const std::string& path, std::vector<std::string>& passwords,
                      std::string& error);

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const {
    // As nginx's ngx_ssl_shutdown: however the connection ended (no close_notify, a reset, a
    // timeout), its session stays resumable; OpenSSL would otherwise drop it from the cache.
    SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(ssl);
  }
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
  // Client certificates (nginx's ssl_verify_client and the files it verifies with). The
  // handshake accepts any certificate; the request is refused afterwards (495/496) by the
  // pipeline, which reads SSL_get_verify_result, as nginx does.
  std::string clientCertificate;   // CAs that verify and whose names are sent in the request
  enum class VerifyClient { kOff, kOn, kOptional, kOptionalNoCa } verifyClient = VerifyClient::kOff;
  int verifyDepth = 1;
  std::string trustedCertificate;  // CAs that verify, names not sent
  std::string crl;                 // PEM CRLs: every certificate of a chain is checked
  // OCSP stapling: a DER response served as is from staplingFile; without one, the
  // certificate's responder cannot be queried (no OCSP client), and nginx's warnings say why.
  bool stapling = false;
  std::string staplingFile;
  std::string staplingResponder;
  bool verifyInHandshake = false;  // fail the handshake (gunicorn) rather than the request (nginx)
  // SSL_OP_ENABLE_KTLS: after the handshake OpenSSL hands the keys to the kernel (where the
  // kernel and the cipher allow), and static files leave with SSL_sendfile. Set only where
  // kernelTlsSupport() found the kernel able, so no connection pays a failing setsockopt.
  bool kernelTls = false;
  // ssl_session_cache (config::TlsServerSettings::kSessionCache* or a builtin size) and its
  // shared part (null: none), ssl_session_timeout, ssl_session_tickets.
  int64_t builtinSessionCache = -3;
  TlsSessionStore* sharedCache = nullptr;
  int64_t sessionTimeout = 300;
  bool sessionTickets = true;
  // The ticket keys (the first encrypts, all decrypt); empty: OpenSSL's own per-context keys.
  std::vector<TicketKey> ticketKeys;
  std::string dhparam;                 // ssl_dhparam ("" none)
  std::vector<std::string> passwords;  // ssl_password_file's passphrases, tried in order
  std::vector<std::pair<std::string, std::string>> confCommands;  // ssl_conf_command
  // The values as paths (relative ones made the configuration directory's), used for the
  // commands whose value is a file or a directory (nginx's ngx_conf_full_name there).
  std::vector<std::string> confCommandPaths;
  size_t bufferSize = 16384;           // ssl_buffer_size: the largest record the transport writes
  bool allowNoCertificate = false;     // ssl_reject_handshake: a context that serves no one
  // ssl_early_data: TLS 1.3 0-RTT accepted (up to kMaxEarlyData bytes) on sessions this
  // context resumes; the transport reads it with SSL_read_early_data.
  bool earlyData = false;
  // What the session ID context is made of besides the certificates (nginx: "HTTP").
  std::string sessionIdContext = "HTTP";
};

// A server-side SSL_CTX made from TlsSettings. Owned by the worker (one per virtual server
// with TLS), shared by every TlsTransport made from it; event-loop thread only once serving.
class TlsContext {
 public:
  // Null with `error` set (nginx's wording: the file and OpenSSL's reason) when a certificate
  // or key cannot be read, does not match, or a setting is not understood.
  static std::unique_ptr<TlsContext> create(const TlsSettings& settings, std::string& error);

  SSL_CTX* get() const { return ctx_.get(); }
  size_t bufferSize() const { return bufferSize_; }
  // What nginx would warn about when loading (ssl_stapling ignored, and why), for the log.
  const std::vector<std::string>& warnings() const { return warnings_; }

  // The TlsContext an SSL_CTX was made for (null for another).
  static const TlsContext* of(const SSL_CTX* ctx);
  // Remembers the context a connection's handshake starts with: OpenSSL keeps its session
  // cache and ticket callbacks (its "session_ctx") when SNI switches the SSL_CTX, and so does
  // nginx; the callbacks read that context's cache and keys.
  static void setInitial(SSL* ssl, const TlsContext* context);
  static const TlsContext* initialOf(const SSL* ssl);

 private:
  explicit TlsContext(SslCtxPtr ctx) : ctx_(std::move(ctx)) {}
  // A certificate as loaded: its chain and its file (nginx names the file in its warnings).
  struct Leaf {
    X509* cert;
    STACK_OF(X509)* chain;
    std::string name;
  };
  bool setUpStapling(const TlsSettings& settings, const std::vector<Leaf>& leaves,
                     std::string& error);
  static int onStatusRequest(SSL* ssl, void* arg);
  static int newSession(SSL* ssl, SSL_SESSION* session);
  static SSL_SESSION* getSession(SSL* ssl, const unsigned char* id, int length, int* copy);
  static void removeSession(SSL_CTX* ctx, SSL_SESSION* session);
  static int ticketKey(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                       EVP_MAC_CTX* mac, int encrypt);
  bool setSessionIdContext(const std::string& base, std::string& error);
  bool applySessions(const TlsSettings& settings, std::string& error);

  SslCtxPtr ctx_;
  std::string staple_;  // the DER OCSP response sent to clients that ask (ssl_stapling_file)
  std::vector<std::string> warnings_;
  TlsSessionStore* sharedCache_ = nullptr;
  std::vector<TicketKey> ticketKeys_;
  size_t bufferSize_ = 16384;
};

// OpenSSL's queued errors as one line ("reason:reason"), emptying the queue.
std::string takeSslErrors();

// The context's loaders, with nginx's messages, for other contexts than TlsContext's (the
// upstream client context, transport/tls_client.h): a certificate chain file and its key
// (ssl_password_file's passphrases tried in order), the CAs that verify, the CRLs.
bool loadCertificateAndKey(SSL_CTX* ctx, const std::string& certificate, const std::string& key,
                           const std::vector<std::string>& passwords, std::string& error);
// The same for one connection (proxy_ssl_certificate with variables, loaded per request as
// nginx's ngx_ssl_connection_certificate).
bool useCertificateAndKey(SSL* ssl, const std::string& certificate, const std::string& key,
                          const std::vector<std::string>& passwords, std::string& error);
bool loadTrustedCertificates(SSL_CTX* ctx, const std::string& path, std::string& error);
bool loadCrlFile(SSL_CTX* ctx, const std::string& path, std::string& error);

}  // namespace portico::transport
