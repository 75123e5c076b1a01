#pragma once

#include <string>

namespace portico::transport {

// Whether the kernel can take over TLS record encryption (kernel TLS: the "tls" TCP upper-layer
// protocol), so OpenSSL can hand it the keys after the handshake (SSL_OP_ENABLE_KTLS) and
// static files can leave with SSL_sendfile instead of being read and encrypted in user space.
// A value type; kernelTlsSupport() probes once per process, from any thread.
struct KernelTlsSupport {
  bool available = false;
  std::string reason;  // why not (or what was seen), for the start-up notice
};

// Asks the kernel now: setsockopt(TCP_ULP, "tls") on a fresh, unconnected TCP socket fails with
// ENOTCONN where the ULP exists (it needs an established connection) and ENOENT where it does
// not (no CONFIG_TLS, or the module cannot be loaded). Also false when OpenSSL was built
// without kernel TLS.
KernelTlsSupport probeKernelTls();

// The probe's result, made on first use and kept.
const KernelTlsSupport& kernelTlsSupport();

// The line logged once at start by a server with TLS, e.g. `TLS: kernel TLS not available
// (TCP_ULP "tls": No such file or directory), static files are read and encrypted in user
// space`.
std::string kernelTlsNotice(const KernelTlsSupport& support);

}  // namespace portico::transport
