// Kernel TLS: the probe agrees with what a connected TCP socket is told, the start-up notice
// says which way static files go, and a TlsTransport over a real TCP connection offers
// sendfile only when the kernel took the keys — otherwise sendFile refuses and the session's
// pread path (canSendFile false) is the one used. Where the kernel has kTLS, SSL_sendfile's
// bytes are decrypted by the client and compared.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "loopback_socket.h"
#include "transport/kernel_tls.h"
#include "transport/tls_context.h"
#include "transport/tls_transport.h"

#ifndef TCP_ULP
#define TCP_ULP 31
#endif

namespace portico::transport {
namespace {

namespace fs = std::filesystem;

const bool kSigPipeIgnored = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();

struct Files {
  fs::path dir;
  std::string cert, key;
  Files() {
    dir = fs::temp_directory_path() / ("portico-ktls-test-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    cert = (dir / "cert.pem").string();
    key = (dir / "key.pem").string();
    std::string command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
                          " -subj /CN=localhost -days 2 -keyout " + key + " -out " + cert +
                          " 2>/dev/null";
    EXPECT_EQ(std::system(command.c_str()), 0);
  }
  ~Files() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

const Files& files() {
  static Files f;
  return f;
}

void setNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// A connected loopback TCP pair: `accepted` (the server's side) and `connected`.
bool tcpPair(UniqueFd& accepted, UniqueFd& connected) {
  testing::LoopbackSocket listener = testing::bindLoopback(SOCK_STREAM);
  if (!listener.fd || ::listen(listener.fd.get(), 1) != 0) return false;
  sockaddr_in addr = listener.address();
  connected.reset(::socket(AF_INET, SOCK_STREAM, 0));
  if (::connect(connected.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return false;
  accepted.reset(::accept(listener.fd.get(), nullptr, nullptr));
  return static_cast<bool>(accepted);
}

TEST(KernelTlsTest, TheProbeAgreesWithAConnectedSocket) {
  KernelTlsSupport probe = probeKernelTls();
  EXPECT_FALSE(probe.reason.empty());
  EXPECT_EQ(kernelTlsSupport().available, probe.available);  // the kept result is the same
  UniqueFd accepted, connected;
  ASSERT_TRUE(tcpPair(accepted, connected));
  static const char kUlp[] = "tls";
  int rc = ::setsockopt(connected.get(), IPPROTO_TCP, TCP_ULP, kUlp, sizeof kUlp - 1);
  int err = rc == 0 ? 0 : errno;
  // An established socket takes the ULP where the kernel has it, and is told ENOENT where not.
  EXPECT_EQ(rc == 0, probe.available) << std::strerror(err) << " / " << probe.reason;
  if (!probe.available) {
    EXPECT_EQ(err, ENOENT);
    EXPECT_NE(probe.reason.find("TCP_ULP \"tls\": "), std::string::npos) << probe.reason;
  }
}

TEST(KernelTlsTest, TheNoticeSaysWhichWayStaticFilesGo) {
  KernelTlsSupport none;
  none.reason = "TCP_ULP \"tls\": No such file or directory";
  EXPECT_EQ(kernelTlsNotice(none),
            "TLS: kernel TLS not available (TCP_ULP \"tls\": No such file or directory), static "
            "files are read and encrypted in user space");
  KernelTlsSupport some;
  some.available = true;
  some.reason = "TCP_ULP \"tls\" is available";
  EXPECT_NE(kernelTlsNotice(some).find("SSL_sendfile"), std::string::npos);
}

// A server TlsTransport over TCP with an OpenSSL client, the handshake done.
struct TcpTls {
  std::unique_ptr<TlsContext> context;
  std::unique_ptr<TlsTransport> server;
  UniqueFd clientFd;
  SslCtxPtr clientCtx;
  SslPtr client;

  explicit TcpTls(bool kernelTls) {
    TlsSettings settings;
    settings.certificates = {{files().cert, files().key}};
    settings.kernelTls = kernelTls;
    std::string error;
    context = TlsContext::create(settings, error);
    EXPECT_TRUE(context) << error;
    UniqueFd accepted;
    EXPECT_TRUE(tcpPair(accepted, clientFd));
    setNonBlocking(accepted.get());
    setNonBlocking(clientFd.get());
    server = std::make_unique<TlsTransport>(std::move(accepted), true, *context);
    server->start();
    clientCtx.reset(SSL_CTX_new(TLS_client_method()));
    client.reset(SSL_new(clientCtx.get()));
    SSL_set_fd(client.get(), clientFd.get());
    SSL_set_connect_state(client.get());
  }

  bool handshake() {
    for (int turn = 0; turn < 2000; ++turn) {
      int rc = SSL_do_handshake(client.get());
      char byte;
      IoResult r = server->read(&byte, 1);
      if (r.status != IoStatus::kWantRead && r.status != IoStatus::kWantWrite) return false;
      if (rc == 1 && server->handshakeDone()) return true;
      ::usleep(1000);  // TCP loopback delivers asynchronously
    }
    return false;
  }
};

TEST(KernelTlsTest, WithoutKernelTlsFilesAreNotSentByTheKernel) {
  // Asked for kTLS or not, a kernel without it leaves the connection in user space: the
  // handshake completes, canSendFile() is false (the session reads files and writes them
  // through SSL_write) and sendFile refuses.
  for (bool ask : {false, true}) {
    SCOPED_TRACE(ask ? "SSL_OP_ENABLE_KTLS" : "no kTLS option");
    TcpTls t(ask);
    ASSERT_TRUE(t.handshake());
    bool kernelSends = BIO_get_ktls_send(SSL_get_wbio(t.server->ssl()));
    EXPECT_EQ(t.server->canSendFile(), kernelSends);
    if (!ask || !kernelTlsSupport().available) {
      EXPECT_FALSE(t.server->canSendFile());
      IoResult r = t.server->sendFile(0, 0, 1);
      EXPECT_EQ(r.status, IoStatus::kError);
      EXPECT_EQ(r.error, EOPNOTSUPP);
    }
    // The user-space path still carries bytes.
    std::string body = "served through SSL_write";
    iovec iov{body.data(), body.size()};
    IoResult w = t.server->writev(&iov, 1, false);
    ASSERT_EQ(w.status, IoStatus::kDone);
    char buffer[64];
    size_t n = 0;
    for (int turn = 0; turn < 2000 && n == 0; ++turn) {
      if (SSL_read_ex(t.client.get(), buffer, sizeof buffer, &n) != 1) ::usleep(1000);
    }
    ERR_clear_error();
    EXPECT_EQ(std::string(buffer, n), body);
  }
}

TEST(KernelTlsTest, WithKernelTlsSslSendfileCarriesTheFile) {
  TcpTls t(true);
  ASSERT_TRUE(t.handshake());
  if (!t.server->canSendFile()) {
    GTEST_SKIP() << "kernel TLS is not offered here (" << kernelTlsSupport().reason
                 << "): the fallback test covers this machine";
  }
  std::string content(300 * 1024, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>((i * 7) ^ (i >> 9));
  fs::path path = files().dir / "file.bin";
  std::ofstream(path, std::ios::binary).write(content.data(), static_cast<long>(content.size()));
  UniqueFd file(::open(path.c_str(), O_RDONLY));
  ASSERT_TRUE(file);
  uint64_t offset = 1000;  // a range, as a 206 sends
  std::string received;
  char buffer[65536];
  for (int turn = 0; turn < 20000 && received.size() < content.size() - 1000; ++turn) {
    if (offset < content.size()) {
      IoResult r = t.server->sendFile(file.get(), offset, content.size() - offset);
      if (r.done()) offset += r.bytes;
      else ASSERT_EQ(r.status, IoStatus::kWouldBlock) << r.error;
    }
    size_t n = 0;
    if (SSL_read_ex(t.client.get(), buffer, sizeof buffer, &n) == 1) received.append(buffer, n);
    else ::usleep(200);
    ERR_clear_error();
  }
  EXPECT_TRUE(received == content.substr(1000)) << received.size();
}

}  // namespace
}  // namespace portico::transport
