#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/log.h"
#include "event/event_loop.h"
#include "http/access_log.h"
#include "http/parser.h"
#include "http/router.h"

namespace portico::http {

// The access log as the connection sees it: a formatter and where its lines go.
struct AccessLog {
  explicit AccessLog(std::string format, bool json = false)
      : formatter(std::move(format), json) {}
  AccessLogFormatter formatter;
  LogFile file;
};

// Per-listener settings every connection reads; owned by the server, read-only while serving.
struct ConnectionSettings {
  ParserLimits limits;
  uint64_t maxBodySize = 1024 * 1024;  // 0 = unlimited
  uint64_t headerTimeoutMs = 60000;
  uint64_t bodyTimeoutMs = 60000;
  uint64_t sendTimeoutMs = 60000;
  uint64_t keepAliveTimeoutMs = 2000;
  bool serverHeader = true;
  // nginx's answer to a header line past large_client_header_buffers: 400 "Request Header Or
  // Cookie Too Large" (the flags path keeps gunicorn's 431).
  bool headerTooLargeIs400 = false;
  // The listener speaks uwsgi (`listen ... uwsgi`, `--protocol uwsgi`): requests come from a
  // front server's uwsgi_pass as uwsgi packets (UwsgiRequestDecoder).
  bool uwsgi = false;
  std::string serverHeaderValue = "portico";  // unless a route says otherwise
  const RequestRouter* site = nullptr;         // server selection + locations, per request (required)
  AccessLog* accessLog = nullptr;  // null: no access log
  std::function<void()> onRequestDone;  // after each response (worker accounting), may be empty
};

class Connection;

// Told when a connection has closed, so it can be unlinked and deleted (deferred).
class ConnectionOwner {
 public:
  virtual ~ConnectionOwner() = default;
  virtual void connectionClosed(Connection* connection) = 0;
  // Asked when the first bytes of a connection's next request are in and nothing else is in
  // flight on it (no response queued): true when the owner gave the connection to a sibling
  // worker (process/hand_off.h) and closed it here; the connection then does nothing more.
  virtual bool offerHandOff(Connection& connection) {
    (void)connection;
    return false;
  }
};

// A client connection as the server sees it, whatever protocol it speaks (HTTP/1 today:
// Http1Session): started, drained, closed, or moved to a sibling worker. Owned by the server;
// event-loop thread only; deleted through the loop's deferred delete so callbacks may close it
// from anywhere.
class Connection : public event::IoWatcher, public event::Deferrable {
 public:
  virtual void start() = 0;
  // Graceful stop: idle connections close now, busy ones after their current response.
  virtual void drain() = 0;
  // Immediate stop (the server is going away).
  virtual void close() = 0;

  // What travels when the connection moves to a sibling worker (ConnectionOwner::offerHandOff).
  virtual int fd() const = 0;
  virtual std::string_view bufferedInput() const = 0;
  virtual uint64_t requestStartMs() const = 0;  // 0 until a request's first byte
  virtual uint64_t requestsServed() const = 0;
  // The connection's addresses (the PROXY protocol header's travel with a hand-off).
  virtual const ConnectionInfo& info() const = 0;
  // Kept alive between requests with nothing read, queued or running, over a transport whose
  // state is all in the socket: it can move as it is.
  virtual bool idleBetweenRequests() const = 0;
  // A connection taken from a sibling, started by this in place of start(): the bytes it had
  // read, when its request began (CLOCK_MONOTONIC ms, shared by the processes) and the
  // responses it has had; reads and serves on from there. It is not offered again before its
  // next request.
  virtual void adopt(std::string_view buffered, uint64_t requestStartMs,
                     uint64_t requestsServed) = 0;
};

}  // namespace portico::http
