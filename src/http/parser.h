#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "http/request.h"
#include "http/request_decoder.h"

namespace portico::http {

// Size limits enforced while parsing; defaults are gunicorn's.
struct ParserLimits {
  size_t maxRequestLine = 4094;     // request line without CRLF; over → 414
  size_t maxHeaderCount = 100;      // over → 431
  size_t maxHeaderFieldSize = 8188; // one "name: value" line without CRLF; over → 431
                                    // (gunicorn's 8190 counts the CRLF)
  size_t maxHeaderTotal = 64 * 1024; // whole head incl. request line; over → 431
  // Header names. Token rule (nginxNames false, gunicorn's): any RFC 9110 token, anything else
  // a 400. nginx's rule: letters, digits and '-' (and '_' with `underscores`) make a valid
  // name; a control character, space or DEL in it is a 400; any other byte makes it invalid.
  // Under either rule an invalid name's line is dropped when ignoreInvalid (nginx's
  // ignore_invalid_headers on; under the token rule that is a name with '_' when underscores is
  // off, which would pose as its dashed twin in a WSGI environ or a uwsgi packet), else kept.
  bool nginxNames = false;
  bool ignoreInvalid = true;
  bool underscores = false;
};

// A pure, incremental HTTP/1.1 request parser (RFC 9112): bytes in, events out, no I/O.
// One instance per connection, reused for each pipelined request; single-threaded.
//
// Usage: call parse(data) repeatedly; it returns one event and how many bytes it consumed
// (`consumed`). The caller drops the consumed bytes and calls again with the rest (possibly
// empty) until kNeedMore. After kMessageComplete the parser is ready for the next request.
// After kError no further parsing is possible (call reset() only for a fresh connection).
//
// Strictness, answered with kError and the status in errorStatus():
//  - 400: obs-fold, bad token/field characters, bare CR/LF where CRLF is required (a CR not
//    followed by LF, and a request line not starting with a method token, are refused as soon
//    as the byte arrives, before the line's end), whitespace
//    between field name and colon, Content-Length together with Transfer-Encoding, differing or
//    invalid Content-Length values, any Transfer-Encoding other than a final single "chunked",
//    bad chunk size (more than 16 hex digits or past 2^63 - 1, nginx's bound)/extension/
//    terminator, missing Host on HTTP/1.1 or more than one Host,
//    a malformed request-target (it must be origin-form "/..", absolute-form "http(s)://..",
//    "*" only for OPTIONS, authority-form only for CONNECT), bad percent-encoding in the path.
//  - 414: request line longer than maxRequestLine.  431: header count, field or head too large.
//  - 505: an HTTP version other than 1.0 or 1.1 (a well-formed "HTTP/x.y" that is not 1.x);
//    a malformed version string is 400.
// Up to 2 empty lines (CRLF) before a request line are tolerated (RFC 9112 §2.2).
class RequestParser final : public RequestDecoder {
 public:
  explicit RequestParser(ParserLimits limits = {})
      : limits_(limits), request_(std::make_shared<Request>()), next_(std::make_shared<Request>()) {}

  ParseEvent parse(std::string_view data, size_t& consumed) override;
  void reset();  // back to expecting a request line, clears all state

  // Valid after kHeadComplete until the next kHeadComplete / reset().
  Request& request() { return *request_; }
  const Request& request() const override { return *request_; }
  // The same head, shared: a handler that reads it after its exchange (a WSGI job on a Python
  // thread) keeps this reference instead of copying the strings and headers. Owners other than
  // the parser must only read it; while one holds it, the parser publishes the next head in a
  // fresh object instead of reusing this one's buffers.
  std::shared_ptr<const Request> sharedRequest() const override { return request_; }
  // The head being parsed (what arrived of it: request line, complete header lines, Host), for
  // logging a request that failed before kHeadComplete.
  const Request& pendingRequest() const override { return *next_; }
  std::string_view bodyData() const override { return body_; }
  // Trailer fields of a chunked body (valid after kMessageComplete).
  const std::vector<Header>& trailers() const { return trailers_; }
  // Bytes of body still expected for a Content-Length body (0 for chunked/none).
  uint64_t remainingContentLength() const override { return remaining_; }
  // Sum of the chunk sizes a chunked body has announced so far (saturating), so a body limit
  // can refuse a chunk as soon as its size line arrives rather than after its bytes.
  uint64_t chunkedBodyDeclared() const override { return chunkedDeclared_; }
  // Body bytes the parser would take verbatim next: the rest of a Content-Length body, or of
  // the current chunk (0 anywhere else). A caller may receive up to that many straight into its
  // own memory, sparing the copy through its input buffer, and report them with skipBody().
  uint64_t rawBodyWanted() const override;
  // `n` (at most rawBodyWanted()) body bytes were taken by the caller: as if parse() had
  // returned them as kBodyData.
  void skipBody(uint64_t n) override;

