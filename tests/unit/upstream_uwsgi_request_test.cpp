// uwsgi_pass's request packet (upstream/uwsgi_request.h): the params in order, the headers as
// HTTP_* vars with nginx's rules (replaced by HTTP_ params, invalid names dropped, duplicates
// kept), if_not_empty, the modifiers and the 64 KiB bound. Read back with the uwsgi codec.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "http/uwsgi_codec.h"
#include "upstream/uwsgi_request.h"

namespace portico::upstream {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs varsOf(const std::string& packet, uint8_t* m1 = nullptr, uint8_t* m2 = nullptr) {
  http::uwsgi::Packet p;
  EXPECT_EQ(http::uwsgi::findPacket(packet, p), http::uwsgi::PacketStatus::kComplete);
  EXPECT_EQ(p.size, packet.size());
  if (m1) *m1 = p.modifier1;
  if (m2) *m2 = p.modifier2;
  std::vector<http::uwsgi::Var> vars;
  std::string error;
  EXPECT_TRUE(http::uwsgi::parseVars(p.vars, vars, error)) << error;
  Pairs out;
  for (const auto& v : vars) out.emplace_back(std::string(v.key), std::string(v.value));
  return out;
}

TEST(UwsgiRequestTest, HeaderKeysAsNginx) {
  EXPECT_EQ(uwsgiHeaderKey("Host"), "HTTP_HOST");
  EXPECT_EQ(uwsgiHeaderKey("x-forwarded-for"), "HTTP_X_FORWARDED_FOR");
  EXPECT_EQ(uwsgiHeaderKey("X-Req-2"), "HTTP_X_REQ_2");
  EXPECT_EQ(uwsgiHeaderKey("x_under"), "HTTP_X_UNDER");  // underscores_in_headers on
}

TEST(UwsgiRequestTest, ParamsThenHeadersInOrder) {
  std::vector<http::Header> headers = {{"Host", "example.com"},
                                       {"Accept", "*/*"},
                                       {"X-Dup", "1"},
                                       {"X-Dup", "2"},
                                       {"X_Kept", "by the parser's rule"}};
  std::string out, error;
  ASSERT_TRUE(buildUwsgiPacket({{"REQUEST_METHOD", "GET"}, {"CONTENT_LENGTH", ""}}, &headers, {},
                               0, 0, out, error));
  EXPECT_EQ(varsOf(out), (Pairs{{"REQUEST_METHOD", "GET"},
                                {"CONTENT_LENGTH", ""},
                                {"HTTP_HOST", "example.com"},
                                {"HTTP_ACCEPT", "*/*"},
                                {"HTTP_X_DUP", "1"},
                                {"HTTP_X_DUP", "2"},
                                {"HTTP_X_KEPT", "by the parser's rule"}}));
}

TEST(UwsgiRequestTest, HttpParamsReplaceTheirHeaders) {
  std::vector<http::Header> headers = {{"Host", "evil:81"}, {"X-Real-Ip", "1.2.3.4"},
                                       {"Accept", "a"}};
  std::string out, error;
  ASSERT_TRUE(buildUwsgiPacket({{"HTTP_HOST", "example.com"}}, &headers, {"host", "x_real_ip"},
                               0, 0, out, error));
  EXPECT_EQ(varsOf(out), (Pairs{{"HTTP_HOST", "example.com"}, {"HTTP_ACCEPT", "a"}}));
}

TEST(UwsgiRequestTest, NoHeadersWhenNotPassed) {
  std::vector<http::Header> headers = {{"Host", "h"}};
  std::string out, error;
  ASSERT_TRUE(buildUwsgiPacket({{"A", "b"}}, nullptr, {}, 0, 0, out, error));
  EXPECT_EQ(varsOf(out), (Pairs{{"A", "b"}}));
}

TEST(UwsgiRequestTest, ModifiersInTheHead) {
  std::string out, error;
  ASSERT_TRUE(buildUwsgiPacket({{"A", "b"}}, nullptr, {}, 5, 200, out, error));
  uint8_t m1 = 0, m2 = 0;
  varsOf(out, &m1, &m2);
  EXPECT_EQ(m1, 5);
  EXPECT_EQ(m2, 200);
  EXPECT_EQ(static_cast<uint8_t>(out[1]) | (static_cast<uint8_t>(out[2]) << 8),
            static_cast<int>(out.size() - 4));
}

TEST(UwsgiRequestTest, TooBigIsRefusedWithNginxMessage) {
  std::vector<http::Header> headers;
  for (int i = 0; i < 20; ++i) headers.push_back({"X-H" + std::to_string(i), std::string(4000, 'v')});
  std::string out = "untouched", error;
  EXPECT_FALSE(buildUwsgiPacket({}, &headers, {}, 0, 0, out, error));
  EXPECT_EQ(out, "untouched");
  EXPECT_EQ(error.rfind("uwsgi request is too big: ", 0), 0u) << error;
  // A value longer than a u16 cannot be encoded at all.
  std::vector<http::Header> huge = {{"X-Big", std::string(70000, 'v')}};
  EXPECT_FALSE(buildUwsgiPacket({}, &huge, {}, 0, 0, out, error));
  // Just under the bound fits.
  std::vector<http::Header> fits = {{"X", std::string(65535 - 4 - 6, 'v')}};
  EXPECT_TRUE(buildUwsgiPacket({}, &fits, {}, 0, 0, out, error)) << error;
  EXPECT_EQ(out.size(), 4u + 65535u);
}

TEST(UwsgiRequestTest, CompiledParamsExpandAndSkip) {
  std::vector<config::UwsgiParam> params = {
      {"QUERY_STRING", "$query_string", false},
      {"HTTPS", "$https", true},          // empty: not sent
      {"SERVER_SOFTWARE", "portico", false},
      {"HTTP_COOKIE", "", false},          // hides the Cookie header, sends nothing
      {"HTTP_HOST", "$host", false},
      {"EMPTY", "", false},                // empty but sent
  };
  UwsgiParams compiled;
  std::string error;
  ASSERT_TRUE(compiled.compile(params, {}, nullptr, error)) << error;
  std::vector<http::Header> headers = {{"Cookie", "a=b"}, {"Host", "raw"}, {"User-Agent", "t"}};
  auto expand = [](const http::Template& t) -> std::string {
    if (t.source() == "$query_string") return "a=1";
    if (t.source() == "$host") return "example.com";
    return "";
  };
  std::string out;
  ASSERT_TRUE(compiled.build(expand, &headers, 0, 0, out, error)) << error;
  EXPECT_EQ(varsOf(out), (Pairs{{"QUERY_STRING", "a=1"},
                                {"SERVER_SOFTWARE", "portico"},
                                {"HTTP_HOST", "example.com"},
                                {"EMPTY", ""},
                                {"HTTP_USER_AGENT", "t"}}));
}

TEST(UwsgiRequestTest, UnknownVariableIsAnError) {
  UwsgiParams compiled;
  std::string error;
  EXPECT_FALSE(compiled.compile({{"X", "$no_such_variable_here", false}}, {}, nullptr, error));
  EXPECT_NE(error.find("no_such_variable_here"), std::string::npos) << error;
}

}  // namespace
}  // namespace portico::upstream
