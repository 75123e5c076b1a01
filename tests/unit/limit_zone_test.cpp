// nginx's limit_req leaky bucket and limit_conn counts on a zone region (http/limit_zone), with
// a fake clock; the zone shared by forked processes; the directives' parsing (config/conf_limit).
#include "http/limit_zone.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "config/conf_builder.h"
#include "config/conf_limit.h"
#include "http/variables.h"

namespace portico::http {
namespace {

// A private region for one zone (the server maps it MAP_SHARED; the logic does not care).
class Region {
 public:
  explicit Region(size_t size, LimitZone::Kind kind, bool shared = false) : size_(size) {
    base_ = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(base_, MAP_FAILED);
    EXPECT_TRUE(LimitZone::format(base_, size, kind));
    zone_ = std::make_unique<LimitZone>(base_);
  }
  ~Region() { ::munmap(base_, size_); }
  LimitZone& zone() { return *zone_; }

 private:
  void* base_;
  size_t size_;
  std::unique_ptr<LimitZone> zone_;
};

constexpr uint64_t kT0 = 1'000'000;  // a fake CLOCK_MONOTONIC ms

LimitReqVerdict one(LimitZone& zone, uint64_t rate, uint64_t burst, uint64_t delay,
                    const std::string& key, uint64_t now) {
  std::vector<LimitReqCheck> checks{{&zone, rate, burst, delay, key}};
  return evaluateLimitReq(checks, now);
}

using K = LimitReqVerdict::Kind;

TEST(LimitReq, BurstThenRejectThenLeak) {
  Region r(1 << 20, LimitZone::Kind::kReq);
  // rate=2r/s burst=1 nodelay: nginx's limit_req.t.
  const uint64_t rate = 2000, burst = 1000, nodelay = 9'223'372'036'854'000;
  EXPECT_EQ(one(r.zone(), rate, burst, nodelay, "a", kT0).kind, K::kPassed);
  LimitReqVerdict second = one(r.zone(), rate, burst, nodelay, "a", kT0);
  EXPECT_EQ(second.kind, K::kPassed);
  EXPECT_EQ(second.excess, 1000u);
  LimitReqVerdict third = one(r.zone(), rate, burst, nodelay, "a", kT0 + 5);
  EXPECT_EQ(third.kind, K::kRejected);
  EXPECT_EQ(third.excess, 1990u);  // 1000 - 2000*5/1000 + 1000: "excess: 1.990"
  // A rejection is not charged: 500 ms later one request's worth has leaked.
  EXPECT_EQ(one(r.zone(), rate, burst, nodelay, "a", kT0 + 500).kind, K::kPassed);
  EXPECT_EQ(one(r.zone(), rate, burst, nodelay, "a", kT0 + 500).kind, K::kRejected);
  // Other keys have their own bucket; an empty key is not limited.
  EXPECT_EQ(one(r.zone(), rate, burst, nodelay, "b", kT0 + 500).kind, K::kPassed);
  EXPECT_EQ(one(r.zone(), rate, burst, nodelay, "", kT0 + 500).kind, K::kDeclined);
  EXPECT_EQ(r.zone().nodes(), 2u);
}

TEST(LimitReq, DelayIsTheExcessOverDelayAtTheRate) {
  Region r(1 << 20, LimitZone::Kind::kReq);
  // rate=30r/m (500 milli-r/s), burst=2, delay=1: nginx's limit_req_delay.t.
  const uint64_t rate = 500, burst = 2000, delay = 1000;
  EXPECT_EQ(one(r.zone(), rate, burst, delay, "k", kT0).kind, K::kPassed);
  EXPECT_EQ(one(r.zone(), rate, burst, delay, "k", kT0).kind, K::kPassed);  // excess 1 ≤ delay
  LimitReqVerdict held = one(r.zone(), rate, burst, delay, "k", kT0);
  EXPECT_EQ(held.kind, K::kDelayed);
  EXPECT_EQ(held.excess, 2000u);
  EXPECT_EQ(held.delayMs, 2000u);  // (2000 - 1000) * 1000 / 500
  EXPECT_EQ(one(r.zone(), rate, burst, delay, "k", kT0).kind, K::kRejected);
  // Without nodelay/delay= every request over the rate waits: burst=5 at 2r/s.
  EXPECT_EQ(one(r.zone(), 2000, 5000, 0, "w", kT0).kind, K::kPassed);
  LimitReqVerdict w = one(r.zone(), 2000, 5000, 0, "w", kT0);
  EXPECT_EQ(w.kind, K::kDelayed);
  EXPECT_EQ(w.delayMs, 500u);
}

TEST(LimitReq, ClockGoingBackIsClamped) {
  Region r(1 << 20, LimitZone::Kind::kReq);
  EXPECT_EQ(one(r.zone(), 1000, 0, 0, "k", kT0).kind, K::kPassed);
  // A little back: no time passed (ms = 0), so the bucket is still full.
  EXPECT_EQ(one(r.zone(), 1000, 0, 0, "k", kT0 - 10).kind, K::kRejected);
}

TEST(LimitReq, SeveralLimitsAllCheckedLongestDelayWins) {
  Region a(1 << 20, LimitZone::Kind::kReq), b(1 << 20, LimitZone::Kind::kReq);
  // limit_req2.t: zone=fast (1000r/s) then zone=slow (1r/m), both with key per request.
  auto both = [&](const std::string& fastKey, const std::string& slowKey, uint64_t now) {
    std::vector<LimitReqCheck> checks{{&a.zone(), 1'000'000, 0, 0, fastKey},
                                      {&b.zone(), 16, 0, 0, slowKey}};
    return evaluateLimitReq(checks, now);
  };
  EXPECT_EQ(both("1", "", kT0).kind, K::kPassed);  // only the fast one counts
  EXPECT_EQ(both("1", "", kT0 + 100).kind, K::kPassed);
  EXPECT_EQ(both("", "1", kT0).kind, K::kPassed);
  LimitReqVerdict slow = both("", "1", kT0 + 100);
  EXPECT_EQ(slow.kind, K::kRejected);
  EXPECT_EQ(slow.limit, 1u);
  EXPECT_EQ(both("2", "2", kT0).kind, K::kPassed);
  EXPECT_EQ(both("2", "2", kT0 + 100).kind, K::kRejected);
  EXPECT_EQ(both("", "", kT0).kind, K::kDeclined);

  // The longest delay applies and names its zone; both buckets are charged.
  Region c(1 << 20, LimitZone::Kind::kReq), d(1 << 20, LimitZone::Kind::kReq);
  auto two = [&](uint64_t now) {
    std::vector<LimitReqCheck> checks{{&c.zone(), 1000, 10'000, 0, "x"},
                                      {&d.zone(), 4000, 10'000, 0, "x"}};
    return evaluateLimitReq(checks, now);
  };
  EXPECT_EQ(two(kT0).kind, K::kPassed);
  LimitReqVerdict v = two(kT0);
  EXPECT_EQ(v.kind, K::kDelayed);
  EXPECT_EQ(v.limit, 0u);       // 1000 milli excess at 1 r/s: 1000 ms (zone d: 250 ms)
  EXPECT_EQ(v.delayMs, 1000u);
  EXPECT_EQ(v.excess, 1000u);
}

TEST(LimitReq, RejectionByALaterLimitChargesNoEarlierOne) {
  Region a(1 << 20, LimitZone::Kind::kReq), b(1 << 20, LimitZone::Kind::kReq);
  auto both = [&](uint64_t now) {
    std::vector<LimitReqCheck> checks{{&a.zone(), 1000, 1000, 1000, "x"},
                                      {&b.zone(), 1, 0, 0, "x"}};
    return evaluateLimitReq(checks, now);
  };
  EXPECT_EQ(both(kT0).kind, K::kPassed);    // a charged once (excess 0 → 0 after a new node)
  EXPECT_EQ(both(kT0).kind, K::kRejected);  // b is full; a was only held
  // Had the rejected request been charged to a, its bucket would hold 1000 and the first lone
  // request below would already be over the burst.
  EXPECT_EQ(one(a.zone(), 1000, 1000, 1000, "x", kT0).kind, K::kPassed);
  EXPECT_EQ(one(a.zone(), 1000, 1000, 1000, "x", kT0).kind, K::kRejected);
}

TEST(LimitReq, FullZoneExpiresTheOldestNode) {
  Region r(LimitZone::kMinSize, LimitZone::Kind::kReq);
  // Far more keys than fit: each new key forces the least recently used one out.
  for (int i = 0; i < 2000; ++i) {
    ASSERT_EQ(one(r.zone(), 1, 0, 0, "key-" + std::to_string(i), kT0).kind, K::kPassed) << i;
  }
  EXPECT_LT(r.zone().nodes(), 2000u);
  // The newest key is still known (its bucket is full), the oldest was forgotten.
  EXPECT_EQ(one(r.zone(), 1, 0, 0, "key-1999", kT0).kind, K::kRejected);
  EXPECT_EQ(one(r.zone(), 1, 0, 0, "key-0", kT0).kind, K::kPassed);
  // A key no chunk can hold: nginx's "could not allocate node".
  EXPECT_EQ(one(r.zone(), 1, 0, 0, std::string(60000, 'x'), kT0).kind, K::kNoMemory);
}

TEST(LimitReq, IdleDrainedNodesExpireAfterAMinute) {
  Region r(1 << 20, LimitZone::Kind::kReq);
  EXPECT_EQ(one(r.zone(), 1000, 0, 0, "old", kT0).kind, K::kPassed);
  EXPECT_EQ(one(r.zone(), 1000, 0, 0, "new", kT0 + 30'000).kind, K::kPassed);
  EXPECT_EQ(r.zone().nodes(), 2u);
  EXPECT_EQ(one(r.zone(), 1000, 0, 0, "newer", kT0 + 61'000).kind, K::kPassed);
  EXPECT_EQ(r.zone().nodes(), 2u);  // "old" went; "new" is younger than a minute
}

TEST(LimitConn, CountsUpToTheLimitAndReleases) {
  Region r(1 << 20, LimitZone::Kind::kConn);
  std::vector<LimitConnCheck> checks{{&r.zone(), 2, "ip"}};
  LimitConnVerdict a = evaluateLimitConn(checks);
  LimitConnVerdict b = evaluateLimitConn(checks);
  EXPECT_EQ(a.kind, LimitConnVerdict::Kind::kPassed);
  EXPECT_EQ(b.kind, LimitConnVerdict::Kind::kPassed);
  EXPECT_EQ(evaluateLimitConn(checks).kind, LimitConnVerdict::Kind::kRejected);
  r.zone().releaseConn(a.held.at(0).second);
  LimitConnVerdict c = evaluateLimitConn(checks);
  EXPECT_EQ(c.kind, LimitConnVerdict::Kind::kPassed);
  r.zone().releaseConn(b.held.at(0).second);
  r.zone().releaseConn(c.held.at(0).second);
  EXPECT_EQ(r.zone().nodes(), 0u);  // a node goes with its last connection
  EXPECT_EQ(evaluateLimitConn({{&r.zone(), 1, ""}}).kind, LimitConnVerdict::Kind::kDeclined);
}

TEST(LimitConn, RejectionGivesBackWhatTheRequestTook) {
  Region a(1 << 20, LimitZone::Kind::kConn), b(1 << 20, LimitZone::Kind::kConn);
  LimitConnVerdict first = evaluateLimitConn({{&b.zone(), 1, "x"}});
  ASSERT_EQ(first.kind, LimitConnVerdict::Kind::kPassed);
  LimitConnVerdict v = evaluateLimitConn({{&a.zone(), 5, "x"}, {&b.zone(), 1, "x"}});
  EXPECT_EQ(v.kind, LimitConnVerdict::Kind::kRejected);
  EXPECT_EQ(v.limit, 1u);
  EXPECT_TRUE(v.held.empty());
  EXPECT_EQ(a.zone().nodes(), 0u);  // a's count went back
}

TEST(LimitConn, FullZoneRefuses) {
  Region r(LimitZone::kMinSize, LimitZone::Kind::kConn);
  int passed = 0;
  LimitConnVerdict v;
  for (int i = 0; i < 5000; ++i) {
    v = evaluateLimitConn({{&r.zone(), 1, "k" + std::to_string(i)}});
    if (v.kind != LimitConnVerdict::Kind::kPassed) break;
    ++passed;
  }
  EXPECT_EQ(v.kind, LimitConnVerdict::Kind::kNoMemory);
  EXPECT_GT(passed, 100);
}

// The zone in MAP_SHARED memory counts for every process that maps it, and a process killed
// while it may hold the zone's lock does not wedge the others (the mutex is robust).
TEST(LimitZoneShared, ForkedProcessesShareCountsAndSurviveADeadLocker) {
  Region r(1 << 20, LimitZone::Kind::kConn, true);
  pid_t child = ::fork();
  if (child == 0) {
    LimitConnVerdict v = evaluateLimitConn({{&r.zone(), 1, "shared"}});
    ::_exit(v.kind == LimitConnVerdict::Kind::kPassed ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(evaluateLimitConn({{&r.zone(), 1, "shared"}}).kind,
            LimitConnVerdict::Kind::kRejected);

  for (int round = 0; round < 5; ++round) {
    pid_t busy = ::fork();
    if (busy == 0) {
      for (;;) {
        LimitConnVerdict v = evaluateLimitConn({{&r.zone(), 100, "spin"}});
        for (auto& [zone, node] : v.held) zone->releaseConn(node);
      }
    }
    ::usleep(20'000);
    ::kill(busy, SIGKILL);
    ASSERT_EQ(::waitpid(busy, &status, 0), busy);
    ::alarm(10);  // a wedged lock fails the test instead of hanging it
    LimitConnVerdict v = evaluateLimitConn({{&r.zone(), 1000, "after"}});
    EXPECT_EQ(v.kind, LimitConnVerdict::Kind::kPassed);
    for (auto& [zone, node] : v.held) zone->releaseConn(node);
    ::alarm(0);
  }
}

}  // namespace
}  // namespace portico::http

namespace portico::config {
namespace {

ConfLoadResult load(const std::string& http) {
  ConfLoader loader;
  loader.addMemoryFile("/etc/p/site.conf", "events {}\nhttp {\n" + http + "\n}\n");
  ConfLoadOptions options{"/etc/p/site.conf", "/srv/", "", ""};
  return loadConf(options, loader);
}

std::string errorOf(const std::string& http) {
  ConfLoadResult r = load(http);
  return r.ok ? "(accepted)" : r.messages.back();
}

TEST(LimitConf, ZonesRulesAndInheritance) {
  ConfLoadResult r = load(
      "limit_req_zone $binary_remote_addr zone=one:1m rate=30r/m;\n"
      "limit_conn_zone $server_name zone=c:64k;\n"
      "limit_req zone=one burst=5 nodelay;\n"
      "limit_req_status 429;\n"
      "server { limit_conn c 3; limit_conn_log_level warn;\n"
      "  location / { }\n"
      "  location /own { limit_req zone=one delay=2 burst=4; limit_req_dry_run on; }\n"
      "}");
  ASSERT_TRUE(r.ok) << r.messages.back();
  const HttpSite& site = r.config.site;
  ASSERT_EQ(site.limitZones.size(), 2u);
  EXPECT_EQ(site.limitZones[0].name, "one");
  EXPECT_EQ(site.limitZones[0].rate, 500u);  // 30 * 1000 / 60
  EXPECT_EQ(site.limitZones[0].size, 1u << 20);
  EXPECT_EQ(site.limitZones[1].kind, LimitZoneSpec::Kind::kConn);
  EXPECT_EQ(site.limitZones[1].key, "$server_name");
  const LimitSettings& inherited = site.servers[0].locations[0].settings.limit;
  ASSERT_EQ(inherited.req.size(), 1u);
  EXPECT_EQ(inherited.req[0].burst, 5000u);
  EXPECT_GT(inherited.req[0].delay, 1'000'000'000'000u);  // nodelay
  EXPECT_EQ(inherited.reqStatus, 429);
  ASSERT_EQ(inherited.conn.size(), 1u);
  EXPECT_EQ(inherited.conn[0].conn, 3u);
  EXPECT_EQ(inherited.connLogLevel, LimitLogLevel::kWarn);
  EXPECT_FALSE(inherited.reqDryRun);
  const LimitSettings& own = site.servers[0].locations[1].settings.limit;
  ASSERT_EQ(own.req.size(), 1u);  // its own list replaces the inherited one
  EXPECT_EQ(own.req[0].delay, 2000u);
  EXPECT_EQ(own.req[0].burst, 4000u);
  EXPECT_TRUE(own.reqDryRun);
}

TEST(LimitConf, NginxMessages) {
  EXPECT_EQ(errorOf("limit_req_zone $uri zone=one:1m rate=1r/s sync;"),
            "[emerg] invalid number of arguments in \"limit_req_zone\" directive in "
            "/etc/p/site.conf:3");
  EXPECT_EQ(errorOf("limit_req_zone $uri zone=one:1m rate=1r/s; limit_req_zone $uri zone=one:2m "
                    "rate=1r/s;"),
            "[emerg] the size 2097152 of shared memory zone \"one\" conflicts with already "
            "declared size 1048576 in /etc/p/site.conf:3");
  EXPECT_EQ(errorOf("limit_req_zone $uri zone=one:1m rate=1r/s; limit_req_zone $args zone=one:1m "
                    "rate=1r/s;"),
            "[emerg] limit_req_zone \"one\" is already bound to key \"$uri\" in "
            "/etc/p/site.conf:3");
  EXPECT_EQ(errorOf("limit_conn_zone $uri zone=one:1m; limit_req zone=one;"),
            "[emerg] the shared memory zone \"one\" is already declared for a different use in "
            "/etc/p/site.conf:3");
  EXPECT_EQ(errorOf("limit_req_zone $uri zone=one:1k rate=1r/s;"),
            "[emerg] zone \"zone=one:1k\" is too small in /etc/p/site.conf:3");
  EXPECT_EQ(errorOf("limit_req_zone $uri zone=one:1m rate=xr/s;"),
            "[emerg] invalid rate \"rate=xr/s\" in /etc/p/site.conf:3");
  EXPECT_EQ(errorOf("limit_req zone=two;"), "[emerg] zero size shared memory zone \"two\"");
  EXPECT_EQ(errorOf("limit_req_zone $uri zone=one:1m rate=1r/s;\nlimit_req zone=one;\n"
                    "limit_req zone=one burst=2;"),
            "[emerg] \"limit_req\" directive is duplicate in /etc/p/site.conf:5");
  EXPECT_EQ(errorOf("limit_req_zone $uri zone=one:1m rate=1r/s; limit_req zone=one burst=0;"),
            "[emerg] invalid burst value \"burst=0\" in /etc/p/site.conf:3");
  EXPECT_EQ(errorOf("limit_conn_zone $uri zone=c:1m; limit_conn c 65536;"),
            "[emerg] connection limit must be less 65536 in /etc/p/site.conf:3");
  EXPECT_EQ(errorOf("limit_conn_zone $uri zone=c:1m; limit_conn c x;"),
            "[emerg] invalid number of connections \"x\" in /etc/p/site.conf:3");
  EXPECT_EQ(errorOf("limit_req_status 399;"),
            "[emerg] value must be between 400 and 599 in /etc/p/site.conf:3");
  EXPECT_EQ(errorOf("limit_conn_log_level debug;"),
            "[emerg] invalid value \"debug\" in /etc/p/site.conf:3");
  EXPECT_EQ(errorOf("server { location / { limit_req_zone $uri zone=z:1m rate=1r/s; } }"),
            "[emerg] \"limit_req_zone\" directive is not allowed here in /etc/p/site.conf:3");
}

}  // namespace
}  // namespace portico::config

namespace portico::http {
namespace {

std::string expandWith(const std::string& text, const VariableContext& c) {
  std::string error;
  std::optional<Template> t = Template::compile(text, error);
  EXPECT_TRUE(t) << error;
  return t ? t->expand(c) : std::string();
}

TEST(LimitVariables, BinaryRemoteAddrAndStatuses) {
  ConnectionInfo v4;
  v4.peerAddress = "127.0.0.1";
  ConnectionInfo v6;
  v6.peerAddress = "::1";
  ConnectionInfo unix;
  unix.isUnix = true;
  VariableContext c;
  c.connection = &v4;
  EXPECT_EQ(expandWith("$binary_remote_addr", c), std::string("\x7f\0\0\x01", 4));
  c.connection = &v6;
  EXPECT_EQ(expandWith("$binary_remote_addr", c), std::string(15, '\0') + "\x01");
  c.connection = &unix;
  EXPECT_EQ(expandWith("$binary_remote_addr", c), "unix:");
  unix.peerAddress = "127.0.0.1";  // the client a uwsgi front server (or realip) named
  EXPECT_EQ(expandWith("$binary_remote_addr", c), std::string("\x7f\0\0\x01", 4));
  // Not found until the module decided: "-" in a log line, "" elsewhere.
  EXPECT_EQ(expandWith("[$limit_req_status]", c), "[]");
  std::optional<Template> log = Template::compile("$uri:$limit_req_status:$limit_conn_status",
                                                  *std::make_unique<std::string>());
  c.uri = "/";
  EXPECT_EQ(log->expand(c, VariableEscape::kDefault), "/:-:-");
  c.limitReqStatus = "DELAYED_DRY_RUN";
  c.limitConnStatus = "REJECTED";
  EXPECT_EQ(log->expand(c, VariableEscape::kDefault), "/:DELAYED_DRY_RUN:REJECTED");
}

}  // namespace
}  // namespace portico::http
