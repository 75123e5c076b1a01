#include "process/metrics.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace portico::process {

namespace {

// Seconds from microseconds, the shortest text that reads back exactly.
std::string seconds(uint64_t micros) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, static_cast<double>(micros) / 1e6);
  return std::string(buf, r.ptr);
}

// A history point as the snapshot holds it.
HistorySnapshot loadPoint(const BoardTotals::HistoryPoint& p) {
  HistorySnapshot h;
  h.unixMs = p.unixMs.load(std::memory_order_relaxed);
  h.requests = p.requests.load(std::memory_order_relaxed);
  h.errors = p.errors.load(std::memory_order_relaxed);
  h.durationMicros = p.durationMicros.load(std::memory_order_relaxed);
  for (size_t b = 0; b < kDurationBuckets; ++b) {
    h.buckets[b] = p.buckets[b].load(std::memory_order_relaxed);
  }
  return h;
}

const char* kClassNames[kStatusClasses] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};

// Writes one metric family: HELP and TYPE once, then its samples.
class Family {
 public:
  Family(std::string& out, std::string_view name, std::string_view type, std::string_view help)
      : out_(out), name_(name) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // `labels` as written between the braces (already escaped), empty for none.
  void sample(std::string_view labels, uint64_t value, std::string_view suffix = {}) {
    sample(labels, std::to_string(value), suffix);
  }
  void sample(std::string_view labels, const std::string& value, std::string_view suffix = {}) {
    out_ += name_;
    out_ += suffix;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }

 private:
  std::string& out_;
  std::string name_;
};

std::string label(std::string_view name, std::string_view value) {
  std::string out(name);
  out += "=\"";
  out += escapeLabel(value);
  out += '"';
  return out;
}

}  // namespace

