#pragma once

// portico's live status page (`portico_status;`, `--metrics-bind`'s /status): the board's
// snapshot as JSON, and one self-contained HTML page (no external assets) that polls that JSON
// and draws the workers, what each Python thread runs now, the stuck ones, restarts and the
// throughput and latency of the last minutes as SVG charts.

#include <cstdint>
#include <string>

#include "process/metrics.h"

namespace portico::process {

// The JSON document. `timeoutMs`: --timeout, a thread running longer is "stuck" (0: never).
std::string renderStatusJson(const MetricsSnapshot& snapshot, uint64_t timeoutMs);

// The HTML page; it fetches the JSON from its own path with ?format=json.
const std::string& statusPageHtml();

}  // namespace portico::process
