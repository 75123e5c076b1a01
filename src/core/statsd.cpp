#include "core/statsd.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/unique_fd.h"

namespace portico {
namespace {

// The process's client. Set while only the master's one thread runs (start, reload); read by
// any thread after.
struct Client {
  UniqueFd fd;
  std::string prefix;
  std::string tags;
};

Client& client() {
  static Client c;
  return c;
}

std::atomic<bool> gEnabled{false};

// A thread's gathered request metrics (batchOnThisThread).
struct Batch {
  bool on = false;
  std::string pending;
};
thread_local Batch tBatch;

void sendDatagram(const std::string& datagram) {
  // MSG_DONTWAIT: a full socket buffer drops the metric rather than block a loop.
  (void)::send(client().fd.get(), datagram.data(), datagram.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

void send(std::string_view name, std::string_view value, std::string_view type) {
  if (!gEnabled.load(std::memory_order_relaxed)) return;
  Client& c = client();
  sendDatagram(Statsd::line(c.prefix, name, value, type, c.tags));
}

}  // namespace

bool Statsd::configure(const std::string& hostPort, const std::string& prefix,
                       const std::string& tags, std::string& error) {
  gEnabled.store(false);
  Client& c = client();
  c.fd.reset();
  if (hostPort.empty()) return true;
  size_t colon = hostPort.rfind(':');
  if (colon == std::string::npos) {
    error = "--statsd-host " + hostPort + ": expected HOST:PORT";
    return false;
  }
  std::string host = hostPort.substr(0, colon);
  std::string port = hostPort.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    error = "--statsd-host " + hostPort + ": " + ::gai_strerror(rc);
    return false;
  }
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) continue;
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) continue;
    c.fd = std::move(fd);
    break;
  }
  ::freeaddrinfo(found);
  if (!c.fd) {
    error = "--statsd-host " + hostPort + ": cannot open a UDP socket to it";
    return false;
  }
  c.prefix = prefixOf(prefix);
  c.tags = tags;
  gEnabled.store(true);
  return true;
}

bool Statsd::enabled() { return gEnabled.load(std::memory_order_relaxed); }

void Statsd::increment(std::string_view name, int64_t value) {
  if (!enabled()) return;
  send(name, std::to_string(value) + "|c|@1.0", "");
}

void Statsd::gauge(std::string_view name, int64_t value) {
  if (!enabled()) return;
  send(name, std::to_string(value), "g");
}

void Statsd::histogram(std::string_view name, double milliseconds) {
  if (!enabled()) return;
  send(name, pythonFloat(milliseconds), "ms");
}

void Statsd::request(int status, uint64_t durationMicros) {
  if (!enabled()) return;
  // gunicorn sends three datagrams per request; statsd, Telegraf and the Datadog agent split a
  // datagram at newlines, so one carries them all, and a loop's batch of requests shares one
  // send: three sends per request took hello's throughput to 0.52-0.74x of statsd off.
  Client& c = client();
  std::string lines = requestDatagram(c.prefix, c.tags, status, durationMicros);
  Batch& batch = tBatch;
  if (!batch.on) {
    sendDatagram(lines);
    return;
  }
  if (!batch.pending.empty() && batch.pending.size() + 1 + lines.size() > kMaxDatagram) flush();
  if (!batch.pending.empty()) batch.pending += '\n';
  batch.pending += lines;
}

void Statsd::batchOnThisThread() { tBatch.on = true; }

void Statsd::flush() {
  Batch& batch = tBatch;
  if (batch.pending.empty()) return;
  if (enabled()) sendDatagram(batch.pending);
  batch.pending.clear();
}

std::string Statsd::requestDatagram(std::string_view prefix, std::string_view tags, int status,
                                    uint64_t durationMicros) {
  std::string out =
      line(prefix, "gunicorn.request.duration",
           pythonFloat(static_cast<double>(durationMicros) / 1000.0), "ms", tags);
  out += '\n';
  out += line(prefix, "gunicorn.requests", "1|c|@1.0", "", tags);
  out += '\n';
  out += line(prefix, "gunicorn.request.status." + std::to_string(status), "1|c|@1.0", "", tags);
  return out;
}

std::string Statsd::line(std::string_view prefix, std::string_view name, std::string_view value,
                         std::string_view type, std::string_view tags) {
  // gunicorn: "{prefix}{name}:{value}|{type}", a counter's value carrying "|c|@RATE" already.
  std::string out;
  out.reserve(prefix.size() + name.size() + value.size() + tags.size() + 8);
  out.append(prefix).append(name).append(":").append(value);
  if (!type.empty()) out.append("|").append(type);
  if (!tags.empty()) out.append("|#").append(tags);
  return out;
}

std::string Statsd::prefixOf(std::string_view prefix) {
  // re.sub(r"^(.+[^.]+)\.*$", r"\g<1>.", prefix): needs two characters, the last not a dot.
  size_t end = prefix.size();
  while (end > 0 && prefix[end - 1] == '.') --end;
  if (end < 2) return std::string(prefix);
  return std::string(prefix.substr(0, end)) + ".";
}

std::string Statsd::pythonFloat(double value) {
  if (!std::isfinite(value)) return "0.0";
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  std::string out(buffer, ec == std::errc() ? end : buffer);
  // Python writes 1e-05 as shortest repr too; portico's durations are never that small or
  // large, so only a whole number needs its ".0".
  if (out.find_first_of(".e") == std::string::npos) out += ".0";
  return out;
}

}  // namespace portico
