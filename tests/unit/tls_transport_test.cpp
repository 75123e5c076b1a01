// TlsTransport and TlsContext over a socketpair, with an OpenSSL client in the test: the
// handshake through crossed waits, bytes both ways (a 1 MiB response through small socket
// buffers, every byte compared), garbage and a plain HTTP request refused, and the context's
// refusals (a key that does not match, a missing file, an unknown protocol).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "transport/tls_context.h"
#include "transport/tls_transport.h"
#include "transport/tls_variables.h"

namespace portico::transport {
namespace {

namespace fs = std::filesystem;

// Makes a self-signed P-256 certificate and key (and a second, unrelated key) once.
class TlsFiles {
 public:
  static const TlsFiles& get() {
    static TlsFiles files;
    return files;
  }
  fs::path dir;
  std::string cert, key, otherKey;

 private:
  TlsFiles() {
    dir = fs::temp_directory_path() / ("portico-tls-test-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    cert = (dir / "cert.pem").string();
    key = (dir / "key.pem").string();
    otherKey = (dir / "other.pem").string();
    std::string command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
                          " -subj /CN=localhost -days 2 -keyout " + key + " -out " + cert +
                          " 2>/dev/null && openssl genpkey -algorithm EC -pkeyopt"
                          " ec_paramgen_curve:P-256 -out " + otherKey + " 2>/dev/null";
    EXPECT_EQ(std::system(command.c_str()), 0);
  }
};

// The server ignores SIGPIPE (process/server.cpp); OpenSSL writes with write(2), so a test
// whose peer is gone must too.
const bool kSigPipeIgnored = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();

void setNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

struct Pair {
  std::unique_ptr<TlsContext> context;
  std::unique_ptr<TlsTransport> server;
  SslCtxPtr clientCtx;
  SslPtr client;
  int clientFd = -1;

  explicit Pair(int sndbuf = 0) {
    std::string error;
    TlsSettings settings;
    settings.certificates = {{TlsFiles::get().cert, TlsFiles::get().key}};
    context = TlsContext::create(settings, error);
    EXPECT_TRUE(context) << error;
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    if (sndbuf) {
      ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
      ::setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof sndbuf);
    }
    setNonBlocking(fds[0]);
    setNonBlocking(fds[1]);
    server = std::make_unique<TlsTransport>(UniqueFd(fds[0]), false, *context);
    server->start();
    clientFd = fds[1];
    clientCtx.reset(SSL_CTX_new(TLS_client_method()));
    client.reset(SSL_new(clientCtx.get()));
    SSL_set_fd(client.get(), clientFd);
    SSL_set_connect_state(client.get());
    SSL_set_tlsext_host_name(client.get(), "localhost");
  }
  ~Pair() {
    client.reset();
    if (clientFd >= 0) ::close(clientFd);
  }

