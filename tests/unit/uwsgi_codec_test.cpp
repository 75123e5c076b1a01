// The uwsgi packet codec (http/uwsgi_codec.h) and the request decoder built on it
// (http/uwsgi_request.h): whole packets, packets split byte by byte, malformed packets.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "http/uwsgi_codec.h"
#include "http/uwsgi_request.h"

namespace portico::http {
namespace {

using Vars = std::vector<std::pair<std::string, std::string>>;

std::string packet(const Vars& vars, uint8_t modifier1 = 0) {
  std::string out;
  EXPECT_TRUE(uwsgi::serializePacket(vars, out, modifier1));
  return out;
}

const Vars kGet = {{"REQUEST_METHOD", "GET"},
                   {"REQUEST_URI", "/a%20b/c?x=1&y=2"},
                   {"PATH_INFO", "/a b/c"},
                   {"QUERY_STRING", "x=1&y=2"},
                   {"SERVER_PROTOCOL", "HTTP/1.1"},
                   {"CONTENT_TYPE", ""},
                   {"CONTENT_LENGTH", ""},
                   {"HTTP_HOST", "example.com"},
                   {"HTTP_X_FORWARDED_FOR", "10.0.0.1"},
                   {"REMOTE_ADDR", "192.0.2.7"},
                   {"REMOTE_PORT", "51234"},
                   {"SERVER_NAME", "_"},
                   {"SERVER_PORT", "80"},
                   {"DOCUMENT_ROOT", "/var/www"}};

TEST(UwsgiCodecTest, SerializesTheHeadAndVarsLittleEndian) {
  std::string out = packet({{"AB", "xyz"}}, 5);
  ASSERT_EQ(out.size(), 4u + 2 + 2 + 2 + 3);
  EXPECT_EQ(static_cast<unsigned char>(out[0]), 5);
  EXPECT_EQ(static_cast<unsigned char>(out[1]), 9);  // datasize 9, low byte first
  EXPECT_EQ(static_cast<unsigned char>(out[2]), 0);
  EXPECT_EQ(static_cast<unsigned char>(out[3]), 0);
  EXPECT_EQ(out.substr(4), std::string("\x02\x00" "AB" "\x03\x00" "xyz", 9));
}

TEST(UwsgiCodecTest, RoundTripsAndFindsTheWholePacketOnly) {
  std::string out = packet(kGet);
  out += "trailing body";
  const size_t size = out.size() - 13;
  for (size_t n = 0; n < size; ++n) {
    uwsgi::Packet p;
    EXPECT_EQ(uwsgi::findPacket(std::string_view(out).substr(0, n), p),
              uwsgi::PacketStatus::kNeedMore)
        << n;
  }
  uwsgi::Packet p;
  ASSERT_EQ(uwsgi::findPacket(out, p), uwsgi::PacketStatus::kComplete);
  EXPECT_EQ(p.size, size);
  EXPECT_EQ(p.modifier1, 0);
  std::vector<uwsgi::Var> vars;
  std::string error;
  ASSERT_TRUE(uwsgi::parseVars(p.vars, vars, error)) << error;
  ASSERT_EQ(vars.size(), kGet.size());
  for (size_t i = 0; i < vars.size(); ++i) {
    EXPECT_EQ(vars[i].key, kGet[i].first);
    EXPECT_EQ(vars[i].value, kGet[i].second);
  }
}

TEST(UwsgiCodecTest, LargeValuesUseBothSizeBytes) {
  std::string big(300, 'v');
  std::string out = packet({{"K", big}});
  uwsgi::Packet p;
  ASSERT_EQ(uwsgi::findPacket(out, p), uwsgi::PacketStatus::kComplete);
  std::vector<uwsgi::Var> vars;
  std::string error;
  ASSERT_TRUE(uwsgi::parseVars(p.vars, vars, error));
  ASSERT_EQ(vars.size(), 1u);
  EXPECT_EQ(vars[0].value, big);
}

TEST(UwsgiCodecTest, RefusesWhatCannotBeEncoded) {
  std::string out = "keep";
  EXPECT_FALSE(uwsgi::serializePacket({{"", "x"}}, out));
  EXPECT_FALSE(uwsgi::serializePacket({{"K", std::string(65536, 'x')}}, out));
  // Each var fits, the block does not.
  EXPECT_FALSE(uwsgi::serializePacket(
      {{"A", std::string(40000, 'x')}, {"B", std::string(40000, 'x')}}, out));
  EXPECT_EQ(out, "keep");
  std::string largest;
  ASSERT_TRUE(uwsgi::serializePacket({{"K", std::string(65535 - 5, 'x')}}, largest));
  EXPECT_EQ(largest.size(), uwsgi::kMaxPacketSize);
}

TEST(UwsgiCodecTest, MalformedVarsAreErrors) {
  const std::vector<std::string> bad = {
      std::string("\x05", 1),                       // half a key size
      std::string("\x05\x00" "AB", 4),              // key past the end
      std::string("\x02\x00" "AB", 4),              // no value size
      std::string("\x02\x00" "AB" "\x01", 5),       // half a value size
      std::string("\x02\x00" "AB" "\x09\x00" "x", 7),  // value past the end
      std::string("\x00\x00\x00\x00", 4),           // empty key
      std::string("\x01\x00" "A" "\x00\x00" "\x07", 6),  // a stray byte after the last var
  };
  for (const std::string& vars : bad) {
    std::vector<uwsgi::Var> out;
    std::string error;
    EXPECT_FALSE(uwsgi::parseVars(vars, out, error)) << vars.size();
    EXPECT_FALSE(error.empty());
  }
  std::vector<uwsgi::Var> out;
  std::string error;
  EXPECT_TRUE(uwsgi::parseVars("", out, error));
  EXPECT_TRUE(out.empty());
}

// Feeds `bytes` to a decoder `step` bytes at a time, as a session would (keeping what was not
// consumed); returns the events and the body.
struct Fed {
  std::vector<ParseEvent> events;
  std::string body;
};
Fed feed(UwsgiRequestDecoder& d, const std::string& bytes, size_t step) {
  Fed fed;
  std::string buffer;
  size_t pos = 0;
  for (;;) {
    size_t consumed = 0;
    ParseEvent ev = d.parse(buffer, consumed);
    if (ev == ParseEvent::kBodyData) fed.body += d.bodyData();  // a view into `buffer`
    buffer.erase(0, consumed);
    if (ev == ParseEvent::kNeedMore) {
      if (pos >= bytes.size()) break;
      buffer += bytes.substr(pos, step);
      pos += step;
      continue;
    }
    fed.events.push_back(ev);
    if (ev == ParseEvent::kMessageComplete || ev == ParseEvent::kError) break;
  }
  return fed;
}

TEST(UwsgiRequestDecoderTest, BuildsTheRequestFromTheVars) {
  for (size_t step : {size_t{1}, size_t{3}, size_t{100000}}) {
    SCOPED_TRACE(step);
    UwsgiRequestDecoder d;
    Fed fed = feed(d, packet(kGet), step);
    ASSERT_EQ(fed.events, (std::vector<ParseEvent>{ParseEvent::kHeadComplete,
                                                   ParseEvent::kMessageComplete}));
    const Request& r = d.request();
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.target, "/a%20b/c?x=1&y=2");
    EXPECT_EQ(r.rawPath, "/a%20b/c");
    EXPECT_EQ(r.path, "/a b/c");
    EXPECT_EQ(r.query, "x=1&y=2");
    EXPECT_EQ(r.versionMinor, 1);
    EXPECT_EQ(r.host, "example.com");
    ASSERT_NE(r.header("x-forwarded-for"), nullptr);
    EXPECT_EQ(*r.header("X-Forwarded-For"), "10.0.0.1");
    EXPECT_EQ(r.header("Content-Type"), nullptr);
    EXPECT_FALSE(r.contentLength);
    EXPECT_FALSE(r.hasBody());
    ASSERT_EQ(r.params.size(), 5u);  // the empty CONTENT_* are kept, as uWSGI keeps them
    EXPECT_EQ(r.params[0].name, "CONTENT_TYPE");
    EXPECT_EQ(r.params[0].value, "");
    EXPECT_EQ(r.params[2].name, "SERVER_NAME");
    EXPECT_EQ(r.params[4].value, "/var/www");
    ConnectionInfo info;
    info.peerAddress = "127.0.0.1";
    d.describeClient(info);
    EXPECT_EQ(info.peerAddress, "192.0.2.7");
    EXPECT_EQ(info.peerPort, 51234);
    EXPECT_EQ(info.scheme, "http");
    EXPECT_FALSE(d.keepAlive());
    EXPECT_FALSE(d.chunkedResponses());
  }
}

TEST(UwsgiRequestDecoderTest, ReadsExactlyContentLengthBytesOfBody) {
  Vars vars = {{"REQUEST_METHOD", "POST"},
               {"REQUEST_URI", "/p"},
               {"CONTENT_TYPE", "text/plain"},
               {"CONTENT_LENGTH", "11"},
               {"SERVER_PROTOCOL", "HTTP/1.0"},
               {"HTTPS", "on"}};
  for (size_t step : {size_t{1}, size_t{7}, size_t{100000}}) {
    SCOPED_TRACE(step);
    UwsgiRequestDecoder d;
    Fed fed = feed(d, packet(vars) + "hello world" + "NEXT", step);
    ASSERT_GE(fed.events.size(), 3u);
    EXPECT_EQ(fed.events.front(), ParseEvent::kHeadComplete);
    EXPECT_EQ(fed.events.back(), ParseEvent::kMessageComplete);
    EXPECT_EQ(fed.body, "hello world");
    const Request& r = d.request();
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.path, "/p");
    EXPECT_EQ(r.versionMinor, 0);
    EXPECT_EQ(r.contentLength, 11u);
    ASSERT_NE(r.header("Content-Type"), nullptr);
    EXPECT_EQ(*r.header("Content-Type"), "text/plain");
    ConnectionInfo info;
    d.describeClient(info);
    EXPECT_EQ(info.scheme, "https");
  }
}

