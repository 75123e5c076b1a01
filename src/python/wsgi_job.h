#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/body_chunk.h"
#include "http/exchange.h"
#include "http/request.h"
#include "http/response.h"

namespace portico::python {

// What the app may know of a request, handed to a Python thread, which never touches
// connection state. The head is the parser's own object, shared rather than copied: nobody
// modifies it while the snapshot holds it (the parser publishes the next head elsewhere).
// Immutable once the job is submitted.
struct RequestSnapshot {
  std::shared_ptr<const http::Request> request;  // never null once submitted
  http::ConnectionInfo connection;
  std::string scriptName;    // the mount prefix without its trailing '/' ("" for "/")
  std::string_view pathInfo; // decoded path below scriptName (latin-1 bytes), e.g. "/a/b";
                             // a view into request->path
};

// The whole request body, read by the loop thread before the app runs (nginx's request
// buffering: a slow client never holds a Python thread) — or all of it arrived, and a large
// body's tail is still in the socket's receive queue, lent to the app (TailedBody). Bodies stay
// in memory within the worker's budget, others go to an unlinked temporary file
// (python/request_body.h). Read-only once complete; safe from any thread.
class RequestBody {
 public:
  virtual ~RequestBody() = default;
  virtual uint64_t size() const = 0;
  // Copies up to `n` bytes at `offset` into `dst`; returns the count (0 at the end). Callers on
  // a Python thread release the GIL around reads of file-backed bodies (they may block on disk).
  virtual size_t read(uint64_t offset, char* dst, size_t n) const = 0;
  // The bytes from `offset` that are contiguous in memory (to the end of their segment), so a
  // reader can search them in place; empty at the end, and always for a file-backed body.
  virtual std::string_view span(uint64_t offset) const {
    (void)offset;
    return {};
  }
  virtual bool fileBacked() const = 0;
};

// The Python thread's handle on the response: each call is handed to the loop thread, which
// writes it to the connection. Thread-safe. Methods return false once the client is gone (the
// app should stop producing; close() is still called). Only sendBody may wait; the others only
// queue, and may be called with the GIL held.
class ResponseChannel {
 public:
  virtual ~ResponseChannel() = default;
  // The head may wait for the next call (a body, finish, abort or flush), so that it travels
  // with it in one hand-off; the caller always makes one.
  virtual bool sendHead(http::ResponseHead head) = 0;
  // Hands over whatever is waiting (a head with no body yet, when the app may now block).
  virtual void flush() {}
  // May block until the connection has drained below its watermark (backpressure): call it
  // with the GIL released.
  virtual bool sendBody(BodyChunk chunk) = 0;
  // Head + optional body + finish in one hand-off (the one-item-list fast path).
  virtual bool sendWhole(http::ResponseHead head, std::string body) = 0;
  // Bytes the caller keeps alive (a bytes object it holds a reference to) for the duration of
  // the call, GIL released: only what the connection may hold in memory is copied, the rest
  // goes to the response's temporary file. Same contracts as sendBody and sendWhole.
  virtual bool sendBytes(const char* data, size_t n) {
    return sendBody(BodyChunk(std::string(data, n)));
  }
  virtual bool sendWholeBytes(http::ResponseHead head, const char* data, size_t n) {
    return sendWhole(std::move(head), std::string(data, n));
  }
  virtual void finish() = 0;
  // The response cannot be completed (an exception after the head was sent): close the
  // connection so the client sees a truncated response rather than a wrong one.
  virtual void abortConnection() = 0;
  virtual bool clientGone() const = 0;
  // Loop thread (the executor's watchdog posts it): the request has outlived --timeout. The
  // client gets a 504 error page when no head went out yet, else its connection is cut; every
  // later call from the app fails as if the client had gone. False when there was nothing left
  // to answer (the response was complete, or the client gone).
  virtual bool expire() { return false; }
};

// One request for the app.
struct WsgiJob {
  RequestSnapshot snapshot;
  std::shared_ptr<const RequestBody> body;  // never null (an empty body for none)
  std::shared_ptr<ResponseChannel> channel;
};

}  // namespace portico::python
