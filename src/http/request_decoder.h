#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "http/exchange.h"
#include "http/request.h"

namespace portico::http {

// What the parser produced from the bytes it was given.
enum class ParseEvent {
  kNeedMore,        // consumed everything it could; feed more bytes
  kHeadComplete,    // request() holds a full request head; body (if any) follows
  kBodyData,        // bodyData() holds a piece of decoded body (valid until next call)
  kMessageComplete, // the request, body and trailers included, is finished
  kError,           // errorStatus()/errorReason() say why; the connection must be closed
};

// How requests arrive on a connection whose responses are HTTP/1.x bytes: the HTTP/1 request
// parser (RequestParser), or a uwsgi packet and its body as nginx's uwsgi_pass sends them
// (UwsgiRequestDecoder). Http1Session reads through this seam; everything after the head —
// routing, the body, the response, timeouts, closing — is the same for both. Pure: bytes in,
// events out, no I/O. One per connection; single-threaded.
class RequestDecoder {
 public:
  virtual ~RequestDecoder() = default;

  // One event and the bytes it consumed; see RequestParser for the protocol.
  virtual ParseEvent parse(std::string_view data, size_t& consumed) = 0;

  // The current head: valid after kHeadComplete until the next one.
  virtual const Request& request() const = 0;
  // The same head, shared (a WSGI job keeps it past its exchange).
  virtual std::shared_ptr<const Request> sharedRequest() const = 0;
  // What arrived of a head that has not completed (for logging a failed request).
  virtual const Request& pendingRequest() const = 0;
  virtual std::string_view bodyData() const = 0;
  // Body bytes still expected for a Content-Length body (0 for chunked/none).
  virtual uint64_t remainingContentLength() const = 0;
  // Sum of the chunk sizes a chunked body announced so far (0 without one).
  virtual uint64_t chunkedBodyDeclared() const = 0;
  // Body bytes the decoder would take verbatim next; the caller may receive them into its own
  // memory and report them with skipBody().
  virtual uint64_t rawBodyWanted() const = 0;
  virtual void skipBody(uint64_t n) = 0;

  // The connection persists after the current request.
  virtual bool keepAlive() const = 0;
  // The client waits for "100 Continue" (HTTP/1.1's Expect).
  virtual bool expectContinue() const = 0;

  int errorStatus() const { return errorStatus_; }
  const std::string& errorReason() const { return errorReason_; }

  // What differs on the wire for a front server speaking uwsgi: the bytes a head may take
  // before it completes (0: the listener's head limits decide), whether a malformed head is
  // answered (HTTP: a 400 page) or the connection closed with an error-log line (uwsgi), and
  // whether a response of unknown length may be chunked (uwsgi: close-delimited, as uWSGI).
  virtual size_t headBufferLimit() const { return 0; }
  virtual bool answersMalformedHead() const { return true; }
  virtual bool chunkedResponses() const { return true; }
  // The client as the head describes it (uwsgi's REMOTE_ADDR, HTTPS): applied to the
  // connection's info once the head is complete. HTTP/1 says nothing.
  virtual void describeClient(ConnectionInfo& info) const { (void)info; }

 protected:
  int errorStatus_ = 0;
  std::string errorReason_;
};

}  // namespace portico::http