TEST(UwsgiRequestDecoderTest, BodyBytesMayBeTakenDirectly) {
  UwsgiRequestDecoder d;
  std::string head = packet({{"REQUEST_METHOD", "PUT"}, {"REQUEST_URI", "/"},
                             {"CONTENT_LENGTH", "100000"}});
  size_t consumed = 0;
  ASSERT_EQ(d.parse(head, consumed), ParseEvent::kHeadComplete);
  EXPECT_EQ(consumed, head.size());
  EXPECT_EQ(d.rawBodyWanted(), 100000u);
  d.skipBody(99999);
  EXPECT_EQ(d.remainingContentLength(), 1u);
  ASSERT_EQ(d.parse("xy", consumed), ParseEvent::kBodyData);
  EXPECT_EQ(consumed, 1u);
  ASSERT_EQ(d.parse("y", consumed), ParseEvent::kMessageComplete);
  EXPECT_EQ(consumed, 0u);
}

TEST(UwsgiRequestDecoderTest, SchemeFromUwsgiSchemeWins) {
  UwsgiRequestDecoder d;
  size_t consumed = 0;
  ASSERT_EQ(d.parse(packet({{"REQUEST_METHOD", "GET"}, {"PATH_INFO", "/x"},
                            {"QUERY_STRING", "q=1"}, {"UWSGI_SCHEME", "https"}}),
                    consumed),
            ParseEvent::kHeadComplete);
  EXPECT_EQ(d.request().target, "/x?q=1");  // no REQUEST_URI: the path and the arguments
  EXPECT_EQ(d.request().query, "q=1");
  ConnectionInfo info;
  d.describeClient(info);
  EXPECT_EQ(info.scheme, "https");
}

