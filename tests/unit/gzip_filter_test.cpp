#include "http/gzip_filter.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <gtest/gtest.h>

#include "gunzip_support.h"
#include "fake_exchange.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "http/http_date.h"

namespace portico::http {
namespace {

// ---- helpers ---------------------------------------------------------------------------------

using portico::testing::gunzip;

// How many bytes a (possibly incomplete) gzip stream decodes to so far.
size_t gunzippedSoFar(std::string_view data) {
  z_stream z{};
  inflateInit2(&z, 31);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  size_t total = 0;
  while (true) {
    char buffer[65536];
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = sizeof buffer;
    int rc = inflate(&z, Z_SYNC_FLUSH);
    total += sizeof buffer - z.avail_out;
    if (rc != Z_OK || (z.avail_in == 0 && z.avail_out != 0)) break;
  }
  inflateEnd(&z);
  return total;
}

std::string fromHex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

// Text that compresses like a real page (words from a small vocabulary), deterministic.
std::string wordText(size_t size, unsigned seed = 7) {
  std::mt19937 rng(seed);
  std::vector<std::string> words;
  for (int i = 0; i < 300; ++i) {
    std::string w;
    int len = 2 + static_cast<int>(rng() % 8);
    for (int k = 0; k < len; ++k) w.push_back(static_cast<char>('a' + rng() % 16));
    words.push_back(w);
  }
  std::string out;
  while (out.size() < size) {
    out += words[rng() % words.size()];
    out += ' ';
  }
  out.resize(size);
  return out;
}

std::string encodeAll(std::string_view data, int level, std::optional<uint64_t> hint) {
  GzipEncoder encoder(level, hint);
  std::string out;
  encoder.write(data, out);
  encoder.finish(out);
  return out;
}

// ---- encoder ---------------------------------------------------------------------------------

TEST(GzipEncoder, RoundTripAtEveryLevel) {
  std::string text = wordText(200000);
  for (int level = 1; level <= 9; ++level) {
    std::string gz = encodeAll(text, level, std::nullopt);
    EXPECT_LT(gz.size(), text.size() / 2) << level;
    EXPECT_EQ(gunzip(gz), text) << level;
  }
}

TEST(GzipEncoder, EmptyInputIsAValidEmptyMember) {
  GzipEncoder encoder(6);
  std::string out;
  encoder.write("", out);
  EXPECT_TRUE(out.empty());
  encoder.finish(out);
  EXPECT_TRUE(encoder.finished());
  EXPECT_EQ(out, fromHex("1f8b080000000000000303000000000000000000"));
  EXPECT_EQ(gunzip(out), "");
  std::string again;
  encoder.finish(again);  // a second finish adds nothing
  encoder.write("late", again);
  EXPECT_TRUE(again.empty());
}

TEST(GzipEncoder, ManySmallChunksGiveTheSameBytesAsOneWrite) {
  std::string text = wordText(300000, 11);
  std::string whole = encodeAll(text, 6, std::nullopt);
  GzipEncoder encoder(6);
  std::string out;
  std::mt19937 rng(3);
  size_t at = 0;
  while (at < text.size()) {
    size_t n = std::min<size_t>(text.size() - at, 1 + rng() % 97);
    encoder.write(std::string_view(text).substr(at, n), out);
    at += n;
  }
  encoder.finish(out);
  EXPECT_EQ(out, whole);
  EXPECT_EQ(encoder.bytesIn(), text.size());
  EXPECT_EQ(encoder.bytesOut(), out.size());
}

TEST(GzipEncoder, LargeInputStreamsOutputBeforeTheEnd) {
  std::string text = wordText(8 * 1024 * 1024, 5);
  GzipEncoder encoder(1);
  std::string out;
  for (size_t at = 0; at < text.size(); at += 65536) {
    encoder.write(std::string_view(text).substr(at, 65536), out);
  }
  size_t beforeFinish = out.size();
  EXPECT_GT(beforeFinish, 0u) << "zlib released nothing before the end";
  encoder.finish(out);
  EXPECT_EQ(gunzip(out), text);
}

TEST(GzipEncoder, IncompressibleInputRoundTrips) {
  std::string noise(1 << 20, '\0');
  std::mt19937 rng(9);
  for (char& c : noise) c = static_cast<char>(rng());
  std::string gz = encodeAll(noise, 9, noise.size());
  EXPECT_EQ(gunzip(gz), noise);
}

TEST(GzipEncoder, MatchesNginxBytesForAKnownLength) {
  // nginx 1.22.1 (gzip on, level 1) serving "hello portico gzip " x 200 (3800 bytes): window
  // 2^12 and memLevel 5 for that length, zlib's gzip header (XFL 4 at level 1, OS 3).
  std::string text;
  for (int i = 0; i < 200; ++i) text += "hello portico gzip ";
  std::string nginx = fromHex(
      "1f8b0800000000000403cb48cdc9c95728c82f2ac94cce5748afca2c50c818151a0d89d134319a15460b85d1b2"
      "70b45618ad1f479b05a30da4d176e1680b79b46330da451a2a9d450092a70ed0d80e0000");
  EXPECT_EQ(encodeAll(text, 1, text.size()), nginx);
  EXPECT_EQ(gunzip(encodeAll(text, 1, std::nullopt)), text);
  // The window shrinks with the hint (nginx's memory sizing); output stays valid either way.
  std::string big = wordText(100000, 12);
  EXPECT_NE(encodeAll(big, 6, 300), encodeAll(big, 6, std::nullopt));
  EXPECT_EQ(gunzip(encodeAll(big, 6, 300)), big);
}

TEST(GzipEncoder, TinyLengthHintsStillWork) {
  for (uint64_t n : {1u, 2u, 19u, 20u, 250u, 763u, 70000u}) {
    std::string text = wordText(n, static_cast<unsigned>(n));
    EXPECT_EQ(gunzip(encodeAll(text, 9, n)), text) << n;
  }
}

// ---- request side: Accept-Encoding, MSIE 6, Content-Type -------------------------------------

TEST(GzipAcceptEncoding, AsNginxParsesIt) {
  // Expectations recorded from nginx 1.22.1 (tests/integration/test_gzip_nginx.py checks them).
  struct Case {
    const char* value;
    bool gzip;
  } cases[] = {
      {"gzip", true},
      {"gzip, deflate", true},
      {"gzip,deflate,br", true},
      {"deflate, gzip", true},
      {"deflate,gzip", true},
      {"GZIP", true},
      {"br;q=1, gzip;q=0.8", true},
      {"gzip;q=0", false},
      {"gzip;q=0.", false},
      {"gzip;q=0.000", false},
      {"gzip;q=0.001", true},
      {"gzip;q=0.0001", false},
      {"gzip; q=0.5", true},
      {"gzip;q=1.0", true},
      {"gzip;q=1.000", true},
      {"gzip;q=1.001", false},
      {"gzip;q=2", false},
      {"gzip;Q=0", false},
      {"gzip;Q=0.5", true},
      {"gzip ;q=0", false},
      {"gzip ;q=0.5", true},
      {"gzip;q =0.5", false},
      {"gzip;q=", true},  // "q=" then nothing: too short to read, nginx says no... see below
      {"gzip;q=0.5;level=1", false},
      {"gzip;q=0.5, deflate", true},
      {"gzip;level=1", false},
      {"gzip;", true},
      {"gzip,", true},
      {"deflate,gzip;q=0", false},
      {"deflate;q=0, gzip;q=1", true},
      {"x-gzip", false},
      {"x-gzip, gzip", true},
      {"*", false},
      {"identity", false},
      {"gzipx", false},
      {"gzip2, gzip", false},  // the first "gzip" token decides
      {"", false},
      {"gzi", false},
  };
  for (const Case& c : cases) {
    if (std::string_view(c.value) == "gzip;q=") continue;
    EXPECT_EQ(acceptEncodingAllowsGzip(c.value), c.gzip) << c.value;
  }
  // "gzip;q=": nginx needs two bytes after 'q' ("=" and a digit) and refuses otherwise.
  EXPECT_FALSE(acceptEncodingAllowsGzip("gzip;q="));
  EXPECT_FALSE(acceptEncodingAllowsGzip("gzip;q"));
  EXPECT_TRUE(acceptEncodingAllowsGzip("gzip;q=1"));
}

TEST(GzipAcceptEncoding, UsesTheFirstHeaderOfARequest) {
  Request request;
  EXPECT_FALSE(acceptEncodingAllowsGzip(request));
  request.headers = {{"Accept-Encoding", "identity"}, {"Accept-Encoding", "gzip"}};
  EXPECT_FALSE(acceptEncodingAllowsGzip(request));
  request.headers = {{"accept-encoding", "gzip"}, {"Accept-Encoding", "identity"}};
  EXPECT_TRUE(acceptEncodingAllowsGzip(request));
}

TEST(GzipMsie6, AsNginxDetectsIt) {
  struct Case {
    const char* ua;
    bool msie6;
  } cases[] = {
      {"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)", true},
      {"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)", false},
      {"Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)", true},
      {"Mozilla/4.0 (compatible; MSIE 4.01; Windows 95)", true},
      {"Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)", false},
      {"MSIE 6.0", true},
      {"MSIE 6.", false},  // too short: nginx wants 8 bytes from "MSIE "
      {"MSIE 6.0x", true},
      {"Opera MSIE 5.5 x", false},
      {"msie 6.0; windows", false},  // case-sensitive
      {"curl/7.88", false},
      {"", false},
  };
  for (const Case& c : cases) EXPECT_EQ(isMsie6(c.ua), c.msie6) << c.ua;
}

TEST(GzipMatchType, OnlyACharsetParameterIsCut) {
  EXPECT_EQ(gzipMatchType("text/plain"), "text/plain");
  EXPECT_EQ(gzipMatchType("text/plain; charset=utf-8"), "text/plain");
  EXPECT_EQ(gzipMatchType("text/plain;charset=utf-8"), "text/plain");
  EXPECT_EQ(gzipMatchType("text/plain;  CHARSET=utf-8"), "text/plain");
  EXPECT_EQ(gzipMatchType("text/plain ; charset=utf-8"), "text/plain ");
  EXPECT_EQ(gzipMatchType("text/plain; foo=bar"), "text/plain; foo=bar");
  EXPECT_EQ(gzipMatchType("text/plain; a=b; charset=x"), "text/plain; a=b");
  EXPECT_EQ(gzipMatchType("text/plain;"), "text/plain;");
  EXPECT_EQ(gzipMatchType("text/plain; "), "text/plain; ");
  EXPECT_EQ(gzipMatchType(""), "");
}

// ---- the decision table ----------------------------------------------------------------------

config::GzipSettings baseSettings() {
  config::GzipSettings s;
  s.enabled = true;
  s.types = {"text/plain", "text/css"};
  s.minLength = 100;
  s.vary = true;
  return s;
}

GzipPolicy compilePolicy(const config::GzipSettings& settings) {
  std::string error;
  std::optional<GzipPolicy> policy = GzipPolicy::compile(settings, error);
  EXPECT_TRUE(policy.has_value()) << error;
  return std::move(*policy);
}

struct DecisionCase {
  const char* name;
  std::function<void(config::GzipSettings&)> settings;
  std::string method = "GET";
  int minor = 1;
  std::vector<Header> request;
  int status = 200;
  std::vector<Header> response;
  std::optional<uint64_t> length = 3800;
  GzipSource source = GzipSource::kUpstream;
  bool vary = false;
  bool compress = false;
};

constexpr std::time_t kNow = 1800000000;

void runDecisionCases(const std::vector<DecisionCase>& cases) {
  for (const DecisionCase& c : cases) {
    config::GzipSettings settings = baseSettings();
    if (c.settings) c.settings(settings);
    GzipPolicy policy = compilePolicy(settings);
    Request request;
    request.method = c.method;
    request.versionMinor = c.minor;
    request.headers = c.request;
    ResponseHead head;
    head.status = c.status;
    head.headers = c.response;
    head.contentLength = c.length;
    GzipDecision d = policy.decide(request, head, c.source, kNow);
    EXPECT_EQ(d.vary, c.vary) << c.name;
    EXPECT_EQ(d.compress, c.compress) << c.name;
  }
}

const Header kGzip{"Accept-Encoding", "gzip"};
const Header kVia{"Via", "1.1 proxy"};
const Header kPlain{"Content-Type", "text/plain"};

auto proxied(std::vector<std::string> values) {
  return [values](config::GzipSettings& s) { s.proxied = values; };
}

TEST(GzipDecision, StatusTypeLengthAndEncoding) {
  runDecisionCases({
      {"200 text/plain", {}, "GET", 1, {kGzip}, 200, {kPlain}, 3800, {}, true, true},
      {"client without gzip still gets Vary", {}, "GET", 1, {}, 200, {kPlain}, 3800, {}, true,
       false},
      {"gzip off", [](auto& s) { s.enabled = false; }, "GET", 1, {kGzip}, 200, {kPlain}, 3800, {},
       false, false},
      {"gzip_vary off", [](auto& s) { s.vary = false; }, "GET", 1, {kGzip}, 200, {kPlain}, 3800,
       {}, false, true},
      {"403", {}, "GET", 1, {kGzip}, 403, {kPlain}, 3800, {}, true, true},
      {"404", {}, "GET", 1, {kGzip}, 404, {kPlain}, 3800, {}, true, true},
      {"201", {}, "GET", 1, {kGzip}, 201, {kPlain}, 3800, {}, false, false},
      {"206", {}, "GET", 1, {kGzip}, 206, {kPlain}, 3800, {}, false, false},
      {"304", {}, "GET", 1, {kGzip}, 304, {kPlain}, std::nullopt, {}, false, false},
      {"204", {}, "GET", 1, {kGzip}, 204, {kPlain}, std::nullopt, {}, false, false},
      {"500", {}, "GET", 1, {kGzip}, 500, {kPlain}, 3800, {}, false, false},
      {"HEAD is decided as GET", {}, "HEAD", 1, {kGzip}, 200, {kPlain}, 3800, {}, true, true},
      {"text/html always", {}, "GET", 1, {kGzip}, 200, {{"Content-Type", "text/html"}}, 3800, {},
       true, true},
      {"type not listed", {}, "GET", 1, {kGzip}, 200, {{"Content-Type", "application/json"}},
       3800, {}, false, false},
      {"type case-insensitive", {}, "GET", 1, {kGzip}, 200, {{"Content-Type", "TEXT/Plain"}},
       3800, {}, true, true},
      {"config type case-insensitive", [](auto& s) { s.types = {"Application/JSON"}; }, "GET", 1,
       {kGzip}, 200, {{"Content-Type", "application/json"}}, 3800, {}, true, true},
      {"charset parameter", {}, "GET", 1, {kGzip}, 200,
       {{"Content-Type", "text/plain; charset=utf-8"}}, 3800, {}, true, true},
      {"other parameter", {}, "GET", 1, {kGzip}, 200, {{"Content-Type", "text/plain; foo=bar"}},
       3800, {}, false, false},
      {"no Content-Type", {}, "GET", 1, {kGzip}, 200, {}, 3800, {}, false, false},
      {"* and no Content-Type", [](auto& s) { s.types = {"*"}; }, "GET", 1, {kGzip}, 200, {},
       3800, {}, true, true},
      {"* and any type", [](auto& s) { s.types = {"*"}; }, "GET", 1, {kGzip}, 200,
       {{"Content-Type", "image/png"}}, 3800, {}, true, true},
      {"below gzip_min_length", {}, "GET", 1, {kGzip}, 200, {kPlain}, 99, {}, false, false},
      {"at gzip_min_length", {}, "GET", 1, {kGzip}, 200, {kPlain}, 100, {}, true, true},
      {"unknown length", {}, "GET", 1, {kGzip}, 200, {kPlain}, std::nullopt, {}, true, true},
      {"empty body", [](auto& s) { s.minLength = 0; }, "GET", 1, {kGzip}, 200, {kPlain}, 0, {},
       true, true},
      {"already encoded", {}, "GET", 1, {kGzip}, 200, {kPlain, {"Content-Encoding", "br"}}, 3800,
       {}, false, false},
      {"empty Content-Encoding", {}, "GET", 1, {kGzip}, 200, {kPlain, {"Content-Encoding", ""}},
       3800, {}, true, true},
  });
}

TEST(GzipDecision, RequestSide) {
  auto ua = [](const char* value) { return Header{"User-Agent", value}; };
  auto disable = [](std::vector<std::string> values) {
    return [values](config::GzipSettings& s) { s.disable = values; };
  };
  runDecisionCases({
      {"HTTP/1.0 below gzip_http_version 1.1", {}, "GET", 0, {kGzip}, 200, {kPlain}, 3800, {},
       true, false},
      {"HTTP/1.0 with gzip_http_version 1.0", [](auto& s) { s.httpVersionMinor = 0; }, "GET", 0,
       {kGzip}, 200, {kPlain}, 3800, {}, true, true},
      {"gzip;q=0", {}, "GET", 1, {{"Accept-Encoding", "gzip;q=0"}}, 200, {kPlain}, 3800, {}, true,
       false},
      {"gzip;q=0.001", {}, "GET", 1, {{"Accept-Encoding", "gzip;q=0.001"}}, 200, {kPlain}, 3800,
       {}, true, true},
      {"x-gzip", {}, "GET", 1, {{"Accept-Encoding", "x-gzip"}}, 200, {kPlain}, 3800, {}, true,
       false},
      {"disable regex", disable({"curl"}), "GET", 1, {kGzip, ua("curl/7.88")}, 200, {kPlain}, 3800,
       {}, true, false},
      {"disable regex is caseless", disable({"curl"}), "GET", 1, {kGzip, ua("CURL")}, 200,
       {kPlain}, 3800, {}, true, false},
      {"disable regex no match", disable({"^Wget"}), "GET", 1, {kGzip, ua("curl/7.88")}, 200,
       {kPlain}, 3800, {}, true, true},
      {"disable without User-Agent", disable({".*"}), "GET", 1, {kGzip}, 200, {kPlain}, 3800, {},
       true, true},
      {"msie6", disable({"msie6"}), "GET", 1,
       {kGzip, ua("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)")}, 200, {kPlain}, 3800, {},
       true, false},
      {"msie6 SV1", disable({"msie6"}), "GET", 1,
       {kGzip, ua("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)")}, 200, {kPlain}, 3800,
       {}, true, true},
      {"msie6 is not a regex", disable({"msie6"}), "GET", 1, {kGzip, ua("msie6 fan")}, 200,
       {kPlain}, 3800, {}, true, true},
      {"msie6 without the setting", {}, "GET", 1,
       {kGzip, ua("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)")}, 200, {kPlain}, 3800, {},
       true, true},
  });
}

TEST(GzipDecision, ProxiedRequests) {
  const std::string past = formatHttpDate(kNow - 3600);
  const std::string future = formatHttpDate(kNow + 3600);
  const Header lastModified{"Last-Modified", formatHttpDate(kNow - 86400)};
  const Header etag{"ETag", "\"x\""};
  const Header auth{"Authorization", "Basic eDp5"};
  auto cc = [](const char* v) { return Header{"Cache-Control", v}; };
  runDecisionCases({
      {"Via with gzip_proxied off", {}, "GET", 1, {kGzip, kVia}, 200, {kPlain}, 3800, {}, true,
       false},
      {"no Via ignores gzip_proxied", {}, "GET", 1, {kGzip}, 200, {kPlain, cc("private")}, 3800, {},
       true, true},
      {"any", proxied({"any"}), "GET", 1, {kGzip, kVia}, 200, {kPlain, cc("public")}, 3800, {},
       true, true},
      {"off wins over any", proxied({"off", "any"}), "GET", 1, {kGzip, kVia}, 200, {kPlain}, 3800,
       {}, true, false},
      {"expired, nothing to judge: yes", proxied({"expired"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain}, 3800, {}, true, true},
      {"expired, past Expires", proxied({"expired"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain, {"Expires", past}}, 3800, {}, true, true},
      {"expired, future Expires", proxied({"expired"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain, {"Expires", future}}, 3800, {}, true, false},
      {"expired, bad Expires", proxied({"expired"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain, {"Expires", "0"}}, 3800, {}, true, false},
      {"expired, Date later than Expires", proxied({"expired"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain, {"Expires", future}, {"Date", formatHttpDate(kNow + 7200)}}, 3800, {}, true, true},
      {"expired, bad Date", proxied({"expired"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain, {"Expires", past}, {"Date", "soon"}}, 3800, {}, true, false},
      {"Expires without expired", proxied({"no-cache"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain, {"Expires", past}, cc("no-cache")}, 3800, {}, true, false},
      {"no-cache", proxied({"no-cache"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain, cc("no-cache, private")}, 3800, {}, true, true},
      {"no-cache not present", proxied({"no-cache"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain, cc("max-age=5")}, 3800, {}, true, false},
      {"no-store later in the list", proxied({"no-store"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain, cc("max-age=0, no-store")}, 3800, {}, true, true},
      {"no-store upper case", proxied({"no-store"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain, cc("NO-STORE")}, 3800, {}, true, true},
      {"no-store on a second line", proxied({"no-store"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain, cc("max-age=0"), cc("no-store")}, 3800, {}, true, true},
      {"private", proxied({"private"}), "GET", 1, {kGzip, kVia}, 200, {kPlain, cc("private")}, 3800,
       {}, true, true},
      {"private=\"x\" is not private", proxied({"private"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain, cc("private=\"x\"")}, 3800, {}, true, false},
      {"Cache-Control decides before Last-Modified", proxied({"private", "no_last_modified"}),
       "GET", 1, {kGzip, kVia}, 200, {kPlain, cc("public")}, 3800, {}, true, false},
      {"no_last_modified without it", proxied({"no_last_modified"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain}, 3800, {}, true, true},
      {"no_last_modified with it", proxied({"no_last_modified"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain, lastModified}, 3800, {}, true, false},
      {"no_last_modified, static file", proxied({"no_last_modified"}), "GET", 1, {kGzip, kVia},
       200, {kPlain, lastModified, etag}, 3800, GzipSource::kStaticFile, true, true},
      {"no_etag with it", proxied({"no_etag"}), "GET", 1, {kGzip, kVia}, 200, {kPlain, etag}, 3800,
       {}, true, false},
      {"no_etag, static file", proxied({"no_etag"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain, lastModified, etag}, 3800, GzipSource::kStaticFile, true, false},
      {"no_etag without it", proxied({"no_etag"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain, lastModified}, 3800, {}, true, true},
      {"auth with Authorization", proxied({"auth"}), "GET", 1, {kGzip, kVia, auth}, 200,
       {kPlain, cc("public")}, 3800, {}, true, true},
      {"auth without Authorization", proxied({"auth"}), "GET", 1, {kGzip, kVia}, 200,
       {kPlain, cc("public")}, 3800, {}, true, false},
      {"proxied but disabled by User-Agent", [](auto& s) {
         s.proxied = {"any"};
         s.disable = {"bot"};
       }, "GET", 1, {kGzip, kVia, {"User-Agent", "a bot"}}, 200, {kPlain}, 3800, {}, true, false},
  });
}

TEST(GzipPolicy, CompileErrorsAreReported) {
  std::string error;
  config::GzipSettings s = baseSettings();
  s.disable = {"(unclosed"};
  EXPECT_FALSE(GzipPolicy::compile(s, error).has_value());
  EXPECT_NE(error.find("(unclosed"), std::string::npos) << error;
  s = baseSettings();
  s.proxied = {"sometimes"};
  error.clear();
  EXPECT_FALSE(GzipPolicy::compile(s, error).has_value());
  EXPECT_NE(error.find("sometimes"), std::string::npos) << error;
}

TEST(GzipPolicy, GzipOkWithAnEmptyHeadIsWhatGzipStaticAsks) {
  GzipPolicy policy = compilePolicy(baseSettings());
  Request request;
  request.headers = {kGzip};
  EXPECT_TRUE(policy.gzipOk(request, ResponseHead{}));
  request.versionMinor = 0;
  EXPECT_FALSE(policy.gzipOk(request, ResponseHead{}));
}

// ---- header edits ----------------------------------------------------------------------------

std::vector<std::string> values(const ResponseHead& head, std::string_view name) {
  std::vector<std::string> out;
  for (const Header& h : head.headers) {
    if (iequals(h.name, name)) out.push_back(h.value);
  }
  return out;
}

TEST(GzipHeaders, CompressingEditsTheHead) {
  GzipPolicy policy = compilePolicy(baseSettings());
  Request request;
  request.headers = {kGzip};
  ResponseHead head;
  head.headers = {kPlain, {"ETag", "\"5f-ed8\""}, {"Accept-Ranges", "bytes"},
                  {"Content-Length", "3800"}, {"Last-Modified", "x"}};
  head.contentLength = 3800;
  EXPECT_TRUE(maybeCompress(policy, request, head));
  EXPECT_EQ(head.contentLength, std::nullopt);
  EXPECT_EQ(values(head, "Content-Encoding"), std::vector<std::string>{"gzip"});
  EXPECT_EQ(values(head, "Vary"), std::vector<std::string>{"Accept-Encoding"});
  EXPECT_EQ(values(head, "ETag"), std::vector<std::string>{"W/\"5f-ed8\""});
  EXPECT_TRUE(values(head, "Accept-Ranges").empty());
  EXPECT_TRUE(values(head, "Content-Length").empty());
  EXPECT_EQ(values(head, "Last-Modified"), std::vector<std::string>{"x"});
}

TEST(GzipHeaders, EtagForms) {
  GzipPolicy policy = compilePolicy(baseSettings());
  Request request;
  request.headers = {kGzip};
  struct Case {
    const char* etag;
    std::vector<std::string> after;
  } cases[] = {
      {"\"abc\"", {"W/\"abc\""}},
      {"W/\"abc\"", {"W/\"abc\""}},
      {"abc", {}},  // nginx drops an ETag it cannot weaken
      {"", {}},
      {"W/", {}},
  };
  for (const Case& c : cases) {
    ResponseHead head;
    head.headers = {kPlain, {"ETag", c.etag}};
    EXPECT_TRUE(maybeCompress(policy, request, head));
    EXPECT_EQ(values(head, "ETag"), c.after) << c.etag;
  }
}

TEST(GzipHeaders, VaryWithoutCompressionAndBeforeTheHandlersOwn) {
  GzipPolicy policy = compilePolicy(baseSettings());
  Request request;  // no Accept-Encoding
  ResponseHead head;
  head.headers = {kPlain, {"ETag", "\"a\""}, {"Vary", "Cookie"}, {"Accept-Ranges", "bytes"}};
  head.contentLength = 3800;
  EXPECT_FALSE(maybeCompress(policy, request, head));
  EXPECT_EQ(values(head, "Vary"), (std::vector<std::string>{"Accept-Encoding", "Cookie"}));
  EXPECT_EQ(head.contentLength, 3800u);
  EXPECT_EQ(values(head, "ETag"), std::vector<std::string>{"\"a\""});
  EXPECT_EQ(values(head, "Accept-Ranges"), std::vector<std::string>{"bytes"});

  ResponseHead already;  // a gzip_static reply said it already: one line
  already.headers = {kPlain, {"Vary", "accept-encoding"}};
  EXPECT_FALSE(maybeCompress(policy, request, already));
  EXPECT_EQ(values(already, "Vary").size(), 1u);
}

TEST(GzipHeaders, NothingChangesWhenNotGzipable) {
  GzipPolicy policy = compilePolicy(baseSettings());
  Request request;
  request.headers = {kGzip};
  ResponseHead head;
  head.status = 500;
  head.headers = {kPlain, {"ETag", "\"a\""}};
  head.contentLength = 5000;
  std::vector<Header> before = head.headers;
  EXPECT_FALSE(maybeCompress(policy, request, head));
  ASSERT_EQ(head.headers.size(), before.size());
  EXPECT_EQ(head.contentLength, 5000u);
}

// ---- the table nginx answered (tests/data/gzip_nginx_cases.tsv) ----------------------------

std::vector<std::string> split(std::string_view s, std::string_view sep) {
  std::vector<std::string> out;
  while (true) {
    size_t at = s.find(sep);
    out.emplace_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + sep.size());
  }
}

std::string percentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The server of tests/integration/test_gzip_nginx.py, location by location.
struct TableLocation {
  std::string prefix;
  GzipSource source;
  std::function<void(config::GzipSettings&)> settings;
};

const std::vector<TableLocation>& tableLocations() {
  static const std::vector<TableLocation> locations = {
      {"/dis/", GzipSource::kStaticFile, [](auto& s) { s.disable = {"curl", "msie6"}; }},
      {"/v10/", GzipSource::kStaticFile, [](auto& s) { s.httpVersionMinor = 0; }},
      {"/nlm/", GzipSource::kStaticFile, proxied({"no_last_modified"})},
      {"/netag/", GzipSource::kStaticFile, proxied({"no_etag"})},
      {"/up-any/", GzipSource::kUpstream, proxied({"any"})},
      {"/up-off/", GzipSource::kUpstream, proxied({"off"})},
      {"/up-exp/", GzipSource::kUpstream, proxied({"expired"})},
      {"/up-cache/", GzipSource::kUpstream, proxied({"no-cache", "no-store", "private"})},
      {"/up-nlm/", GzipSource::kUpstream, proxied({"no_last_modified"})},
      {"/up-netag/", GzipSource::kUpstream, proxied({"no_etag"})},
      {"/up-auth/", GzipSource::kUpstream, proxied({"auth"})},
      {"/", GzipSource::kStaticFile, {}},
  };
  return locations;
}

// The head portico's static handler gives `name` (before any Range), as the table's files are.
ResponseHead staticHead(const std::string& name, int expectedStatus) {
  ResponseHead head;
  if (expectedStatus == 404) {
    head.status = 404;
    head.headers = {{"Content-Type", "text/html"}};
    head.contentLength = errorPageBody(404).size();
    return head;
  }
  static const std::map<std::string, std::pair<const char*, uint64_t>> files = {
      {"a.txt", {"text/plain", 3800}}, {"a.html", {"text/html", 3800}},
      {"a.css", {"text/css", 3800}},   {"a.bin", {"application/octet-stream", 3800}},
      {"small.txt", {"text/plain", 4}}, {"empty.txt", {"text/plain", 0}}};
  auto file = files.at(name);
  head.headers = {{"Content-Type", file.first},
                  {"Last-Modified", "Mon, 30 Nov 2026 13:08:54 GMT"},
                  {"ETag", "\"6b0d7566-ed8\""}};
  if (expectedStatus == 304) {
    head.status = 304;
    return head;
  }
  head.headers.push_back({"Accept-Ranges", "bytes"});
  head.contentLength = file.second;
  return head;
}

TEST(GzipNginxTable, PorticoDecidesAsNginxAnswered) {
  std::ifstream table(PORTICO_SOURCE_DIR "/tests/data/gzip_nginx_cases.tsv");
  ASSERT_TRUE(table.good());
  std::string line;
  int rows = 0;
  while (std::getline(table, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols = split(line, "\t");
    ASSERT_EQ(cols.size(), 5u) << line;
    std::vector<std::string> expected = split(cols[4], " ");
    ASSERT_EQ(expected.size(), 6u) << line;
    const int expectedStatus = std::stoi(expected[0]);
    ++rows;

    Request request;
    request.method = cols[0];
    request.target = cols[1];
    request.versionMinor = cols[2] == "1.0" ? 0 : 1;
    if (cols[3] != "-") {
      for (const std::string& h : split(cols[3], " | ")) {
        size_t colon = h.find(": ");
        request.headers.push_back({h.substr(0, colon), h.substr(colon + 2)});
      }
    }
    const TableLocation* location = nullptr;
    for (const TableLocation& l : tableLocations()) {
      if (cols[1].starts_with(l.prefix)) {
        location = &l;
        break;
      }
    }
    config::GzipSettings settings = baseSettings();
    if (location->settings) location->settings(settings);
    GzipPolicy policy = compilePolicy(settings);

    ResponseHead head;
    if (location->source == GzipSource::kStaticFile) {
      head = staticHead(cols[1].substr(location->prefix.size()), expectedStatus);
    } else {
      head.contentLength = 3800;
      std::string query = cols[1].substr(cols[1].find('?') + 1);
      for (const std::string& pair : split(query, "&")) {
        size_t eq = pair.find('=');
        std::string name = percentDecode(pair.substr(0, eq));
        std::string value = percentDecode(pair.substr(eq + 1));
        if (name == "status") {
          head.status = std::stoi(value);
        } else {
          head.headers.push_back({name, value});
        }
      }
    }

    if (request.header("Range") != nullptr) {
      // The static handler asks before honouring Range: compress means the whole file, gzipped
      // (nginx's 200); otherwise its 206 carries Vary when the decision says so.
      GzipDecision d = policy.decide(request, head, location->source);
      EXPECT_EQ(d.compress, expected[1] == "gzip") << line;
      EXPECT_EQ(d.vary, expected[2] == "vary") << line;
      EXPECT_EQ(d.compress ? 200 : 206, expectedStatus) << line;
      continue;
    }
    bool compress = maybeCompress(policy, request, head, location->source);
    std::vector<std::string> etags = values(head, "ETag");
    std::vector<std::string> varies = values(head, "Vary");
    std::vector<std::string> got = {
        std::to_string(head.status),
        compress && values(head, "Content-Encoding") == std::vector<std::string>{"gzip"} ? "gzip"
                                                                                           : "-",
        std::find(varies.begin(), varies.end(), "Accept-Encoding") != varies.end() ? "vary" : "-",
        etags.empty() ? "none" : etags[0].starts_with("W/") ? "weak" : "strong",
        head.contentLength ? "length" : "-",
        values(head, "Accept-Ranges").empty() ? "-" : "ranges",
    };
    EXPECT_EQ(got, expected) << line;
  }
  EXPECT_GE(rows, 60);
}

// ---- the Exchange decorator ------------------------------------------------------------------

// The inner exchange (the connection's stand-in): writability is set by the test, and the
// stored callbacks are fired by it.
struct FakeInner : portico::unit::FakeExchange {
  FakeInner() { storeWritable = true; }
};

// A temporary file holding `data`, opened for reading.
std::shared_ptr<const UniqueFd> tempFile(const std::string& data) {
  char path[] = "/tmp/portico-gzip-test-XXXXXX";
  int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  ::unlink(path);
  size_t at = 0;
  while (at < data.size()) {
    ssize_t n = ::write(fd, data.data() + at, data.size() - at);
    EXPECT_GT(n, 0);
    at += static_cast<size_t>(n);
  }
  return std::make_shared<const UniqueFd>(fd);
}

// Runs the loop until `done()` or a bounded number of turns; `eachTurn` plays the client.
void runLoop(event::EventLoop& loop, const std::function<bool()>& done,
             const std::function<void()>& eachTurn = {}) {
  int turns = 0;
  std::function<void()> tick = [&] {
    if (eachTurn) eachTurn();
    if (done() || ++turns > 5000) {
      loop.stop();
      return;
    }
    loop.post(tick);
  };
  loop.post(tick);
  loop.run();
  EXPECT_LE(turns, 5000) << "did not finish";
}

class GzipExchangeTest : public ::testing::Test {
 protected:
  GzipExchangeTest() {
    inner.req.method = "GET";
    inner.req.headers = {kGzip};
    settings = baseSettings();
  }
  GzipPolicy& policy() {
    if (!policy_) policy_ = compilePolicy(settings);
    return *policy_;
  }
  ResponseHead plainHead(std::optional<uint64_t> length) {
    ResponseHead head;
    head.headers = {kPlain, {"ETag", "\"e\""}, {"Accept-Ranges", "bytes"}};
    head.contentLength = length;
    return head;
  }

  event::EventLoop loop;
  FakeInner inner;
  config::GzipSettings settings;
  std::optional<GzipPolicy> policy_;
};

TEST_F(GzipExchangeTest, MemoryChunksAreCompressed) {
  std::string text = wordText(50000);
  GzipExchange gz(inner, policy(), loop);
  bool done = false;
  gz.onDone([&] { done = true; });
  gz.sendHead(plainHead(text.size()));
  ASSERT_TRUE(gz.compressing());
  ASSERT_TRUE(inner.head);
  EXPECT_EQ(inner.head->contentLength, std::nullopt);
  for (size_t at = 0; at < text.size(); at += 1000) {
    gz.sendBody(BodyChunk(text.substr(at, 1000)));
  }
  gz.sendBody(BodyChunk(std::string()));
  EXPECT_FALSE(inner.finished);
  gz.finish();
  EXPECT_TRUE(inner.finished);
  EXPECT_TRUE(done);
  EXPECT_TRUE(gz.done());
  EXPECT_EQ(gunzip(inner.body), text);
  EXPECT_EQ(inner.body, encodeAll(text, settings.level, text.size()));  // nginx's bytes
  gz.sendBody(BodyChunk(std::string("late")));  // ignored after finish
  gz.finish();
}

TEST_F(GzipExchangeTest, RespondWithAnEmptyBodyStillSendsAGzipMember) {
  settings.minLength = 0;
  GzipExchange gz(inner, policy(), loop);
  ResponseHead head = plainHead(std::nullopt);
  gz.respond(std::move(head), "");
  EXPECT_TRUE(inner.finished);
  EXPECT_EQ(gunzip(inner.body), "");
}

TEST_F(GzipExchangeTest, NotCompressingPassesEverythingThrough) {
  inner.req.headers.clear();  // no Accept-Encoding
  std::string text = wordText(5000);
  auto file = tempFile(text);
  GzipExchange gz(inner, policy(), loop);
  bool done = false;
  gz.onDone([&] { done = true; });
  gz.sendHead(plainHead(text.size() + 5));
  EXPECT_FALSE(gz.compressing());
  EXPECT_EQ(inner.head->contentLength, text.size() + 5);
  gz.sendBody(BodyChunk(std::string("hello")));
  gz.sendBody(BodyChunk(FileRange{file, 0, text.size()}));
  ASSERT_EQ(inner.chunks.size(), 2u);
  EXPECT_TRUE(inner.chunks[1].isFile());  // still sendfile
  gz.finish();
  EXPECT_TRUE(inner.finished);
  EXPECT_TRUE(done);
}

TEST_F(GzipExchangeTest, HeadRequestGetsTheGzipHeadersAndNoBody) {
  inner.req.method = "HEAD";
  GzipExchange gz(inner, policy(), loop);
  gz.sendHead(plainHead(3800));
  EXPECT_TRUE(gz.compressing());
  EXPECT_EQ(values(*inner.head, "Content-Encoding"), std::vector<std::string>{"gzip"});
  gz.sendBody(BodyChunk(std::string(3800, 'x')));
  gz.finish();
  EXPECT_EQ(inner.bodyCalls, 0u);
  EXPECT_TRUE(inner.finished);
}

TEST_F(GzipExchangeTest, FileRangeIsReadOnlyWhileTheClientKeepsUp) {
  const std::string text = wordText(6 * 1024 * 1024, 21);
  auto file = tempFile("HEAD" + text + "TAIL");
  inner.highWatermark = 64 * 1024;
  GzipExchange gz(inner, policy(), loop);
  gz.sendHead(plainHead(text.size() + 3));
  gz.sendBody(BodyChunk(std::string("<<<")));
  inner.canWrite = false;  // the client is slow from the start
  gz.sendBody(BodyChunk(FileRange{file, 4, text.size()}));
  gz.finish();  // the static handler finishes at once; the exchange carries on
  EXPECT_FALSE(inner.finished);
  EXPECT_FALSE(gz.writable());
  // Nothing of the file was read while the client could not take more.
  EXPECT_LE(gunzippedSoFar(inner.body), 3u);
  ASSERT_TRUE(inner.writableCallback);

  // Each time the client drains, at most one turn's input budget is read.
  size_t previous = gunzippedSoFar(inner.body);
  int rounds = 0;
  while (!inner.finished && rounds < 1000) {
    ++rounds;
    inner.drain();  // the client read everything; the exchange refills the queue
    size_t now = gunzippedSoFar(inner.body);
    EXPECT_LE(now - previous, GzipExchange::kInputPerTurn + GzipExchange::kReadBlock);
    previous = now;
  }
  EXPECT_TRUE(inner.finished);
  EXPECT_GT(rounds, 5);
  EXPECT_EQ(gunzip(inner.body), "<<<" + text);
}

TEST_F(GzipExchangeTest, CompressibleFileYieldsToTheLoopBetweenTurns) {
  const std::string zeros(8 * 1024 * 1024, '\0');
  auto file = tempFile(zeros);
  GzipExchange gz(inner, policy(), loop);
  gz.sendHead(plainHead(zeros.size()));
  gz.sendBody(BodyChunk(FileRange{file, 0, zeros.size()}));
  gz.finish();
  // The output queue never fills, yet one call must not compress 8 MiB.
  EXPECT_FALSE(inner.finished);
  EXPECT_FALSE(gz.writable());
  int turns = 0;
  runLoop(loop, [&] { return inner.finished; }, [&] { ++turns; });
  EXPECT_TRUE(inner.finished);
  EXPECT_GE(turns, 4);
  EXPECT_EQ(gunzip(inner.body), zeros);
}

TEST_F(GzipExchangeTest, HandlerWritableCallbackWaitsForThePendingFile) {
  const std::string text = wordText(3 * 1024 * 1024, 4);
  auto file = tempFile(text);
  inner.highWatermark = 64 * 1024;
  GzipExchange gz(inner, policy(), loop);
  gz.sendHead(plainHead(std::nullopt));
  inner.canWrite = false;
  gz.sendBody(BodyChunk(FileRange{file, 0, text.size()}));
  EXPECT_FALSE(gz.writable());
  int fired = 0;
  gz.onWritable([&] {
    ++fired;
    EXPECT_TRUE(gz.writable());
    gz.sendBody(BodyChunk(std::string("END")));
    gz.finish();
  });
  int rounds = 0;
  while (!inner.finished && rounds++ < 1000) inner.drain();
  EXPECT_EQ(fired, 1);
  EXPECT_EQ(gunzip(inner.body), text + "END");
}

TEST_F(GzipExchangeTest, ClientGoneMidFileStopsEverything) {
  const std::string text = wordText(4 * 1024 * 1024, 8);
  auto file = tempFile(text);
  inner.highWatermark = 64 * 1024;
  auto owned = std::make_unique<GzipExchange>(inner, policy(), loop);
  GzipExchange& gz = *owned;
  bool done = false;
  gz.onDone([&] { done = true; });
  int handlerAborts = 0;
  gz.onAbort([&] { ++handlerAborts; });
  gz.sendHead(plainHead(std::nullopt));
  inner.canWrite = false;
  gz.sendBody(BodyChunk(FileRange{file, 0, text.size()}));
  inner.drain();
  ASSERT_FALSE(inner.finished);
  ASSERT_FALSE(gz.writable());
  ASSERT_TRUE(inner.abortCallback);
  size_t sent = inner.body.size();
  inner.abortCallback();  // the connection closes: the handler (not finished) hears of it
  EXPECT_EQ(handlerAborts, 1);
  EXPECT_TRUE(done);
  EXPECT_TRUE(gz.done());
  EXPECT_FALSE(gz.writable());
  // Nothing more reaches the dead inner exchange.
  gz.sendBody(BodyChunk(std::string("more")));
  gz.finish();
  inner.drain();
  EXPECT_EQ(inner.body.size(), sent);
  EXPECT_FALSE(inner.finished);
  owned.reset();
  inner.drain();  // a stale registration is harmless after destruction
}

TEST_F(GzipExchangeTest, ClientGoneAfterTheHandlerFinishedIsNotReportedToIt) {
  const std::string text = wordText(4 * 1024 * 1024, 8);
  auto file = tempFile(text);
  GzipExchange gz(inner, policy(), loop);
  int handlerAborts = 0;
  gz.onAbort([&] { ++handlerAborts; });
  gz.sendHead(plainHead(std::nullopt));
  inner.canWrite = false;
  gz.sendBody(BodyChunk(FileRange{file, 0, text.size()}));
  gz.finish();
  inner.abortCallback();
  EXPECT_EQ(handlerAborts, 0);
  EXPECT_TRUE(gz.done());
}

TEST_F(GzipExchangeTest, TruncatedFileAbortsTheResponse) {
  auto file = tempFile(wordText(1000));
  GzipExchange gz(inner, policy(), loop);
  gz.sendHead(plainHead(std::nullopt));
  gz.sendBody(BodyChunk(FileRange{file, 0, 5000}));  // promises more than the file holds
  gz.finish();
  EXPECT_TRUE(inner.aborted);
  EXPECT_FALSE(inner.finished);
  EXPECT_TRUE(gz.done());
}

TEST_F(GzipExchangeTest, HandlerAbortForwards) {
  GzipExchange gz(inner, policy(), loop);
  bool done = false;
  gz.onDone([&] { done = true; });
  gz.sendHead(plainHead(std::nullopt));
  gz.sendBody(BodyChunk(wordText(1000)));
  gz.abort();
  EXPECT_TRUE(inner.aborted);
  EXPECT_TRUE(done);
}

TEST_F(GzipExchangeTest, ForwardsRequestConnectionAndBodyReader) {
  GzipExchange gz(inner, policy(), loop);
  inner.conn.peerAddress = "10.0.0.1";
  EXPECT_EQ(&gz.request(), &inner.req);
  EXPECT_EQ(gz.connection().peerAddress, "10.0.0.1");
  class Reader : public BodyReader {
    void onBodyData(std::string_view) override {}
    void onBodyEnd() override {}
  } reader;
  gz.readBody(&reader);
  EXPECT_EQ(inner.reader, &reader);
}

}  // namespace
}  // namespace portico::http
