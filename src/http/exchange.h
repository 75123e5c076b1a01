#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "core/body_chunk.h"
#include "core/regex.h"
#include "core/unique_fd.h"
#include "http/request.h"
#include "http/response.h"
#include "http/user_agent.h"

// OpenSSL's connection object, named only by pointer here (transport/tls_transport.h owns it).
struct ssl_st;

namespace portico::http {

// Facts about the connection a request arrived on, for handlers and logs.
struct ConnectionInfo {
  std::string peerAddress;   // "127.0.0.1", "::1", or "" for unix sockets
  uint16_t peerPort = 0;
  std::string localAddress;  // address the listener is bound to (or the unix path)
  uint16_t localPort = 0;
  bool isUnix = false;
  // A plain HTTP request arrived on an address that listens with `ssl`: answered 497 (400).
  bool plainOnTls = false;
  std::string scheme = "http";
  // What the PROXY protocol header the connection began with said (`listen … proxy_protocol`,
  // --proxy-protocol): $proxy_protocol_addr, _port, _server_addr, _server_port. Empty and 0
  // without a header, and for UNKNOWN / LOCAL ones.
  std::string proxyProtocolAddress;
  uint16_t proxyProtocolPort = 0;
  std::string proxyProtocolServerAddress;
  uint16_t proxyProtocolServerPort = 0;
  // The TLS connection's OpenSSL object ($ssl_* variables); null on plain connections. Set by
  // the session from its transport, which owns it and outlives every request on it.
  const ssl_st* tls = nullptr;
  // Kept current by the connection for the request in flight (nginx's $connection,
  // $connection_requests, $pipe, $request_length).
  uint64_t number = 0;         // serial number of the connection in this process (1, 2, ...)
  uint64_t requests = 0;       // requests made on the connection, the current one included
  bool pipelined = false;      // the request's bytes were already read when the previous ended
  uint64_t requestLength = 0;  // bytes of the request read so far: line, headers, body
  uint64_t openedMicros = 0;   // CLOCK_MONOTONIC µs when the connection was made ($connection_time)
};

class Template;  // http/variables.h

// What the upstream engine records for a request, read by its variables ($proxy_host,
// $proxy_port, $upstream_addr, $upstream_status, $upstream_*_time: one entry per upstream
// tried, joined with ", " as nginx; $upstream_http_NAME: the last response's headers).
struct UpstreamVariables {
  std::string proxyHost;
  std::string proxyPort;
  std::string addr;
  std::string status;
  std::string responseTime;
  std::string connectTime;
  std::string headerTime;
  std::string responseLength;  // $upstream_response_length: body bytes received per try
  std::vector<Header> headers;
  // The request body's length once read, for a request without Content-Length (chunked): what
  // $content_length then says, as nginx sets content_length_n (uwsgi_params sends it).
  std::string requestBodyLength;
  // $upstream_bytes_sent / _received: bytes written to / read from each upstream tried.
  std::string bytesSent;
  std::string bytesReceived;
  // $request_body: the request body the upstream engine read, when it stayed in memory.
  std::optional<std::string> requestBody;
  // $request_body_file: the temp file holding it otherwise (client_body_in_file_only, or a
  // body larger than client_body_buffer_size).
  std::string requestBodyFile;
};

// Who lent a request body's tail to its reader (SocketTail): told, once, from any thread, how
// many of the tail's bytes the reader took; the connection then reads on from there (the rest
// of the body, discarded, then the next request). Implemented by the connection.
class SocketTailLender {
 public:
  virtual ~SocketTailLender() = default;
  virtual void giveBack(uint64_t consumed) = 0;
};

// The rest of a Content-Length request body, lent to its reader while all of it is already in
// the kernel's receive queue: the reader receives it from `fd` (a duplicate of the connection's
// socket, non-blocking) itself, `size` bytes at most, straight into its destination — one copy,
// into memory the reader is about to use. The connection does not read meanwhile. The reader
// closes `fd` and then calls lender->giveBack with what it received, once, when done.
struct SocketTail {
  UniqueFd fd;
  uint64_t size = 0;
  std::shared_ptr<SocketTailLender> lender;
};

// Receives the request body as it arrives (already de-chunked); set with Exchange::readBody.
class BodyReader {
 public:
  virtual ~BodyReader() = default;
  virtual void onBodyData(std::string_view data) = 0;
  virtual void onBodyEnd() = 0;
  // Optional: a reader that can take the body's tail from the socket (SocketTail) says so; the
  // connection then may end the body with onBodyTail instead of reading on and onBodyEnd.
  virtual bool takesSocketTail() const { return false; }
  virtual void onBodyTail(SocketTail tail) { (void)tail; }
  // Optional: memory for up to `max` body bytes (at least one byte, or empty). The connection
  // then receives body bytes straight into it — one copy instead of two, for large bodies —
  // and reports them with onBodyReceived instead of onBodyData.
  virtual std::span<char> bodySpace(size_t max) {
    (void)max;
    return {};
  }
  // `n` bytes were written at the start of the last bodySpace().
  virtual void onBodyReceived(size_t n) { (void)n; }
};

// The other end of a connection taken over as a raw byte stream (Exchange::upgrade): gets the
// client's bytes as they arrive. Implemented by the content that upgraded (the proxy's tunnel);
// loop thread.
class RawStreamPeer {
 public:
  virtual ~RawStreamPeer() = default;
  // Client bytes, in order (first those already read after the request).
  virtual void onRawData(std::string_view data) = 0;
  // The client closed its sending side (or the connection broke): no more onRawData.
  virtual void onRawEnd() = 0;
};

// One request/response in flight on a connection: the handler's only view of the transport.
// Owned by the connection; valid from Handler::handle until finish() (or until onAbort fires).
// Event-loop thread only. The response goes: sendHead once, sendBody any number of times,
// finish once — or respond() for the whole thing. Bodies of HEAD requests and of 204/304
// responses are dropped by the connection, so handlers need not special-case them.
class Exchange {
 public:
  virtual ~Exchange() = default;

