#include "process/status_page.h"

#include <algorithm>
#include <cstdio>

#include "config/version.h"
#include "core/json.h"

namespace portico::process {

namespace {

const char* stateName(WorkerState state) {
  switch (state) {
    case WorkerState::kBooting: return "booting";
    case WorkerState::kReady: return "ready";
    case WorkerState::kDraining: return "draining";
    case WorkerState::kFree: break;
  }
  return "free";
}

const char* masterStateName(MasterState state) {
  switch (state) {
    case MasterState::kStarting: return "starting";
    case MasterState::kRunning: return "running";
    case MasterState::kReloading: return "reloading";
    case MasterState::kStopping: return "stopping";
  }
  return "unknown";
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

// The upper bound (ms) of the bucket where `fraction` of an interval's requests are reached.
double quantileMs(const uint64_t* from, const uint64_t* to, double fraction) {
  uint64_t total = 0;
  for (size_t b = 0; b < kDurationBuckets; ++b) total += to[b] - from[b];
  if (total == 0) return 0;
  uint64_t want = static_cast<uint64_t>(fraction * static_cast<double>(total));
  if (want == 0) want = 1;
  uint64_t seen = 0;
  for (size_t b = 0; b < kDurationBuckets; ++b) {
    seen += to[b] - from[b];
    if (seen >= want) {
      // The last bucket is +Inf: shown as the largest finite bound.
      size_t bound = b < kDurationBuckets - 1 ? b : kDurationBuckets - 2;
      return static_cast<double>(kDurationBoundsMicros[bound]) / 1000.0;
    }
  }
  return 0;
}

}  // namespace

std::string renderStatusJson(const MetricsSnapshot& s, uint64_t timeoutMs) {
  const RequestMetrics& m = *s.requests;
  std::string out;
  out.reserve(8192);
  out += "{\"version\":" + jsonQuote(kPorticoVersion);
  out += ",\"master\":{\"pid\":" + std::to_string(s.masterPid) + ",\"state\":\"" +
         masterStateName(s.masterState) + "\",\"alive\":" + (s.masterAlive ? "true" : "false") +
         ",\"started_unix_ms\":" + std::to_string(s.startedUnixMs) +
         ",\"generation\":" + std::to_string(s.generation) +
         ",\"reloads\":" + std::to_string(s.reloads) +
         ",\"target_workers\":" + std::to_string(s.targetWorkers) + "}";
  static const char* kClasses[kStatusClasses] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
  uint64_t requests = 0;
  out += ",\"requests\":{\"by_status\":{";
  for (size_t c = 0; c < kStatusClasses; ++c) {
    uint64_t n = m.byClass[c].load(std::memory_order_relaxed);
    requests += n;
    out += std::string(c ? "," : "") + "\"" + kClasses[c] + "\":" + std::to_string(n);
  }
  out += "},\"total\":" + std::to_string(requests);
  out += ",\"bytes_in\":" + std::to_string(m.bytesIn.load(std::memory_order_relaxed));
  out += ",\"bytes_out\":" + std::to_string(m.bytesOut.load(std::memory_order_relaxed)) + "}";
  const http::ConnectionCounters& c = s.connections;
  out += ",\"connections\":{\"accepted\":" + std::to_string(c.accepted) +
         ",\"active\":" + std::to_string(c.active) + ",\"reading\":" + std::to_string(c.reading) +
         ",\"writing\":" + std::to_string(c.writing) + ",\"idle\":" + std::to_string(c.waiting) +
         "}";
  out += ",\"listen_queues\":[";
  for (size_t i = 0; i < s.listenQueues.size(); ++i) {
    const ListenQueue& q = s.listenQueues[i];
    out += std::string(i ? "," : "") + "{\"listener\":" + jsonQuote(q.listener) +
           ",\"queued\":" + std::to_string(q.queued) + ",\"limit\":" + std::to_string(q.limit) +
           "}";
  }
  out += "],\"upstreams\":[";
  size_t peers = std::min<size_t>(m.upstreamCount.load(std::memory_order_acquire),
                                  kMetricUpstreams);
  for (size_t i = 0; i < peers; ++i) {
    const UpstreamMetrics& u = m.upstreams[i];
    uint64_t tries = u.tries.load(std::memory_order_relaxed);
    out += std::string(i ? "," : "") + "{\"upstream\":" + jsonQuote(u.upstream) +
           ",\"server\":" + jsonQuote(u.server) + ",\"tries\":" + std::to_string(tries) +
           ",\"failures\":" + std::to_string(u.failures.load(std::memory_order_relaxed)) +
           ",\"mean_ms\":" +
           number(tries ? static_cast<double>(u.responseMicros.load()) / tries / 1000.0 : 0) +
           ",\"unavailable_workers\":" + std::to_string(u.unavailableIn.load()) + "}";
  }
  out += "],\"restarts\":{";
  bool first = true;
  for (auto cause : {RestartCause::kCrash, RestartCause::kTimeout, RestartCause::kMaxRequests,
                     RestartCause::kMemory, RestartCause::kReload}) {
    out += std::string(first ? "" : ",") + "\"" + restartCauseName(cause) +
           "\":" + std::to_string(s.restarts[static_cast<size_t>(cause)]);
    first = false;
  }
  out += "},\"workers\":[";
  for (size_t i = 0; i < s.workers.size(); ++i) {
    const WorkerSnapshot& w = s.workers[i];
    out += std::string(i ? "," : "") + "{\"slot\":" + std::to_string(w.slot) +
           ",\"pid\":" + std::to_string(w.pid) + ",\"state\":\"" + stateName(w.state) +
           "\",\"requests\":" + std::to_string(w.requests) +
           ",\"rss_bytes\":" + std::to_string(w.rssBytes) +
           ",\"started_unix_ms\":" + std::to_string(w.startedUnixMs) +
           ",\"python_threads\":" + std::to_string(w.pythonThreads) +
           ",\"busy\":" + std::to_string(w.pythonBusy) + ",\"stuck\":" +
           std::to_string(w.pythonStuck) + ",\"running\":[";
    for (size_t k = 0; k < w.running.size(); ++k) {
      const ThreadSnapshot& t = w.running[k];
      bool stuck = timeoutMs && t.runningMs > timeoutMs;
      out += std::string(k ? "," : "") + "{\"thread\":" + std::to_string(t.thread) +
             ",\"method\":" + jsonQuote(t.method) + ",\"path\":" + jsonQuote(t.path) +
             ",\"running_ms\":" + std::to_string(t.runningMs) +
             ",\"stuck\":" + (stuck ? "true" : "false") + ",\"ident\":\"" + hex(t.ident) +
             "\"}";
    }
    out += "]";
    if (w.stacksUnixMs != 0 || w.stacksPending) {
      out += ",\"stacks\":{\"pending\":" + std::string(w.stacksPending ? "true" : "false") +
             ",\"unix_ms\":" + std::to_string(w.stacksUnixMs) + ",\"text\":" +
             jsonQuote(w.stacks) + "}";
    }
    out += "}";
  }
  // The history as intervals: requests/s, 5xx/s, mean and p99 latency between two points.
  out += "],\"history\":{\"interval_ms\":" + std::to_string(BoardTotals::kHistoryEveryMs) +
         ",\"points\":[";
  for (size_t i = 1; i < s.history.size(); ++i) {
    const HistorySnapshot& a = s.history[i - 1];
    const HistorySnapshot& b = s.history[i];
    double seconds = b.unixMs > a.unixMs ? static_cast<double>(b.unixMs - a.unixMs) / 1000.0 : 0;
    uint64_t n = b.requests >= a.requests ? b.requests - a.requests : 0;
    double mean = n ? static_cast<double>(b.durationMicros - a.durationMicros) / n / 1000.0 : 0;
    out += std::string(i > 1 ? "," : "") + "{\"unix_ms\":" + std::to_string(b.unixMs) +
           ",\"requests\":" + std::to_string(n) +
           ",\"rps\":" + number(seconds > 0 ? static_cast<double>(n) / seconds : 0) +
           ",\"errors\":" + std::to_string(b.errors >= a.errors ? b.errors - a.errors : 0) +
           ",\"mean_ms\":" + number(mean) +
           ",\"p99_ms\":" + number(quantileMs(a.buckets, b.buckets, 0.99)) + "}";
  }
  out += "]}}";
  return out;
}

const std::string& statusPageHtml() {
  static const std::string kPage = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>portico status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.4em; margin: 0 0 .2em; }
h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; }
th { background: #f0f0f0; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.stuck td, span.stuck { background: #fdd; color: #900; font-weight: bold; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
.chart { background: #fff; border: 1px solid #ddd; padding: .5em; }
.chart svg { display: block; }
#error { color: #900; }
.muted { color: #777; }
pre { background: #fff; border: 1px solid #ddd; padding: .5em; overflow-x: auto; font-size: 12px; }
</style>
</head>
<body>
<h1>portico <span id="version"></span></h1>
<div id="summary" class="muted">loading…</div>
<div id="error"></div>
<h2>Throughput and latency (last minutes)</h2>
<div class="charts">
  <div class="chart"><div>requests/s</div><svg id="chart-rps" width="420" height="140"></svg></div>
  <div class="chart"><div>latency, ms (mean, p99)</div><svg id="chart-latency" width="420" height="140"></svg></div>
</div>
<h2>Workers</h2>
<table id="workers"><thead><tr><th>slot</th><th>pid</th><th>state</th><th>requests</th>
<th>memory</th><th>Python threads busy</th><th>running now</th><th>Python stacks</th></tr></thead>
<tbody></tbody></table>
<div id="stacks"></div>
<h2>Requests</h2>
<table id="requests"><tbody></tbody></table>
<h2>Upstream servers</h2>
<table id="upstreams"><thead><tr><th>upstream</th><th>server</th><th>tries</th><th>failures</th>
<th>mean response</th><th>health</th></tr></thead><tbody></tbody></table>
<h2>Restarts</h2>
<table id="restarts"><tbody></tbody></table>
<h2>Listeners</h2>
<table id="listeners"><thead><tr><th>listener</th><th>accept queue</th><th>backlog</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
const jsonUrl = location.pathname + "?format=json";
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function row(cells, cls) {
  const tr = el("tr", undefined, cls);
  for (const c of cells) {
    const td = el("td", c.text !== undefined ? c.text : c, c.cls);
    tr.appendChild(td);
  }
  return tr;
}
function fill(id, rows) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren(...rows);
}
function mb(bytes) { return (bytes / 1048576).toFixed(1) + " MB"; }
function chart(id, series, colors) {
  const svg = document.getElementById(id);
  const w = +svg.getAttribute("width"), h = +svg.getAttribute("height");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  let max = 0, n = 0;
  for (const s of series) { n = Math.max(n, s.length); for (const v of s) max = Math.max(max, v); }
  if (max <= 0) max = 1;
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", 4); label.setAttribute("y", 12); label.setAttribute("font-size", "11");
  label.textContent = "max " + (max >= 100 ? max.toFixed(0) : max.toFixed(2));
  svg.appendChild(label);
  series.forEach((s, k) => {
    if (s.length < 1) return;
    const vs = s.length === 1 ? [s[0], s[0]] : s;  // one interval: a flat line
    const last = Math.max(n, 2) - 1;
    const pts = vs.map((v, i) => (i * (w - 8) / last + 4).toFixed(1) + "," +
                                 (h - 4 - v / max * (h - 20)).toFixed(1)).join(" ");
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", pts);
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", colors[k]);
    line.setAttribute("stroke-width", "1.5");
    line.setAttribute("class", "series");
    svg.appendChild(line);
  });
}
function render(d) {
  document.getElementById("version").textContent = d.version;
  const m = d.master;
  document.getElementById("summary").textContent =
    "master " + m.pid + " " + m.state + ", generation " + m.generation + ", " +
    d.workers.length + " of " + m.target_workers + " workers, " + d.requests.total +
    " requests, " + d.connections.active + " connections open";
  fill("workers", d.workers.map(w => {
    const running = w.running.map(t => t.method + " " + t.path + " (" +
        (t.running_ms / 1000).toFixed(1) + " s" + (t.stuck ? ", stuck" : "") + ")").join("; ");
    const stuck = w.stuck > 0 || w.running.some(t => t.stuck);
    const tr = row([w.slot, w.pid, w.state, {text: w.requests, cls: "n"}, {text: mb(w.rss_bytes), cls: "n"},
                    {text: w.busy + " / " + w.python_threads, cls: "n"}, running || "idle"],
                   "worker" + (stuck ? " stuck" : ""));
    const button = el("button", w.stacks && w.stacks.pending ? "taking…" : "take", "stacks");
    button.setAttribute("data-pid", w.pid);
    button.addEventListener("click", () => askStacks(w.pid));
    const td = el("td");
    td.appendChild(button);
    tr.appendChild(td);
    return tr;
  }));
  // The stacks a worker gave when asked, under the table: one block per worker.
  document.getElementById("stacks").replaceChildren(...d.workers.filter(w => w.stacks && w.stacks.unix_ms)
      .map(w => {
        const box = el("div", undefined, "stack");
        box.setAttribute("data-pid", w.pid);
        box.appendChild(el("h2", "Python stacks of worker " + w.pid + ", taken " +
                                 new Date(w.stacks.unix_ms).toLocaleTimeString() +
                                 (w.stacks.pending ? " (a newer one is on its way)" : "")));
        box.appendChild(el("pre", w.stacks.text));
        return box;
      }));
  fill("requests", Object.entries(d.requests.by_status).map(([k, v]) => row([k, {text: v, cls: "n"}]))
       .concat([row(["bytes in", {text: d.requests.bytes_in, cls: "n"}]),
                row(["bytes out", {text: d.requests.bytes_out, cls: "n"}])]));
  fill("upstreams", d.upstreams.map(u => row([u.upstream, u.server, {text: u.tries, cls: "n"},
      {text: u.failures, cls: u.failures ? "n stuck" : "n"}, {text: u.mean_ms.toFixed(1) + " ms", cls: "n"},
      u.unavailable_workers ? {text: "skipped by " + u.unavailable_workers + " of " + d.workers.length +
                                     " workers", cls: "stuck"} : "up"],
      u.unavailable_workers ? "upstream down" : "upstream")));
  fill("restarts", Object.entries(d.restarts).map(([k, v]) => row([k, {text: v, cls: "n"}])));
  fill("listeners", d.listen_queues.map(q => row([q.listener, {text: q.queued, cls: "n"},
                                                  {text: q.limit, cls: "n"}])));
  const p = d.history.points;
  chart("chart-rps", [p.map(x => x.rps)], ["#2a6"]);
  chart("chart-latency", [p.map(x => x.mean_ms), p.map(x => x.p99_ms)], ["#36c", "#c63"]);
  document.body.setAttribute("data-loaded", "1");
}
async function refresh(extra) {
  try {
    const r = await fetch(jsonUrl + (extra || ""), {cache: "no-store"});
    if (!r.ok) throw new Error(jsonUrl + ": " + r.status);
    render(await r.json());
    document.getElementById("error").textContent = "";
  } catch (e) {
    document.getElementById("error").textContent = String(e);
  }
}
// The worker answers within its next heartbeat (a second): ask, then look again soon.
function askStacks(pid) {
  refresh("&stacks=" + pid);
  setTimeout(refresh, 1200);
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
)HTML";
  return kPage;
}

}  // namespace portico::process
