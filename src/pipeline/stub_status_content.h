#pragma once

#include <memory>
#include <string>

#include "pipeline/content.h"

namespace portico::pipeline {

// nginx's stub_status content module: claims the locations with `stub_status`, whose content
// is the page of every worker's connection counters (http/stub_status.h). Registered by the
// composition root; stateless, loop thread.
class StubStatusModule : public ContentModule {
 public:
  bool claims(const config::LocationSettings& settings) const override;
  std::unique_ptr<ContentHandler> create(const config::LocationSettings& settings,
                                         std::string& error) override;
};

}  // namespace portico::pipeline
