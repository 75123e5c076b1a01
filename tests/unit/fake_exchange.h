#pragma once

// The one fake http::Exchange of the unit tests: the connection's stand-in under a content
// handler, the pipeline or a filter. It records the head, the body (file ranges read with
// pread) and the chunks as sent; writability and the stored callbacks are the test's to play.

#include <sys/types.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/exchange.h"
#include "http/response.h"

namespace portico::unit {

// Owned by the test, on its stack; test thread (the loop's, when the test runs one).
class FakeExchange : public http::Exchange {
 public:
  http::Request req;                        // the request, unless `external` is set
  const http::Request* external = nullptr;  // a request owned elsewhere (a route's)
  http::ConnectionInfo conn;
  std::optional<http::ResponseHead> head;
  std::string body;               // what a client would read: memory chunks and file ranges
  std::vector<BodyChunk> chunks;  // the chunks as sent (to check pass-through, sendfile)
  int headCalls = 0;
  size_t bodyCalls = 0;
  int fileChunks = 0;
  bool finished = false;
  bool aborted = false;
  // Output flow: not writable once `highWatermark` bytes are queued or while `canWrite` is
  // false; onWritable() then stores its callback for drain(), else runs it at once unless
  // `storeWritable`.
  bool canWrite = true;
  bool storeWritable = false;
  size_t queued = 0;
  size_t highWatermark = SIZE_MAX;
  std::function<void()> writableCallback;
  std::function<void()> abortCallback;
  http::BodyReader* reader = nullptr;

  const http::Request& request() const override { return external ? *external : req; }
  const http::ConnectionInfo& connection() const override { return conn; }
  void sendHead(http::ResponseHead h) override {
    ++headCalls;
    EXPECT_FALSE(head.has_value()) << "two heads";
    EXPECT_FALSE(finished);
    head = std::move(h);
  }
  void sendBody(BodyChunk chunk) override {
    EXPECT_TRUE(head.has_value()) << "body before head";
    EXPECT_FALSE(finished);
    EXPECT_FALSE(aborted);
    ++bodyCalls;
    queued += chunk.size();
    if (const auto* s = std::get_if<std::string>(&chunk.data)) {
      body += *s;
    } else {
      ++fileChunks;
      const FileRange& range = std::get<FileRange>(chunk.data);
      EXPECT_TRUE(range.file && *range.file);
      std::string data(range.length, '\0');
      ssize_t n = ::pread(range.file->get(), data.data(), data.size(),
                          static_cast<off_t>(range.offset));
      EXPECT_EQ(n, static_cast<ssize_t>(range.length));
      body += data;
    }
    chunks.push_back(std::move(chunk));
  }
  void finish() override {
    EXPECT_FALSE(finished) << "finish() twice";
    EXPECT_FALSE(aborted);
    finished = true;
  }
  bool writable() const override { return canWrite && queued < highWatermark; }
  void onWritable(std::function<void()> callback) override {
    if (storeWritable || !writable()) {
      writableCallback = std::move(callback);
      return;
    }
    callback();
  }
  void readBody(http::BodyReader* r) override { reader = r; }
  void onAbort(std::function<void()> callback) override { abortCallback = std::move(callback); }
  void abort() override { aborted = true; }

  // The client read everything: writable again, and the registered callback runs once.
  void drain() {
    canWrite = true;
    queued = 0;
    if (writableCallback) {
      auto callback = std::move(writableCallback);
      writableCallback = nullptr;
      callback();
    }
  }

  int status() const { return head ? head->status : 0; }
  // The value of a response header, nullopt when absent; fails the test if repeated.
  std::optional<std::string> header(std::string_view name) const {
    std::optional<std::string> found;
    if (!head) return found;
    for (const http::Header& h : head->headers) {
      if (http::iequals(h.name, name)) {
        EXPECT_FALSE(found.has_value()) << "repeated header " << name;
        found = h.value;
      }
    }
    return found;
  }
  // How many times a header is present.
  int count(std::string_view name) const {
    int n = 0;
    if (head) {
      for (const http::Header& h : head->headers) n += http::iequals(h.name, name);
    }
    return n;
  }
  uint64_t bodySize() const {
    uint64_t n = 0;
    for (const BodyChunk& chunk : chunks) n += chunk.size();
    return n;
  }
};

}  // namespace portico::unit