  // Runs the client's handshake and the server's first read until both are done; the server's
  // read sees only crossed waits meanwhile.
  bool handshake() {
    for (int turn = 0; turn < 100; ++turn) {
      int rc = SSL_do_handshake(client.get());
      char byte;
      IoResult r = server->read(&byte, 1);
      EXPECT_TRUE(r.status == IoStatus::kWantRead || r.status == IoStatus::kWantWrite)
          << static_cast<int>(r.status);
      if (rc == 1 && server->handshakeDone()) return true;
    }
    return false;
  }
};

TEST(TlsTransportTest, HandshakeThenBytesBothWays) {
  Pair p;
  ASSERT_TRUE(p.handshake());
  std::string request = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  size_t n = 0;
  ASSERT_EQ(SSL_write_ex(p.client.get(), request.data(), request.size(), &n), 1);
  char buffer[256];
  IoResult r = p.server->read(buffer, sizeof buffer);
  ASSERT_EQ(r.status, IoStatus::kDone);
  EXPECT_EQ(std::string(buffer, r.bytes), request);
  // Small gathered buffers leave as one write.
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", body = "hello";
  iovec iov[2] = {{head.data(), head.size()}, {body.data(), body.size()}};
  r = p.server->writev(iov, 2, false);
  ASSERT_EQ(r.status, IoStatus::kDone);
  EXPECT_EQ(r.bytes, head.size() + body.size());
  ASSERT_EQ(SSL_read_ex(p.client.get(), buffer, sizeof buffer, &n), 1);
  EXPECT_EQ(std::string(buffer, n), head + body);
  EXPECT_EQ(p.server->pendingRead(), 0u);
  EXPECT_FALSE(p.server->canSendFile());
  EXPECT_FALSE(p.server->canHandOff());
}

TEST(TlsTransportTest, ALargeResponseThroughSmallBuffersArrivesWhole) {
  Pair p(16 * 1024);
  ASSERT_TRUE(p.handshake());
  std::string payload(1024 * 1024, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>((i * 131) >> 3);
  std::string head = "HTTP/1.1 200 OK\r\n\r\n";
  std::string all = head + payload;
  // The session's way: a queue of two buffers, advanced by what each write took, retried with
  // the same head bytes after a wait; the client reads in between.
  size_t sent = 0, waits = 0;
  std::string received;
  char buffer[65536];
  while (received.size() < all.size()) {
    // Writes until the socket is full (a wait), then the client reads what is there.
    while (sent < all.size()) {
      iovec iov[2];
      int count = 0;
      if (sent < head.size()) iov[count++] = {head.data() + sent, head.size() - sent};
      size_t bodyFrom = sent > head.size() ? sent - head.size() : 0;
      iov[count++] = {payload.data() + bodyFrom, payload.size() - bodyFrom};
      IoResult r = p.server->writev(iov, count, false);
      if (r.status != IoStatus::kDone) {
        ASSERT_TRUE(r.status == IoStatus::kWantWrite || r.status == IoStatus::kWantRead)
            << static_cast<int>(r.status);
        ++waits;
        break;
      }
      sent += r.bytes;
    }
    size_t n = 0;
    while (SSL_read_ex(p.client.get(), buffer, sizeof buffer, &n) == 1) received.append(buffer, n);
    ERR_clear_error();
  }
  EXPECT_EQ(received.size(), all.size());
  EXPECT_TRUE(received == all) << "the bytes differ";
  EXPECT_GT(waits, 0u) << "the socket buffers never filled: the retry path was not exercised";
}

// The session takes a short read for a drained socket (edge-triggered epoll says nothing more
// about records already queued): a read returns every record that is there, not one, and a
// short read means the socket is empty.
TEST(TlsTransportTest, AReadTakesEveryQueuedRecordUpToItsSize) {
  Pair p;
  ASSERT_TRUE(p.handshake());
  std::string sent;
  for (int i = 0; i < 5; ++i) {
    std::string record(10000, static_cast<char>('a' + i));  // one SSL_write, one record
    size_t n = 0;
    ASSERT_EQ(SSL_write_ex(p.client.get(), record.data(), record.size(), &n), 1);
    sent += record;
  }
  std::string buffer(65536, '\0');
  IoResult r = p.server->read(buffer.data(), 32000);  // not a record boundary
  ASSERT_EQ(r.status, IoStatus::kDone);
  EXPECT_EQ(r.bytes, 32000u);
  std::string received = buffer.substr(0, r.bytes);
  r = p.server->read(buffer.data(), buffer.size());
  ASSERT_EQ(r.status, IoStatus::kDone);
  EXPECT_EQ(r.bytes, sent.size() - 32000);  // the rest, from OpenSSL's buffer and the socket
  received += buffer.substr(0, r.bytes);
  EXPECT_TRUE(received == sent);
  r = p.server->read(buffer.data(), buffer.size());
  EXPECT_EQ(r.status, IoStatus::kWantRead);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(TlsTransportTest, CloseNotifyIsEndOfFile) {
  Pair p;
  ASSERT_TRUE(p.handshake());
  SSL_shutdown(p.client.get());
  char buffer[16];
  IoResult r = p.server->read(buffer, sizeof buffer);
  EXPECT_EQ(r.status, IoStatus::kEof);
  p.server->shutdownWrite();  // its close_notify, then the half-close
  size_t n = 0;
  EXPECT_EQ(SSL_read_ex(p.client.get(), buffer, sizeof buffer, &n), 0);
  EXPECT_EQ(SSL_get_error(p.client.get(), 0), SSL_ERROR_ZERO_RETURN);
}

TEST(TlsTransportTest, APlainHttpRequestIsCarriedAsItIsForA497) {
  Pair p;
  std::string plain = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  ASSERT_EQ(::write(p.clientFd, plain.data(), plain.size()), static_cast<ssize_t>(plain.size()));
  char buffer[64];
  IoResult r = p.server->read(buffer, sizeof buffer);
  ASSERT_TRUE(r.done());
  EXPECT_EQ(std::string(buffer, r.bytes), plain);
  EXPECT_TRUE(p.server->plainOnTls());
  EXPECT_EQ(ERR_peek_error(), 0u) << "the error queue must be left empty";
}

TEST(TlsTransportTest, APeerGoneMidHandshakeIsEndOfFileOrError) {
  Pair p;
  SSL_do_handshake(p.client.get());  // the ClientHello only
  ::shutdown(p.clientFd, SHUT_RDWR);
  char buffer[16];
  IoResult r;
  for (int i = 0; i < 4; ++i) {
    r = p.server->read(buffer, sizeof buffer);
    if (r.status == IoStatus::kEof || r.status == IoStatus::kError) break;
  }
  EXPECT_TRUE(r.status == IoStatus::kEof || r.status == IoStatus::kError)
      << static_cast<int>(r.status);
}

TEST(TlsContextTest, Refusals) {
  std::string error;
  TlsSettings mismatch;
  mismatch.certificates = {{TlsFiles::get().cert, TlsFiles::get().otherKey}};
  EXPECT_FALSE(TlsContext::create(mismatch, error));
  EXPECT_NE(error.find("key values mismatch"), std::string::npos) << error;

  TlsSettings missing;
  missing.certificates = {{"/nonexistent/cert.pem", TlsFiles::get().key}};
  EXPECT_FALSE(TlsContext::create(missing, error));
  EXPECT_EQ(error.rfind("cannot load certificate \"/nonexistent/cert.pem\": BIO_new_file() failed"
                        " (SSL: ", 0), 0u) << error;

  // nginx's messages: the function that failed, OpenSSL's reasons in parentheses.
  TlsContext::create(mismatch, error);
  EXPECT_EQ(error.rfind("SSL_CTX_use_PrivateKey(\"" + TlsFiles::get().otherKey + "\") failed (SSL: ",
                        0), 0u) << error;
  TlsSettings garbage;
  garbage.certificates = {{TlsFiles::get().key, TlsFiles::get().key}};  // a key is no certificate
  EXPECT_FALSE(TlsContext::create(garbage, error));
  EXPECT_EQ(error.rfind("cannot load certificate \"" + TlsFiles::get().key +
                        "\": PEM_read_bio_X509_AUX() failed (SSL: ", 0), 0u) << error;
  TlsSettings notAKey;
  notAKey.certificates = {{TlsFiles::get().cert, TlsFiles::get().cert}};
  EXPECT_FALSE(TlsContext::create(notAKey, error));
  EXPECT_EQ(error.rfind("cannot load certificate key \"" + TlsFiles::get().cert +
                        "\": PEM_read_bio_PrivateKey() failed (SSL: ", 0), 0u) << error;
  EXPECT_EQ(ERR_peek_error(), 0u);

  TlsSettings protocols;
  protocols.certificates = {{TlsFiles::get().cert, TlsFiles::get().key}};
  protocols.protocols = "TLSv1.2 SSLv9";
  EXPECT_FALSE(TlsContext::create(protocols, error));
  EXPECT_NE(error.find("SSLv9"), std::string::npos) << error;

  TlsSettings none;
  EXPECT_FALSE(TlsContext::create(none, error));
  EXPECT_EQ(ERR_peek_error(), 0u);
}
TEST(TlsVariablesTest, NginxsSslVariablesComeFromTheSession) {
  Pair p;
  EXPECT_EQ(tlsVariable(nullptr, "protocol"), "") << "plain connections: empty";
  ASSERT_TRUE(p.handshake());
  const ssl_st* ssl = p.server->tlsSession();
  ASSERT_NE(ssl, nullptr);
  EXPECT_EQ(tlsVariable(ssl, "protocol"), SSL_get_version(p.client.get()));
  EXPECT_EQ(tlsVariable(ssl, "cipher"), SSL_get_cipher_name(p.client.get()));
  EXPECT_EQ(tlsVariable(ssl, "server_name"), "localhost");
  EXPECT_EQ(tlsVariable(ssl, "session_reused"), ".");
  EXPECT_TRUE(isTlsVariable("cipher"));
  EXPECT_FALSE(isTlsVariable("no_such_thing"));
}

// ALPN as nginx 1.22 without HTTP/2: http/1.1 is chosen over h2; a client that offers only
// protocols portico does not speak gets a fatal alert, and one that offers none gets none.
std::string negotiate(const std::string& offer, bool& handshakeOk) {
  Pair p;
  if (!offer.empty()) {
    SSL_set_alpn_protos(p.client.get(), reinterpret_cast<const unsigned char*>(offer.data()),
                        static_cast<unsigned>(offer.size()));
  }
  handshakeOk = false;
  for (int turn = 0; turn < 100 && !handshakeOk; ++turn) {
    int rc = SSL_do_handshake(p.client.get());
    char byte;
    IoResult r = p.server->read(&byte, 1);
    if (r.status == IoStatus::kError) {
      SSL_do_handshake(p.client.get());  // reads the alert
      break;
    }
    handshakeOk = rc == 1 && p.server->handshakeDone();
  }
  const unsigned char* chosen = nullptr;
  unsigned length = 0;
  SSL_get0_alpn_selected(p.client.get(), &chosen, &length);
  ERR_clear_error();
  return chosen ? std::string(reinterpret_cast<const char*>(chosen), length) : std::string();
}

TEST(TlsContextTest, AlpnSelectsHttp11AndNeverH2) {
  bool ok = false;
  EXPECT_EQ(negotiate(std::string("\x02h2\x08http/1.1", 12), ok), "http/1.1");
  EXPECT_TRUE(ok);
  EXPECT_EQ(negotiate(std::string("\x08http/1.0", 9), ok), "http/1.0");
  EXPECT_TRUE(ok);
  EXPECT_EQ(negotiate("", ok), "");
  EXPECT_TRUE(ok);
  EXPECT_EQ(negotiate(std::string("\x02h2\x08spdy/3.1", 12), ok), "");
  EXPECT_FALSE(ok);
}

// ssl_early_data: a client resuming a session sends its request as 0-RTT; the transport's
// first read hands it over before the handshake ends ($ssl_early_data "1"), the response goes
// as 0.5-RTT data, and the next read finishes the handshake ("" from then on).
class EarlyDataConnection {
 public:
  EarlyDataConnection(const TlsContext& context, SSL_CTX* clientCtx) {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    setNonBlocking(fds[0]);
    setNonBlocking(fds[1]);
    server = std::make_unique<TlsTransport>(UniqueFd(fds[0]), false, context);
    server->start();
    clientFd = fds[1];
    client.reset(SSL_new(clientCtx));
    SSL_set_fd(client.get(), clientFd);
    SSL_set_connect_state(client.get());
  }
  ~EarlyDataConnection() {
    client.reset();
    ::close(clientFd);
  }
  std::unique_ptr<TlsTransport> server;
  SslPtr client;
  int clientFd = -1;
};

TEST(TlsTransportTest, EarlyDataIsReadBeforeTheHandshakeEnds) {
  std::string error;
  TlsSettings settings;
  settings.certificates = {{TlsFiles::get().cert, TlsFiles::get().key}};
  settings.earlyData = true;
  std::unique_ptr<TlsContext> context = TlsContext::create(settings, error);
  ASSERT_TRUE(context) << error;
  EXPECT_EQ(SSL_CTX_get_max_early_data(context->get()), 16384u);
  SslCtxPtr clientCtx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_min_proto_version(clientCtx.get(), TLS1_3_VERSION);

  // A full handshake, and the ticket that comes after it.
  SSL_SESSION* session = nullptr;
  {
    EarlyDataConnection c(*context, clientCtx.get());
    bool done = false;
    for (int turn = 0; turn < 100 && !done; ++turn) {
      int rc = SSL_do_handshake(c.client.get());
      char byte;
      IoResult r = c.server->read(&byte, 1);
      ASSERT_TRUE(r.status == IoStatus::kWantRead || r.status == IoStatus::kWantWrite)
          << static_cast<int>(r.status);
      done = rc == 1 && c.server->handshakeDone();
    }
    ASSERT_TRUE(done);
    EXPECT_EQ(tlsVariable(c.server->ssl(), "early_data"), "");
    std::string x = "x";
    iovec iov = {x.data(), x.size()};
    ASSERT_EQ(c.server->writev(&iov, 1, false).status, IoStatus::kDone);
    char buffer[8];
    size_t n = 0;
    ASSERT_EQ(SSL_read_ex(c.client.get(), buffer, sizeof buffer, &n), 1);  // the ticket, then x
    session = SSL_get1_session(c.client.get());
    ASSERT_NE(session, nullptr);
    EXPECT_EQ(SSL_SESSION_get_max_early_data(session), 16384u);
  }

  EarlyDataConnection c(*context, clientCtx.get());
  SSL_set_session(c.client.get(), session);
  SSL_SESSION_free(session);
  std::string request = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  size_t n = 0;
  ASSERT_EQ(SSL_write_early_data(c.client.get(), request.data(), request.size(), &n), 1);
  EXPECT_EQ(n, request.size());
  char buffer[256];
  IoResult r = c.server->read(buffer, sizeof buffer);
  ASSERT_EQ(r.status, IoStatus::kDone);
  EXPECT_EQ(std::string(buffer, r.bytes), request);
  EXPECT_FALSE(c.server->handshakeDone());
  EXPECT_EQ(tlsVariable(c.server->ssl(), "early_data"), "1");
  EXPECT_EQ(tlsVariable(c.server->ssl(), "session_reused"), "r");
  std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  iovec iov = {response.data(), response.size()};
  r = c.server->writev(&iov, 1, false);  // 0.5-RTT: SSL_write would be refused here
  ASSERT_EQ(r.status, IoStatus::kDone);
  EXPECT_EQ(r.bytes, response.size());
  ASSERT_EQ(SSL_do_handshake(c.client.get()), 1);  // EndOfEarlyData and Finished go
  EXPECT_EQ(SSL_get_early_data_status(c.client.get()), SSL_EARLY_DATA_ACCEPTED);
  ASSERT_EQ(SSL_read_ex(c.client.get(), buffer, sizeof buffer, &n), 1);
  EXPECT_EQ(std::string(buffer, n), response);
  // The next read finds the early data's end and finishes the handshake.
  r = c.server->read(buffer, sizeof buffer);
  EXPECT_EQ(r.status, IoStatus::kWantRead);
  EXPECT_TRUE(c.server->handshakeDone());
  EXPECT_EQ(tlsVariable(c.server->ssl(), "early_data"), "");
  // And the connection goes on as any.
  ASSERT_EQ(SSL_write_ex(c.client.get(), request.data(), request.size(), &n), 1);
  r = c.server->read(buffer, sizeof buffer);
  ASSERT_EQ(r.status, IoStatus::kDone);
  EXPECT_EQ(std::string(buffer, r.bytes), request);
  r = c.server->writev(&iov, 1, false);
  ASSERT_EQ(r.status, IoStatus::kDone);
  ASSERT_EQ(SSL_read_ex(c.client.get(), buffer, sizeof buffer, &n), 1);
  EXPECT_EQ(std::string(buffer, n), response);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

}  // namespace
}  // namespace portico::transport
