#include "process/service_content.h"

#include "process/metrics.h"
#include "process/status_page.h"

namespace portico::process {

namespace {

// One endpoint's answer (GET/HEAD, else 405 through the pipeline's error_page).
class ServiceContent : public pipeline::ContentHandler {
 public:
  ServiceContent(config::ServiceEndpoint kind, const ServiceContentModule::Sources& sources)
      : kind_(kind), sources_(sources) {}

  void handle(http::Exchange& exchange) override {
    const http::Request& request = exchange.request();
    if (!(request.method == "GET" || request.isHead())) {
      exchange.respondError(405);
      return;
    }
    http::ResponseHead head;
    head.add("Cache-Control", "no-store");
    std::string body;
    if (kind_ == config::ServiceEndpoint::kMetrics) {
      head.status = 200;
      head.add("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
      body = renderPrometheus(snapshot());
    } else if (kind_ == config::ServiceEndpoint::kStatus) {
      head.status = 200;
      if (wantsJson(request)) {
        askStacks(request.query);
        head.add("Content-Type", "application/json");
        body = renderStatusJson(snapshot(), sources_.timeoutMs);
      } else {
        head.add("Content-Type", "text/html; charset=utf-8");
        // The page is all inline: nothing it loads may come from elsewhere.
        head.add("Content-Security-Policy",
                 "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                 "connect-src 'self'; img-src 'self'");
        body = statusPageHtml();
      }
    } else {
      std::string why = kind_ == config::ServiceEndpoint::kLive ? notLive() : notReady();
      head.status = why.empty() ? 200 : 503;
      head.add("Content-Type", "text/plain; charset=utf-8");
      body = why.empty() ? (kind_ == config::ServiceEndpoint::kLive ? "live\n" : "ready\n")
                         : why + "\n";
    }
    exchange.respond(std::move(head), std::move(body));
  }
  bool readsBody() const override { return false; }
  bool upstream() const override { return false; }

 private:
  MetricsSnapshot snapshot() const {
    MetricsSnapshot s = takeSnapshot(sources_.board);
    if (sources_.listeners) s.listenQueues = listenQueues(*sources_.listeners);
    return s;
  }

  static bool wantsJson(const http::Request& request) {
    const std::string& path = request.rawPath;
    if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) return true;
    const std::string& q = request.query;
    return q == "format=json" || q.find("format=json&") == 0 ||
           q.find("&format=json") != std::string::npos;
  }

  // `stacks=PID` in the query: that worker is asked for its Python threads' stacks; its
  // heartbeat answers within a second, and the next JSON carries them.
  void askStacks(const std::string& query) const {
    if (!sources_.board) return;
    for (size_t at = 0; at <= query.size();) {
      size_t end = query.find('&', at);
      if (end == std::string::npos) end = query.size();
      std::string_view pair(query.data() + at, end - at);
      if (pair.substr(0, 7) == "stacks=") {
        std::string_view digits = pair.substr(7);
        long pid = 0;
        bool ok = !digits.empty() && digits.size() <= 9;
        for (char c : digits) {
          ok = ok && c >= '0' && c <= '9';
          pid = pid * 10 + (c - '0');
        }
        for (size_t i = 0; ok && pid > 0 && i < sources_.board->slots(); ++i) {
          const WorkerStatus& w = sources_.board->slot(i);
          if (w.pid.load() == pid && w.state.load() != static_cast<uint32_t>(WorkerState::kFree)) {
            w.askStacks();
          }
        }
      }
      at = end + 1;
    }
  }

  const BoardTotals* totals() const { return sources_.board ? &sources_.board->totals() : nullptr; }

  // Why the master is taken for gone (a worker whose master is gone is on its way out); empty
  // while it ticks.
  std::string masterGone() const {
    const BoardTotals* t = totals();
    uint64_t silent = t ? t->masterSilentMs(monotonicMs()) : 0;
    if (silent == 0) return {};
    return "the master has not ticked for " + std::to_string(silent / 1000) + " s";
  }

  // Empty when live: this worker answers and its master still ticks.
  std::string notLive() const {
    std::string why = masterGone();
    return why.empty() ? why : "not live: " + why;
  }

  // Empty when ready: live, no stop under way, and this worker takes requests.
  std::string notReady() const {
    if (std::string why = masterGone(); !why.empty()) return "not ready: " + why;
    if (sources_.stopping && *sources_.stopping) return "not ready: this worker is stopping";
    if (const BoardTotals* t = totals();
        t && t->masterState.load() == static_cast<uint32_t>(MasterState::kStopping)) {
      return "not ready: shutting down";
    }
    return {};
  }

  config::ServiceEndpoint kind_;
  const ServiceContentModule::Sources& sources_;
};

}  // namespace

bool ServiceContentModule::claims(const config::LocationSettings& settings) const {
  return settings.access.endpoint != config::ServiceEndpoint::kNone;
}

std::unique_ptr<pipeline::ContentHandler> ServiceContentModule::create(
    const config::LocationSettings& settings, std::string&) {
  return std::make_unique<ServiceContent>(settings.access.endpoint, sources_);
}

}  // namespace portico::process
