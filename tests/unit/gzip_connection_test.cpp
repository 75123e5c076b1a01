// The gzip filter as the server plugs it: a site whose static location has `gzip on`, answered
// by the pipeline's SiteHandler behind a real Connection on a socketpair, with a client that
// reads slowly or goes away.

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <gtest/gtest.h>

#include "gunzip_support.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "http/http1_session.h"
#include "http/gzip_filter.h"
#include "config/site_from_flags.h"
#include "pipeline/site_handler.h"
#include "static/static_handler.h"
#include "transport/plain_transport.h"

namespace portico::http {
namespace {

namespace fs = std::filesystem;

using portico::testing::gunzip;

// Decodes a chunked body; nullopt when the framing is broken or incomplete.
std::optional<std::string> dechunk(std::string_view body) {
  std::string out;
  while (true) {
    size_t eol = body.find("\r\n");
    if (eol == std::string_view::npos) return std::nullopt;
    size_t size = std::stoul(std::string(body.substr(0, eol)), nullptr, 16);
    body.remove_prefix(eol + 2);
    if (size == 0) return body == "\r\n" ? std::optional<std::string>(out) : std::nullopt;
    if (body.size() < size + 2) return std::nullopt;
    out.append(body.substr(0, size));
    body.remove_prefix(size + 2);
  }
}

class Owner : public ConnectionOwner {
 public:
  explicit Owner(event::EventLoop& loop) : loop_(loop) {}
  void connectionClosed(Connection* connection) override {
    closed = true;
    loop_.deferDelete(std::unique_ptr<event::Deferrable>(owned.release()));
    (void)connection;
  }
  std::unique_ptr<Connection> owned;
  bool closed = false;

 private:
  event::EventLoop& loop_;
};

class GzipConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("portico-gzip-conn-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::mt19937 rng(17);
    const char* words[] = {"portico ", "gzip ", "nginx ", "static ", "file ", "chunk ", "zlib "};
    while (text_.size() < 3 * 1024 * 1024) text_ += words[rng() % 7];
    std::ofstream(dir_ / "big.txt", std::ios::binary) << text_;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Sends `request` on a fresh connection; reads at most `perTurn` bytes per loop turn until the
  // server closes (or `stopAfter` bytes, then the client hangs up).
  std::string exchange(const std::string& request, size_t perTurn, size_t stopAfter = SIZE_MAX) {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    UniqueFd client(fds[1]);
    ConnectionInfo info;
    info.isUnix = true;
    owner_.owned = std::make_unique<Http1Session>(
        loop_, std::make_unique<transport::PlainTransport>(UniqueFd(fds[0]), false), info,
        settings_, owner_);
    owner_.owned->start();
    EXPECT_EQ(::write(client.get(), request.data(), request.size()),
              static_cast<ssize_t>(request.size()));
    std::string received;
    int turns = 0;
    std::function<void()> tick = [&] {
      char buffer[16384];
      size_t want = std::min(perTurn, sizeof buffer);
      ssize_t n = client ? ::read(client.get(), buffer, want) : -1;
      if (n > 0) received.append(buffer, static_cast<size_t>(n));
      if (client && received.size() >= stopAfter) client.reset();  // the client goes away
      if (n == 0 || (!client && owner_.closed) || ++turns > 20000) {
        loop_.stop();
        return;
      }
      loop_.post(tick);
    };
    loop_.post(tick);
    loop_.run();
    EXPECT_LE(turns, 20000);
    return received;
  }

  // /static/ served from dir_ (`alias DIR/; gzip on; gzip_types text/plain;`), as the flags'
  // site serves a --static mount, through the site's pipeline.
  void serveStatic(bool vary) {
    config::GunicornFlags flags;
    flags.statics.push_back({"/static/", dir_.string() + "/"});
    config::siteFromFlags(flags, config_);
    for (config::Location& location : config_.site.servers.front().locations) {
      if (location.pattern != "/static/") continue;
      location.settings.gzip.enabled = true;
      location.settings.gzip.types = {"text/plain"};
      location.settings.gzip.vary = vary;
    }
    std::string error;
    map_ = SiteMap::build(config_.site, error);
    ASSERT_TRUE(map_) << error;
    site_ = std::make_unique<pipeline::SiteHandler>(config_, *map_, &loop_);
    ASSERT_TRUE(site_->build({{}, staticfiles::documentRoots()}, error)) << error;
    settings_.site = site_.get();
  }

  fs::path dir_;
  std::string text_;
  config::Config config_;
  std::unique_ptr<SiteMap> map_;
  event::EventLoop loop_;
  std::unique_ptr<pipeline::SiteHandler> site_;  // after loop_: destroyed before it
  Owner owner_{loop_};
  ConnectionSettings settings_;
};

TEST_F(GzipConnectionTest, StaticFileIsCompressedThroughARealConnection) {
  serveStatic(true);

  std::string response = exchange(
      "GET /static/big.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
      4096);
  size_t headEnd = response.find("\r\n\r\n");
  ASSERT_NE(headEnd, std::string::npos);
  std::string head = response.substr(0, headEnd + 2);
  EXPECT_NE(head.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Content-Encoding: gzip\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("Vary: Accept-Encoding\r\n"), std::string::npos) << head;
  EXPECT_NE(head.find("ETag: W/\""), std::string::npos) << head;
  EXPECT_EQ(head.find("Content-Length"), std::string::npos) << head;
  EXPECT_EQ(head.find("Accept-Ranges"), std::string::npos) << head;
  std::optional<std::string> body = dechunk(std::string_view(response).substr(headEnd + 4));
  ASSERT_TRUE(body);
  EXPECT_EQ(gunzip(*body), text_);
  // nginx's bytes: the encoder sized for the file, fed in any pieces.
  GzipEncoder encoder(1, text_.size());
  std::string expected;
  encoder.write(text_, expected);
  encoder.finish(expected);
  EXPECT_EQ(*body, expected);
  EXPECT_TRUE(owner_.closed);
}

TEST_F(GzipConnectionTest, ClientLeavingMidFileReleasesTheExchange) {
  serveStatic(false);

  std::string response = exchange(
      "GET /static/big.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n", 4096, 20000);
  EXPECT_GE(response.size(), 20000u);
  EXPECT_TRUE(owner_.closed);
}

}  // namespace
}  // namespace portico::http
