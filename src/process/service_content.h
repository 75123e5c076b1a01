#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/content.h"
#include "process/listeners.h"
#include "process/worker_status.h"

namespace portico::process {

// portico's service endpoints as a content module, registered by the Server (the composition
// root): claims the locations with `prometheus_metrics` (the metrics of every worker, from the
// master's status board), `portico_status` (the live page, its JSON at a path ending in ".json"
// or with ?format=json), `health_live` (200 while the master supervises) and `health_ready`
// (200 while this worker takes requests and no stop is under way, else 503). Owned by the
// Server; event-loop thread.
class ServiceContentModule : public pipeline::ContentModule {
 public:
  // What the endpoints read, set by the Server before the site is built; each may be null.
  struct Sources {
    const StatusBoard* board = nullptr;                  // the master's board
    const std::vector<BoundListener>* listeners = nullptr;  // for the accept queues
    const bool* stopping = nullptr;                      // this worker drains
    uint64_t timeoutMs = 0;  // --timeout: a request running longer is shown stuck (0: never)
  };
  void setSources(Sources sources) { sources_ = sources; }

  bool claims(const config::LocationSettings& settings) const override;
  std::unique_ptr<pipeline::ContentHandler> create(const config::LocationSettings& settings,
                                                   std::string& error) override;

 private:
  Sources sources_;
};

}  // namespace portico::process
