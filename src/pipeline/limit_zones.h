#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/site.h"
#include "core/shared_memory.h"
#include "http/limit_zone.h"
#include "http/variables.h"

namespace portico::pipeline {

// The shared mappings of a site's limit zones (limit_req_zone, limit_conn_zone). The master
// creates them before it forks the workers, which inherit the mappings (MAP_SHARED, so every
// worker counts in the same zone); a reload reuses the mapping of a zone whose name, module and
// size are unchanged, as nginx reuses its shared memory zones, so the counts survive it. Made
// on the master's thread; workers only look zones up.
class LimitZones {
 public:
  ~LimitZones();
  // One mapping per zone of `site`, reusing `previous`'s where nginx would; null with nginx's
  // message (a reused zone whose key changed, a failed mmap).
  static std::shared_ptr<LimitZones> create(const config::HttpSite& site,
                                            const LimitZones* previous, std::string& error);
  // The zones of the configuration the master runs; a worker forked from it inherits them.
  static std::shared_ptr<LimitZones>& installed();

  http::LimitZone* find(const std::string& name) const;
  const config::LimitZoneSpec* spec(const std::string& name) const;

 private:
  struct Zone {
    config::LimitZoneSpec spec;
    std::shared_ptr<SharedMemory> mapping;
    std::unique_ptr<http::LimitZone> view;
  };
  std::map<std::string, Zone> zones_;
};

// A location's limit_req and limit_conn rules with their zones and compiled keys; built once
// per worker by SiteHandler, read-only after.
struct LocationLimits {
  struct Req {
    http::LimitZone* zone;
    const config::LimitZoneSpec* spec;
    const http::Template* key;
    uint64_t burst;
    uint64_t delay;
  };
  struct Conn {
    http::LimitZone* zone;
    const config::LimitZoneSpec* spec;
    const http::Template* key;
    uint32_t conn;
  };
  const config::LimitSettings* settings = nullptr;
  std::vector<Req> req;
  std::vector<Conn> conn;
  bool empty() const { return req.empty() && conn.empty(); }
};

// Compiles every location's limits against the worker's zones. One per SiteHandler.
class LimitCompiler {
 public:
  // False with a message when a zone is missing (the configuration checks prevent it).
  bool build(const config::HttpSite& site, std::string& error);
  // The limits of a level (null: none); lives as long as the compiler.
  const LocationLimits* compile(const config::LimitSettings& settings, std::string& error);

 private:
  std::shared_ptr<LimitZones> zones_;
  std::map<std::string, http::Template> keys_;  // by zone name
  std::vector<std::unique_ptr<LocationLimits>> limits_;
};

// One request's trip through nginx's preaccess phase (limit_req, then limit_conn) and the
// limit_conn counts it holds until it ends; owned by the SiteRequest, loop thread.
class LimitRequestState {
 public:
  LimitRequestState() = default;
  ~LimitRequestState() { release(); }
  LimitRequestState(const LimitRequestState&) = delete;
  LimitRequestState& operator=(const LimitRequestState&) = delete;

  // What the phase decided: go on with the content, answer `status`, or come back after
  // `delayMs` (the request is held; the phase then passes, limit_conn still to run).
  struct Outcome {
    enum class Action { kContinue, kReject, kDelay };
    Action action = Action::kContinue;
    int status = 0;
    uint64_t delayMs = 0;
  };
  // Runs the modules that have not decided yet for this request (nginx runs each once per
  // request, also after internal redirects). `vars` expands the keys and names the request in
  // the error log lines.
  Outcome run(const LocationLimits& limits, const http::VariableContext& vars, uint64_t nowMs);
  // The limit_conn counts go back (the request ended); idempotent.
  void release();

  std::string_view reqStatus() const { return reqStatus_; }
  std::string_view connStatus() const { return connStatus_; }

 private:
  std::string_view reqStatus_;
  std::string_view connStatus_;
  std::vector<std::pair<http::LimitZone*, uint64_t>> held_;
};

}  // namespace portico::pipeline
