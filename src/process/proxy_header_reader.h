#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/unique_fd.h"
#include "event/event_loop.h"
#include "http/exchange.h"
#include "transport/proxy_protocol.h"

namespace portico::process {

// How a listen address takes the PROXY protocol header.
struct ProxyProtocolMode {
  bool enabled = false;
  // gunicorn's --proxy-protocol: the header may be absent (plain HTTP follows at once), and is
  // taken only from the peers of --proxy-allow-from ("*": every peer; a unix peer always).
  // nginx's `listen … proxy_protocol`: required, from every peer.
  bool optional = false;
  std::vector<std::string> allowFrom;
};

// Reads the PROXY protocol header that starts a freshly accepted connection, before any other
// byte is read from it (before the TLS handshake on an ssl address, as nginx: the header comes
// before the ClientHello). The socket is peeked (MSG_PEEK, edge-triggered: each arrival wakes
// it) and exactly the header's bytes are then consumed, so what follows stays in the socket for
// the transport. Bounded: at most kProxyProtocolMaxHeader bytes are looked at, and the header
// must be complete within `timeoutMs` (nginx's client_header_timeout). Owned by the Server;
// event-loop thread only. `done` gets the socket back with the info filled in; on a broken
// header, a timeout or a closed peer the socket is closed (a broken header is logged at error
// level, as nginx's "broken header" line) and `failed` runs. Either callback may destroy the
// reader.
class ProxyHeaderReader : public event::IoWatcher, public event::Deferrable {
 public:
  using Done = std::function<void(ProxyHeaderReader*, UniqueFd, http::ConnectionInfo)>;
  using Failed = std::function<void(ProxyHeaderReader*)>;
  ProxyHeaderReader(event::EventLoop& loop, UniqueFd fd, http::ConnectionInfo info,
                    const ProxyProtocolMode& mode, uint64_t timeoutMs, Done done, Failed failed);
  ~ProxyHeaderReader() override;
  ProxyHeaderReader(const ProxyHeaderReader&) = delete;
  ProxyHeaderReader& operator=(const ProxyHeaderReader&) = delete;

  // Reads what is already there (a callback may run at once); registers with the loop only
  // to wait for more.
  void start();
  void onIoEvent(uint32_t events) override;

 private:
  void attempt();
  void wait();
  void fail(const std::string& message);
  bool peerAllowed() const;

  event::EventLoop& loop_;
  UniqueFd fd_;
  http::ConnectionInfo info_;
  const ProxyProtocolMode& mode_;
  uint64_t timeoutMs_;
  Done done_;
  Failed failed_;
  event::TimerId timer_{0, 0};
  bool registered_ = false;
};

}  // namespace portico::process