  // The HTTP/1 framing facts of request()'s head: the connection persists after it (RFC 9112
  // §9.3: 1.1 unless "Connection: close", 1.0 with "Connection: keep-alive"), and the client
  // sent "Expect: 100-continue" on HTTP/1.1.
  bool keepAlive() const override { return keepAlive_; }
  bool expectContinue() const override { return expectContinue_; }

 private:
  // The implementation may add any private members it needs.
  ParseEvent fail(int status, std::string reason);

  ParserLimits limits_;
  std::shared_ptr<Request> request_;  // never null
  std::vector<Header> trailers_;
  std::string_view body_;
  uint64_t remaining_ = 0;
  bool keepAlive_ = true;
  bool expectContinue_ = false;
  int state_ = 0;
  size_t headBytes_ = 0;
  uint64_t chunkRemaining_ = 0;
  uint64_t chunkedDeclared_ = 0;
  int leadingEmptyLines_ = 0;

  // Implementation details (parser.cpp).
  size_t findLineEnd(std::string_view data, size_t pos);
  void beginRequest();
  void reclaimNext();
  void finishMessage();
  bool onRequestLine(std::string_view line);
  bool onTarget(std::string_view target, bool isConnect, bool isOptions);
  bool onFieldLine(std::string_view line, bool trailer);
  bool onSpecialHeader(std::string_view name, std::string_view value);
  bool onContentLength(std::string_view value);
  bool onTransferEncoding(std::string_view value);
  void onConnection(std::string_view value);
  bool onHeadComplete();
  bool onChunkSizeLine(std::string_view line);
  size_t limitViolation(std::string_view data, size_t pos, size_t end, bool complete,
                        int& status, const char*& reason) const;
  size_t earlyError(std::string_view data, size_t pos, size_t from, size_t end) const;
  bool failB(int status, const char* reason) {
    fail(status, reason);
    return false;
  }

  // Bytes at the start of the pending partial line already searched for LF, so feeding a
  // long line byte by byte is not quadratic.
  size_t scanFrom_ = 0;
  size_t trailerBytes_ = 0;
  int hostCount_ = 0;
  int teCodings_ = 0;           // Transfer-Encoding headers seen (nginx allows one)
  bool teChunked_ = false;      // ... and whether its value is exactly "chunked"
  unsigned uniqueSeen_ = 0;     // nginx's unique header lines seen (a bit each)
  bool hostFromTarget_ = false;
  bool connClose_ = false;
  bool connKeepAlive_ = false;
  bool expect100_ = false;
  // The head being parsed; swapped with request_ when complete so request() stays valid.
  // Never null; shared with nobody while it is being written (see reclaimNext()).
  std::shared_ptr<Request> next_;
  // Header objects from earlier requests, kept to reuse their string buffers.
  std::vector<Header> spare_;
};

// Percent-decodes `in` into `out`; false on a malformed escape ("%G1", "%4", a lone "%").
bool percentDecode(std::string_view in, std::string& out);

// RFC 3986 remove_dot_segments on a decoded absolute path, also merging repeated slashes (as
// nginx's merge_slashes). Returns false if the path would climb above "/".
bool normalizePath(std::string_view in, std::string& out);
// The same; with `mergeSlashes` false (nginx's `merge_slashes off`) empty segments are kept,
// and ".." removes one segment, empty or not ("/a//../b" → "/a/b").
bool normalizePath(std::string_view in, std::string& out, bool mergeSlashes);

}  // namespace portico::http