std::string escapeLabel(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<ListenQueue> listenQueues(const std::vector<BoundListener>& listeners) {
  std::vector<ListenQueue> out;
  for (const BoundListener& l : listeners) {
    if (!l.fd || !l.unixPath.empty() || l.local.isUnix) continue;
    tcp_info info{};
    socklen_t len = sizeof info;
    if (::getsockopt(l.fd.get(), IPPROTO_TCP, TCP_INFO, &info, &len) != 0) continue;
    if (info.tcpi_state != TCP_LISTEN) continue;
    out.push_back({l.name, info.tcpi_unacked, info.tcpi_sacked});
  }
  return out;
}

namespace {

// Counts, into the summed table, the upstream servers one process (`m`) skips now.
void markUnavailableUpstreams(const RequestMetrics& m, RequestMetrics& sum, uint64_t now) {
  size_t peers = std::min<size_t>(m.upstreamCount.load(std::memory_order_acquire),
                                  kMetricUpstreams);
  for (size_t k = 0; k < peers; ++k) {
    const UpstreamMetrics& u = m.upstreams[k];
    if (u.unavailableUntilMs.load(std::memory_order_relaxed) <= now) continue;
    sum.upstreams[sum.upstreamEntry(u.upstream, u.server)].unavailableIn.fetch_add(
        1, std::memory_order_relaxed);
  }
}

}  // namespace

MetricsSnapshot takeSnapshot(const StatusBoard* board) {
  MetricsSnapshot s;
  if (!board) {
    s.requests->add(requestMetrics());
    markUnavailableUpstreams(requestMetrics(), *s.requests, monotonicMs());
    s.connections = http::readConnectionCounters();
    return s;
  }
  board->sum(s.requests.get(), s.connections);
  const BoardTotals& t = board->totals();
  for (size_t i = 0; i < static_cast<size_t>(RestartCause::kCount); ++i) {
    s.restarts[i] = t.restarts[i].load(std::memory_order_relaxed);
  }
  s.reloads = t.reloads.load(std::memory_order_relaxed);
  s.generation = t.generation.load(std::memory_order_relaxed);
  s.targetWorkers = t.targetWorkers.load(std::memory_order_relaxed);
  s.masterState = static_cast<MasterState>(t.masterState.load(std::memory_order_relaxed));
  s.startedUnixMs = t.startedUnixMs.load(std::memory_order_relaxed);
  uint64_t now = monotonicMs();
  s.masterAlive = t.masterSilentMs(now) == 0;
  for (size_t i = 0; i < board->slots(); ++i) {
    const WorkerStatus& w = board->slot(i);
    auto state = static_cast<WorkerState>(w.state.load(std::memory_order_acquire));
    if (state == WorkerState::kFree) continue;
    markUnavailableUpstreams(w.metrics, *s.requests, now);
    WorkerSnapshot ws;
    ws.slot = i;
    ws.pid = w.pid.load(std::memory_order_relaxed);
    ws.state = state;
    ws.requests = w.requests.load(std::memory_order_relaxed);
    ws.rssBytes = w.rssBytes.load(std::memory_order_relaxed);
    ws.startedUnixMs = w.startedUnixMs.load(std::memory_order_relaxed);
    ws.pythonThreads = w.pythonThreads.load(std::memory_order_relaxed);
    ws.pythonBusy = w.pythonBusy.load(std::memory_order_relaxed);
    ws.pythonStuck = w.pythonStuck.load(std::memory_order_relaxed);
    for (size_t k = 0; k < kActivityThreads; ++k) {
      ThreadSnapshot ts;
      uint64_t since = 0;
      if (!readActivity(w.activity[k], ts.method, ts.path, since, ts.ident)) continue;
      ts.thread = k;
      ts.runningMs = now > since ? now - since : 0;
      ws.running.push_back(std::move(ts));
    }
    if (!w.readStacks(ws.stacks, ws.stacksUnixMs)) ws.stacksUnixMs = 0;
    ws.stacksPending = w.stacksAsked.load(std::memory_order_relaxed) !=
                       w.stacksAnswered.load(std::memory_order_acquire);
    s.workers.push_back(std::move(ws));
  }
  s.masterPid = t.masterPid.load(std::memory_order_relaxed);
  // The point being overwritten (the oldest, once the ring is full) is left out.
  uint64_t count = t.historyCount.load(std::memory_order_acquire);
  uint64_t first = count >= BoardTotals::kHistoryPoints ? count - BoardTotals::kHistoryPoints + 1 : 0;
  for (uint64_t i = first; i < count; ++i) {
    s.history.push_back(loadPoint(t.history[i % BoardTotals::kHistoryPoints]));
  }
  // The totals now close the last interval (a partial one), so the charts show the last
  // seconds too.
  if (uint64_t at = wallMs(); !s.history.empty() && at > s.history.back().unixMs + 500) {
    BoardTotals::HistoryPoint current;
    current.store(*s.requests, at);
    s.history.push_back(loadPoint(current));
  }
  return s;
}

std::string renderPrometheus(const MetricsSnapshot& s) {
  std::string out;
  out.reserve(16384);
  const RequestMetrics& m = *s.requests;

  {
    Family f(out, "portico_http_requests_total", "counter",
             "Requests answered (or cut short), by status class.");
    for (size_t c = 0; c < kStatusClasses; ++c) {
      f.sample(label("status", kClassNames[c]), m.byClass[c].load(std::memory_order_relaxed));
    }
  }
  {
    Family f(out, "portico_http_request_duration_seconds", "histogram",
             "Time from a request's head to the last byte of its response.");
    uint64_t cumulative = 0;
    for (size_t b = 0; b < kDurationBuckets; ++b) {
      cumulative += m.duration[b].load(std::memory_order_relaxed);
      std::string le = b + 1 < kDurationBuckets ? seconds(kDurationBoundsMicros[b]) : "+Inf";
      f.sample(label("le", le), cumulative, "_bucket");
    }
    f.sample("", seconds(m.durationMicros.load(std::memory_order_relaxed)), "_sum");
    f.sample("", cumulative, "_count");
  }
  size_t locations = std::min<size_t>(m.locationCount.load(std::memory_order_acquire),
                                      kMetricLocations);
  {
    Family f(out, "portico_http_location_requests_total", "counter",
             "Requests by the server and location that answered them, and status class.");
    for (size_t i = 0; i < locations; ++i) {
      const LocationMetrics& l = m.locations[i];
      std::string where = label("server", l.server) + "," + label("location", l.location);
      for (size_t c = 0; c < kStatusClasses; ++c) {
        uint64_t n = l.byClass[c].load(std::memory_order_relaxed);
        if (n) f.sample(where + "," + label("status", kClassNames[c]), n);
      }
    }
  }
  {
    Family f(out, "portico_http_location_request_duration_seconds_total", "counter",
             "Time spent answering requests, by server and location.");
    for (size_t i = 0; i < locations; ++i) {
      const LocationMetrics& l = m.locations[i];
      uint64_t total = 0;
      for (const auto& c : l.byClass) total += c.load(std::memory_order_relaxed);
      if (!total) continue;
      f.sample(label("server", l.server) + "," + label("location", l.location),
               seconds(l.durationMicros.load(std::memory_order_relaxed)));
    }
  }
  size_t peers = std::min<size_t>(m.upstreamCount.load(std::memory_order_acquire),
                                  kMetricUpstreams);
  auto upstreamFamily = [&](std::string_view name, std::string_view help, auto value,
                            std::string_view type = "counter") {
    Family f(out, name, type, help);
    for (size_t i = 0; i < peers; ++i) {
      const UpstreamMetrics& u = m.upstreams[i];
      f.sample(label("upstream", u.upstream) + "," + label("server", u.server), value(u));
    }
  };
  upstreamFamily("portico_upstream_tries_total",
                 "Tries of each upstream server (proxy_pass, uwsgi_pass).",
                 [](const UpstreamMetrics& u) { return std::to_string(u.tries.load()); });
  upstreamFamily("portico_upstream_failures_total",
                 "Tries that failed: an error, a timeout, an invalid response, or a status "
                 "proxy_next_upstream names.",
                 [](const UpstreamMetrics& u) { return std::to_string(u.failures.load()); });
  upstreamFamily("portico_upstream_response_seconds_total",
                 "Time from the start of each try to its end, summed.",
                 [](const UpstreamMetrics& u) { return seconds(u.responseMicros.load()); });
  upstreamFamily("portico_upstream_unavailable_workers",
                 "Workers that skip the server now: max_fails failures within fail_timeout "
                 "(passive health is per worker, as in nginx).",
                 [](const UpstreamMetrics& u) { return std::to_string(u.unavailableIn.load()); },
                 "gauge");
  Family(out, "portico_http_received_bytes_total", "counter",
         "Bytes of request heads and bodies read.")
      .sample("", m.bytesIn.load(std::memory_order_relaxed));
  Family(out, "portico_http_sent_bytes_total", "counter",
         "Bytes of response heads and bodies sent.")
      .sample("", m.bytesOut.load(std::memory_order_relaxed));

  const http::ConnectionCounters& c = s.connections;
  Family(out, "portico_connections_accepted_total", "counter", "Client connections accepted.")
      .sample("", c.accepted);
  Family(out, "portico_connections_handled_total", "counter", "Client connections handled.")
      .sample("", c.handled);
  {
    Family f(out, "portico_connections", "gauge",
             "Open client connections: reading a request, writing a response, or idle "
             "(keep-alive, waiting for the next request).");
    f.sample(label("state", "reading"), std::to_string(c.reading));
    f.sample(label("state", "writing"), std::to_string(c.writing));
    f.sample(label("state", "idle"), std::to_string(c.waiting));
  }
  {
    Family f(out, "portico_listen_queue_length", "gauge",
             "Connections the kernel holds for a listening socket, not yet accepted.");
    for (const ListenQueue& q : s.listenQueues) f.sample(label("listener", q.listener), q.queued);
  }
  {
    Family f(out, "portico_listen_queue_limit", "gauge", "A listening socket's backlog.");
    for (const ListenQueue& q : s.listenQueues) f.sample(label("listener", q.listener), q.limit);
  }

  // Workers: by state (a ready worker is idle, busy — a Python thread in a request — or stuck:
  // a thread in one past --timeout).
  uint64_t booting = 0, idle = 0, busy = 0, stuck = 0, draining = 0;
  uint64_t threadsBusy = 0, threadsAll = 0;
  for (const WorkerSnapshot& w : s.workers) {
    threadsBusy += w.pythonBusy;
    threadsAll += w.pythonThreads;
    switch (w.state) {
      case WorkerState::kBooting: ++booting; break;
      case WorkerState::kDraining: ++draining; break;
      case WorkerState::kReady:
        if (w.pythonStuck) {
          ++stuck;
        } else if (w.pythonBusy) {
          ++busy;
        } else {
          ++idle;
        }
        break;
      case WorkerState::kFree: break;
    }
  }
  {
    Family f(out, "portico_workers", "gauge", "Worker processes by state.");
    f.sample(label("state", "booting"), booting);
    f.sample(label("state", "idle"), idle);
    f.sample(label("state", "busy"), busy);
    f.sample(label("state", "stuck"), stuck);
    f.sample(label("state", "draining"), draining);
  }
  Family(out, "portico_workers_target", "gauge", "Worker processes wanted (-w, TTIN/TTOU).")
      .sample("", s.targetWorkers);
  {
    Family f(out, "portico_worker_restarts_total", "counter",
             "Workers replaced, by cause: crash, timeout (killed by the master), max_requests, "
             "memory (--max-worker-memory), reload (HUP, TTOU).");
    for (auto cause : {RestartCause::kCrash, RestartCause::kTimeout, RestartCause::kMaxRequests,
                       RestartCause::kMemory, RestartCause::kReload}) {
      f.sample(label("cause", restartCauseName(cause)), s.restarts[static_cast<size_t>(cause)]);
    }
  }
  Family(out, "portico_reloads_total", "counter", "Reloads (HUP) carried out.")
      .sample("", s.reloads);
  {
    Family f(out, "portico_worker_resident_memory_bytes", "gauge",
             "Each worker's resident memory (refreshed every second).");
    for (const WorkerSnapshot& w : s.workers) {
      f.sample(label("worker", std::to_string(w.slot)) + "," + label("pid", std::to_string(w.pid)),
               w.rssBytes);
    }
  }
  {
    Family f(out, "portico_worker_requests_total", "counter",
             "Requests each live worker has answered.");
    for (const WorkerSnapshot& w : s.workers) {
      f.sample(label("worker", std::to_string(w.slot)) + "," + label("pid", std::to_string(w.pid)),
               w.requests);
    }
  }
  {
    Family f(out, "portico_python_threads", "gauge",
             "Python threads of the live workers: busy (in a request) or idle.");
    f.sample(label("state", "busy"), threadsBusy);
    f.sample(label("state", "idle"), threadsAll > threadsBusy ? threadsAll - threadsBusy : 0);
  }
  Family(out, "portico_python_gil_wait_seconds_total", "counter",
         "Time Python threads waited for the GIL before running a request.")
      .sample("", seconds(m.gilWaitMicros.load(std::memory_order_relaxed)));
  Family(out, "portico_python_gil_waits_total", "counter",
         "Requests whose Python thread had to take the GIL back.")
      .sample("", m.gilWaits.load(std::memory_order_relaxed));
  {
    Family f(out, "portico_tls_handshakes_total", "counter",
             "TLS handshakes with clients: completed, or begun and never completed.");
    f.sample(label("result", "ok"), m.tlsHandshakes.load(std::memory_order_relaxed));
    f.sample(label("result", "failed"), m.tlsHandshakeFailures.load(std::memory_order_relaxed));
  }
  Family(out, "portico_tls_sessions_resumed_total", "counter",
         "Completed TLS handshakes that resumed a session.")
      .sample("", m.tlsResumed.load(std::memory_order_relaxed));
  Family(out, "portico_start_time_seconds", "gauge", "When the master started (Unix time).")
      .sample("", seconds(s.startedUnixMs * 1000));
  {
    Family f(out, "portico_master_state", "gauge", "The master's state (1 for the current one).");
    static constexpr const char* kStates[] = {"starting", "running", "reloading", "stopping"};
    for (size_t i = 0; i < 4; ++i) {
      f.sample(label("state", kStates[i]), static_cast<size_t>(s.masterState) == i ? 1 : 0);
    }
  }
  return out;
}

}  // namespace portico::process
