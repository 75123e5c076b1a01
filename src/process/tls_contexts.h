#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>

#include "config/config.h"
#include "http/site_map.h"
#include "process/tls_shared.h"
#include "transport/tls_context.h"

namespace portico::process {

// The TLS contexts of a site: one per virtual server with ssl_certificate, made when the worker
// builds its site (certificates and keys read before privileges drop, and at -t), the
// addresses that listen with `ssl`, and SNI: a handshake starts with the context of its
// address's default server and switches to the server its server name selects. Owned by the
// Server; event-loop thread only.
class TlsContexts {
 public:
  // False with nginx's message for the first certificate, key or setting that fails. The
  // contexts' warnings (ssl_stapling ignored) are logged when `logWarnings`: once per load, by
  // the start-up check and the master's reload check, as nginx logs them at configuration
  // load, not by every worker.
  bool build(const config::HttpSite& site, std::string& error, bool logWarnings = true);

  // Whether connections to the address `key` (http::SiteMap::listenKey) speak TLS first.
  bool sslAddress(const std::string& key) const { return sslKeys_.count(key) != 0; }
  // The context a handshake on `group`'s address starts with (its default server's); null when
  // that server has none.
  const transport::TlsContext* forGroup(const http::ServerGroup& group) const;

 private:
  static int onServerName(SSL* ssl, int* alert, void* arg);
  const transport::TlsContext* forServer(const config::VirtualServer* server) const;

  std::map<const config::VirtualServer*, std::unique_ptr<transport::TlsContext>> contexts_;
  std::set<std::string> sslKeys_;
  std::shared_ptr<TlsShared> shared_;  // the session caches and ticket keys the contexts use
};

}  // namespace portico::process
