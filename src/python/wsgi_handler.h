#pragma once

#include <memory>
#include <string>

#include "event/event_loop.h"
#include "http/exchange.h"
#include "python/executor.h"

namespace portico::python {

// Routes requests to the WSGI app: on the loop thread it snapshots the request, reads the whole
// body (memory, or a temporary file past kMemoryBodyLimit), then hands the job to the executor;
// the Python thread's response comes back through a channel that posts to this loop. Created
// by the composition root; loop thread.
class WsgiHandler : public http::Handler {
 public:
  static constexpr size_t kMemoryBodyLimit = 64 * 1024;  // larger bodies spill to a file

  // `mountPrefix` is the location prefix ("/" or "/app/"); SCRIPT_NAME is it without the
  // trailing slash.
  WsgiHandler(event::EventLoop& loop, Executor& executor, std::string mountPrefix,
              std::string tempDirectory);

  void handle(http::Exchange& exchange) override;
  bool readsBody() const override { return true; }

 private:
  event::EventLoop& loop_;
  Executor& executor_;
  std::string scriptName_;
  std::string tempDirectory_;
};

}  // namespace portico::python
