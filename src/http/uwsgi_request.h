#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/request_decoder.h"
#include "http/uwsgi_codec.h"

namespace portico::http {

// Requests as nginx's uwsgi_pass sends them (portico behind nginx, in uWSGI's place): one
// uwsgi packet whose vars are the CGI variables (REQUEST_METHOD, REQUEST_URI, PATH_INFO,
// QUERY_STRING, SERVER_PROTOCOL, CONTENT_TYPE, CONTENT_LENGTH, HTTP_*, REMOTE_ADDR, ...), then
// CONTENT_LENGTH bytes of body. The head becomes a Request as if it had come as HTTP/1; the
// rest of the vars go to the WSGI environ (Request::params). One request per connection, as
// uWSGI serves it: the connection closes after the response. Pure (no I/O); a member of its
// session; event-loop thread.
class UwsgiRequestDecoder final : public RequestDecoder {
 public:
  UwsgiRequestDecoder() : request_(std::make_shared<Request>()) {}

  ParseEvent parse(std::string_view data, size_t& consumed) override;
  const Request& request() const override { return *request_; }
  std::shared_ptr<const Request> sharedRequest() const override { return request_; }
  const Request& pendingRequest() const override { return empty_; }
  std::string_view bodyData() const override { return body_; }
  uint64_t remainingContentLength() const override { return remaining_; }
  uint64_t chunkedBodyDeclared() const override { return 0; }
  uint64_t rawBodyWanted() const override { return state_ == State::kBody ? remaining_ : 0; }
  void skipBody(uint64_t n) override { remaining_ -= n < remaining_ ? n : remaining_; }
  bool keepAlive() const override { return false; }
  bool expectContinue() const override { return false; }

  size_t headBufferLimit() const override { return uwsgi::kMaxPacketSize; }
  bool answersMalformedHead() const override { return false; }
  bool chunkedResponses() const override { return false; }
  void describeClient(ConnectionInfo& info) const override;

 private:
  enum class State { kHead, kBody, kDone };
  ParseEvent fail(std::string reason);
  // The Request of one packet's vars; false (errorReason_ set) when they cannot make one.
  bool buildRequest(const uwsgi::Packet& packet);

  State state_ = State::kHead;
  std::shared_ptr<Request> request_;
  Request empty_;
  std::string_view body_;
  uint64_t remaining_ = 0;
  std::string remoteAddr_;
  uint16_t remotePort_ = 0;
  bool haveRemote_ = false;
  bool https_ = false;
  std::vector<uwsgi::Var> vars_;
};

}  // namespace portico::http