  virtual const Request& request() const = 0;
  // The request head for a reader that outlives the exchange (a job on another thread); it
  // must stay unmodified. This default copies; the connection shares its parser's object.
  virtual std::shared_ptr<const Request> sharedRequest() const {
    return std::make_shared<const Request>(request());
  }
  virtual const ConnectionInfo& connection() const = 0;
  // The connection as the socket has it, before realip replaced the client ($realip_remote_addr):
  // who is trusted as a front end is decided on it.
  virtual const ConnectionInfo& socketConnection() const { return connection(); }
  // What error pages sign with: the Server header's value (server_tokens on: with the version).
  virtual std::string_view signature() const { return "portico"; }

  virtual void sendHead(ResponseHead head) = 0;
  virtual void sendBody(BodyChunk chunk) = 0;
  virtual void finish() = 0;
  // Trailer fields for the response's end (add_trailer), set before finish(): they follow a
  // chunked body (ResponseHead::expectTrailers) and are dropped otherwise.
  virtual void setTrailers(std::vector<Header> trailers) { (void)trailers; }

  // Backpressure: false once the queued output passes the high watermark. onWritable's
  // callback runs (once per registration) when the queue has drained below the low one.
  virtual bool writable() const = 0;
  virtual void onWritable(std::function<void()> callback) = 0;

  // Streams the request body to `reader` (sending "100 Continue" first if the client asked).
  // Without this call the connection discards the body after the response.
  virtual void readBody(BodyReader* reader) = 0;

  // Called if the client goes away before finish(); the exchange dies right after.
  virtual void onAbort(std::function<void()> callback) = 0;
  // The content's work is worthless once the client has gone (proxy_pass: nginx's
  // ngx_http_upstream_check_broken_connection): the client closing its side before the
  // response is complete then aborts the exchange (onAbort; logged 499 when no head left)
  // instead of answering a half-closed client. Without it a half-closed client is answered.
  virtual void abortOnClientClose() {}

  // Gives up on the response (an app failed after its head went out): the connection is
  // closed so the client sees a truncated response, never a wrong one. The exchange dies.
  virtual void abort() = 0;

  // limit_rate / limit_rate_after for the response whose head comes next: its bytes past
  // `after` leave at most at `bytesPerSecond` (0: no limit), as nginx's write filter paces
  // them. The pipeline sets it at every head; the connection does the pacing.
  virtual void throttle(uint64_t bytesPerSecond, uint64_t after) {
    (void)bytesPerSecond;
    (void)after;
  }
  // X-Accel-Limit-Rate (or `set $limit_rate`): the rate this request's response gets,
  // whatever its location says.
  virtual void setLimitRate(uint64_t bytesPerSecond) { (void)bytesPerSecond; }

