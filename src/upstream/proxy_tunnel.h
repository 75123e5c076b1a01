#pragma once

// The two-way byte tunnel of a proxied connection upgraded by a 101 (WebSocket and any other
// `Upgrade`), as nginx's ngx_http_upstream_upgrade and ngx_http_upstream_process_upgraded.

#include <memory>
#include <string>

#include "event/event_loop.h"
#include "http/exchange.h"
#include "transport/transport.h"

namespace portico::upstream {

// What an upgraded tunnel is bounded by (the location's proxy settings).
struct TunnelSettings {
  // proxy_read_timeout: the tunnel closes when no byte moved either way for this long (nginx
  // re-arms the upstream's read timer on every event of either side).
  double readTimeoutSeconds = 60;
  // proxy_send_timeout: the upstream took none of the client's waiting bytes for this long.
  double sendTimeoutSeconds = 60;
  // proxy_buffer_size: the client's bytes held for the upstream before reading the client stops.
  size_t bufferSize = 4096;
};

// Starts the tunnel once the 101 head went out and `exchange.upgrade` is possible: takes the
// upstream connection (connected, not registered with the loop) and the upstream's bytes read
// after the 101 head (`pending`, passed on first). The tunnel owns itself and ends — the
// upstream closed, the exchange finished (the client's connection closes after its queued
// bytes) — when either side has closed and its bytes were passed on (nginx closes both then: no
// half-close on an upgraded HTTP connection), on an error, or on a timeout. `logContext` is
// what its error-log lines end with (client, server, request, upstream, host). False when the
// exchange refused the upgrade (nothing was taken over; the caller still owns `upstream`).
bool startProxyTunnel(event::EventLoop& loop, http::Exchange& exchange,
                      std::unique_ptr<transport::Transport>& upstream, std::string pending,
                      const TunnelSettings& settings, std::string logContext);

}  // namespace portico::upstream
