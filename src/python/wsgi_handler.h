#pragma once

#include <memory>
#include <optional>
#include <string>

#include "event/event_loop.h"
#include "http/exchange.h"
#include "http/forwarded.h"
#include "python/executor.h"

namespace portico::python {

class BodyMemory;

// Routes requests to the WSGI app: on the loop thread it snapshots the request, reads the whole
// body (in memory within kMemoryBodyLimit and the worker's BodyMemory budget, else in a
// temporary file), then hands the job to the executor; the Python thread's response comes back
// through a channel that posts to this loop. Created by the composition root; loop thread.
class WsgiHandler : public http::Handler {
 public:
  // A body larger than this goes to a temporary file even when the budget has room.
  static constexpr uint64_t kMemoryBodyLimit = 32 * 1024 * 1024;

  // `mountPrefix` is the location prefix ("/" or "/app/"); SCRIPT_NAME is it without the
  // trailing slash. `bodyMemory` is the worker's, shared by its handlers.
  // `trust`: the front ends whose forwarding headers the environ follows (http/forwarded.h).
  WsgiHandler(event::EventLoop& loop, Executor& executor, std::string mountPrefix,
              std::string tempDirectory, std::shared_ptr<BodyMemory> bodyMemory,
              std::optional<http::ForwardedTrust> trust = std::nullopt);

  void handle(http::Exchange& exchange) override;
  bool readsBody() const override { return true; }

  // client_body_in_file_only on|clean: every body goes to a temp file; `keep` (on): a named
  // one, left in place after the request.
  void bodyInFileOnly(bool fileOnly, bool keep) {
    bodyFileOnly_ = fileOnly;
    keepBodyFile_ = keep;
  }

 private:
  event::EventLoop& loop_;
  Executor& executor_;
  std::string scriptName_;
  std::string tempDirectory_;
  std::shared_ptr<BodyMemory> bodyMemory_;
  std::optional<http::ForwardedTrust> trust_;
  bool bodyFileOnly_ = false;
  bool keepBodyFile_ = false;
};

}  // namespace portico::python
