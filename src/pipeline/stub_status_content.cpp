#include "pipeline/stub_status_content.h"

#include "http/stub_status.h"

namespace portico::pipeline {

namespace {

// The page (GET/HEAD, else 405 through the pipeline's error_page).
class StubStatusContent : public ContentHandler {
 public:
  void handle(http::Exchange& exchange) override {
    const http::Request& request = exchange.request();
    if (!(request.method == "GET" || request.isHead())) {
      exchange.respondError(405);
      return;
    }
    http::ResponseHead head;
    head.status = 200;
    head.add("Content-Type", "text/plain");
    exchange.respond(std::move(head), http::renderStubStatus(http::readConnectionCounters()));
  }
  bool readsBody() const override { return false; }
  bool upstream() const override { return false; }
};

}  // namespace

bool StubStatusModule::claims(const config::LocationSettings& settings) const {
  return settings.access.stubStatus;
}

std::unique_ptr<ContentHandler> StubStatusModule::create(const config::LocationSettings&,
                                                         std::string&) {
  return std::make_unique<StubStatusContent>();
}

}  // namespace portico::pipeline