TEST(UwsgiRequestDecoderTest, MalformedPacketsAreErrors) {
  const std::vector<std::string> bad = {
      packet({{"REQUEST_METHOD", "GET"}}, 5),                          // modifier1 5
      packet({{"REQUEST_URI", "/"}}),                                  // no method
      packet({{"REQUEST_METHOD", "G T"}, {"REQUEST_URI", "/"}}),       // not a token
      packet({{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "x"}}),       // not a path
      packet({{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/%zz"}}),    // bad escape
      packet({{"REQUEST_METHOD", "POST"}, {"REQUEST_URI", "/"}, {"CONTENT_LENGTH", "-1"}}),
      packet({{"REQUEST_METHOD", "POST"}, {"REQUEST_URI", "/"},
              {"CONTENT_LENGTH", "99999999999999999999"}}),
      std::string("\x00\x03\x00\x00" "\x05\x00" "A", 7),  // a key past the vars
      std::string("GET / HTTP/1.1\r\n\r\n"),              // HTTP sent to a uwsgi socket
  };
  for (const std::string& bytes : bad) {
    SCOPED_TRACE(bytes);
    for (size_t step : {size_t{1}, size_t{100000}}) {
      UwsgiRequestDecoder d;
      Fed fed = feed(d, bytes, step);
      ASSERT_FALSE(fed.events.empty());
      EXPECT_EQ(fed.events.back(), ParseEvent::kError);
      EXPECT_FALSE(d.errorReason().empty());
    }
  }
  // A modifier1 other than 0 is refused at its first byte, without waiting for the rest.
  UwsgiRequestDecoder d;
  size_t consumed = 0;
  EXPECT_EQ(d.parse(std::string("\x01", 1), consumed), ParseEvent::kError);
}

TEST(UwsgiRequestDecoderTest, AnIncompletePacketWaits) {
  std::string bytes = packet(kGet);
  UwsgiRequestDecoder d;
  size_t consumed = 0;
  EXPECT_EQ(d.parse(std::string_view(bytes).substr(0, bytes.size() - 1), consumed),
            ParseEvent::kNeedMore);
  EXPECT_EQ(consumed, 0u);
  EXPECT_EQ(d.headBufferLimit(), uwsgi::kMaxPacketSize);
}

}  // namespace
}  // namespace portico::http
