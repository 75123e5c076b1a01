#include "transport/kernel_tls.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/opensslconf.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "core/unique_fd.h"

#ifndef TCP_ULP
#define TCP_ULP 31  // linux/tcp.h; older libc headers lack it
#endif

namespace portico::transport {

KernelTlsSupport probeKernelTls() {
  KernelTlsSupport support;
#ifdef OPENSSL_NO_KTLS
  support.reason = "OpenSSL was built without kernel TLS (OPENSSL_NO_KTLS)";
  return support;
#else
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    support.reason = std::string("socket(): ") + std::strerror(errno);
    return support;
  }
  static const char kUlp[] = "tls";
  int rc = ::setsockopt(fd.get(), IPPROTO_TCP, TCP_ULP, kUlp, sizeof kUlp - 1);
  int err = rc == 0 ? 0 : errno;
  // ENOTCONN: the "tls" ULP exists and refuses a socket that is not connected yet. (0 would
  // mean it took an unconnected socket; it exists either way.)
  support.available = rc == 0 || err == ENOTCONN;
  support.reason = support.available ? std::string("TCP_ULP \"tls\" is available")
                                     : std::string("TCP_ULP \"tls\": ") + std::strerror(err);
  return support;
#endif
}

const KernelTlsSupport& kernelTlsSupport() {
  static const KernelTlsSupport support = probeKernelTls();
  return support;
}

std::string kernelTlsNotice(const KernelTlsSupport& support) {
  if (support.available) {
    return "TLS: kernel TLS available (" + support.reason +
           "), records are encrypted by the kernel where the cipher allows and static files are "
           "sent with SSL_sendfile";
  }
  return "TLS: kernel TLS not available (" + support.reason +
         "), static files are read and encrypted in user space";
}

}  // namespace portico::transport