  // ---- for upstream content (proxy_pass): the request's variables and its URI as nginx's ----
  // Expands `value` with the request's variables (the pipeline's; "" without a pipeline).
  virtual std::string expand(const Template& value) const {
    (void)value;
    return {};
  }
  // The request's upstream record (null: not kept), for $proxy_host and $upstream_*.
  virtual UpstreamVariables* upstreamVariables() { return nullptr; }
  // nginx's r->uri: the current URI, decoded and normalized, after rewrites.
  virtual std::string_view currentUri() const { return request().path; }
  // nginx's r->valid_unparsed_uri: no rewrite or internal redirect changed the client's URI.
  virtual bool uriIsOriginal() const { return true; }
  // False when a rewrite (with break) changed the URI inside the location serving it (nginx's
  // r->valid_location): proxy_pass then passes the whole changed URI, not its URI part.
  virtual bool locationValid() const { return true; }
  // What nginx appends to a request's error-log line (", client: ..., server: ..., request:
  // ..., host: ...").
  virtual std::string errorContext() const { return {}; }
  // expand() with `captures` as $1..$9 and the named captures (a proxy_redirect regex's).
  virtual std::string expandWithCaptures(const Template& value,
                                         const Regex::Match& captures) const {
    (void)captures;
    return expand(value);
  }
  // The Location nginx's header filter makes of a path (absolute_redirect,
  // server_name_in_redirect, port_in_redirect); unchanged without a pipeline.
  virtual std::string absoluteLocation(std::string_view path) const { return std::string(path); }

  // ---- connection upgrade (a 101 Switching Protocols answer; protocol-neutral) ----
  // Whether the connection under this exchange can become a raw byte stream (HTTP/1: yes once
  // the request is complete; an HTTP/2 stream: no).
  virtual bool canUpgrade() const { return false; }
  // Right after sendHead(101): the connection stops speaking HTTP. Its input goes to `peer`
  // (the bytes already read after the request first), sendBody writes bytes as they are
  // (writable/onWritable apply), pauseUpgradedInput stops and resumes reading (backpressure),
  // finish() closes the connection once the queued output has left, and onAbort still reports a
  // client gone. False: not possible (the caller answers otherwise).
  virtual bool upgrade(RawStreamPeer* peer) {
    (void)peer;
    return false;
  }
  virtual void pauseUpgradedInput(bool paused) { (void)paused; }

  // ---- X-Accel-Redirect (nginx's ngx_http_upstream_process_headers) ----
  // Instead of a response: the request goes on, as an internal redirect, at `uri` with `args`
  // (its method GET unless HEAD), or at the named location `uri` ("@name"); `keep` (the
  // upstream's Content-Type, Set-Cookie, ... that nginx copies) goes into the response the new
  // location makes. False: not possible here (no pipeline), nothing was answered.
  virtual bool accelRedirect(const std::string& uri, const std::string& args,
                             std::vector<Header> keep) {
    (void)uri;
    (void)args;
    (void)keep;
    return false;
  }

  // Convenience: a whole response at once (contentLength set from the body).
  void respond(ResponseHead head, std::string body) {
    head.contentLength = body.size();
    sendHead(std::move(head));
    if (!body.empty()) sendBody(BodyChunk(std::move(body)));
    finish();
  }
  // An nginx-style HTML error response for `status`.
  void respondError(int status) {
    ResponseHead head;
    head.status = status >= 494 && status <= 497 ? 400 : status;  // nginx's own 400s
    head.special = true;
    head.add("Content-Type", "text/html");
    respond(std::move(head), errorPage(status));
  }
  // The page respondError sends: signed per server_tokens, padded for MSIE and Chrome.
  std::string errorPage(int status) const {
    const std::string* agent = request().header("User-Agent");
    return errorPageBody(status, signature(),
                         status >= 400 && agent != nullptr && request().versionMajor >= 1 &&
                             wantsErrorPadding(*agent));
  }
};

// Produces responses for requests routed to it. Handlers are created once per worker by the
// composition root, outlive every connection, and run on the event-loop thread.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual void handle(Exchange& exchange) = 0;
  // False for handlers that never read a request body (static files): the connection then
  // parses and discards the body bytes already received before calling handle(), as nginx's
  // discard_request_body does, so a malformed body is answered with 400 instead of a response.
  virtual bool readsBody() const { return true; }
};

}  // namespace portico::http
