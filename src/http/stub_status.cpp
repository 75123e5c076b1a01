#include "http/stub_status.h"

namespace portico::http {
namespace {

ConnectionStats gLocalStats;
ConnectionStats* gStats = &gLocalStats;
std::function<ConnectionCounters()>& reader() {
  static std::function<ConnectionCounters()> r;
  return r;
}

std::atomic<int64_t>* slotOf(ConnectionPhase phase) {
  switch (phase) {
    case ConnectionPhase::kWaiting: return &gStats->waiting;
    case ConnectionPhase::kReading: return &gStats->reading;
    case ConnectionPhase::kWriting: return &gStats->writing;
    case ConnectionPhase::kNone: break;
  }
  return nullptr;
}

}  // namespace

ConnectionStats& connectionStats() { return *gStats; }

void setConnectionStats(ConnectionStats* stats) { gStats = stats ? stats : &gLocalStats; }

void setConnectionCountersReader(std::function<ConnectionCounters()> r) { reader() = std::move(r); }

ConnectionCounters snapshotOf(const ConnectionStats& s) {
  ConnectionCounters c;
  c.accepted = s.accepted.load(std::memory_order_relaxed);
  c.handled = s.handled.load(std::memory_order_relaxed);
  c.requests = s.requests.load(std::memory_order_relaxed);
  c.active = s.active.load(std::memory_order_relaxed);
  c.reading = s.reading.load(std::memory_order_relaxed);
  c.writing = s.writing.load(std::memory_order_relaxed);
  c.waiting = s.waiting.load(std::memory_order_relaxed);
  return c;
}

ConnectionCounters readConnectionCounters() {
  if (reader()) return reader()();
  return snapshotOf(*gStats);
}

std::string renderStubStatus(const ConnectionCounters& c) {
  return "Active connections: " + std::to_string(c.active) +
         " \nserver accepts handled requests\n " + std::to_string(c.accepted) + " " +
         std::to_string(c.handled) + " " + std::to_string(c.requests) + " \nReading: " +
         std::to_string(c.reading) + " Writing: " + std::to_string(c.writing) +
         " Waiting: " + std::to_string(c.waiting) + " \n";
}

void moveConnectionPhase(ConnectionPhase from, ConnectionPhase to) {
  if (from == to) return;
  if (auto* s = slotOf(from)) s->fetch_sub(1, std::memory_order_relaxed);
  if (auto* s = slotOf(to)) s->fetch_add(1, std::memory_order_relaxed);
  if (to == ConnectionPhase::kReading ||
      (to == ConnectionPhase::kWriting && from != ConnectionPhase::kReading)) {
    gStats->requests.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace portico::http
