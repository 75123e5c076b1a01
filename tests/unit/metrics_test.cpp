// The metrics' counters (core/request_metrics.h), their sum over the status board with the
// retired workers' counts (process/worker_status.h) and the Prometheus text (process/metrics.h).

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>

#include "core/request_metrics.h"
#include "process/metrics.h"
#include "process/worker_status.h"

namespace portico {
namespace {

using process::BoardTotals;
using process::MetricsSnapshot;
using process::StatusBoard;
using process::WorkerState;

// name{labels} → value of every sample line; fails the test on a line that is not one.
std::map<std::string, std::string> samplesOf(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  static const std::regex kSample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})?) (\S+)$)");
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::smatch m;
    EXPECT_TRUE(std::regex_match(line, m, kSample)) << line;
    if (!m.empty()) out[m[1]] = m[3];
  }
  return out;
}

TEST(RequestMetrics, StatusClassesAndBuckets) {
  EXPECT_EQ(statusClassOf(0), 0u);
  EXPECT_EQ(statusClassOf(99), 0u);
  EXPECT_EQ(statusClassOf(101), 1u);
  EXPECT_EQ(statusClassOf(499), 4u);
  EXPECT_EQ(statusClassOf(599), 5u);
  EXPECT_EQ(statusClassOf(600), 0u);
  EXPECT_EQ(durationBucketOf(0), 0u);
  EXPECT_EQ(durationBucketOf(1000), 0u);  // le="0.001" holds 1 ms exactly
  EXPECT_EQ(durationBucketOf(1001), 1u);
  EXPECT_EQ(durationBucketOf(10000000), kDurationBuckets - 2);
  EXPECT_EQ(durationBucketOf(10000001), kDurationBuckets - 1);  // +Inf
}

TEST(RequestMetrics, AddMergesLocationsByLabel) {
  auto a = std::make_unique<RequestMetrics>();
  auto b = std::make_unique<RequestMetrics>();
  a->nameLocation(0, "s", "/");
  a->nameLocation(1, "s", "= /x");
  b->nameLocation(0, "s", "= /x");  // another generation's order
  b->nameLocation(1, "t", "/");
  a->locations[1].byClass[2] = 3;
  b->locations[0].byClass[2] = 4;
  b->locations[1].byClass[5] = 1;
  b->byClass[2] = 4;
  auto sum = std::make_unique<RequestMetrics>();
  sum->add(*a);
  sum->add(*b);
  ASSERT_EQ(sum->locationCount.load(), 3u);
  EXPECT_STREQ(sum->locations[1].location, "= /x");
  EXPECT_EQ(sum->locations[1].byClass[2].load(), 7u);
  EXPECT_STREQ(sum->locations[2].server, "t");
  EXPECT_EQ(sum->locations[2].byClass[5].load(), 1u);
  EXPECT_EQ(sum->byClass[2].load(), 4u);
}

TEST(RequestMetrics, LabelsPastTheTableGoToOther) {
  auto sum = std::make_unique<RequestMetrics>();
  for (size_t round = 0; round < 2; ++round) {
    auto one = std::make_unique<RequestMetrics>();
    for (size_t i = 0; i + 1 < kMetricLocations; ++i) {
      one->nameLocation(i, "gen" + std::to_string(round), "/" + std::to_string(i));
      one->locations[i].byClass[2] = 1;
    }
    sum->add(*one);
  }
  ASSERT_EQ(sum->locationCount.load(), kMetricLocations);
  EXPECT_STREQ(sum->locations[kMetricLocations - 1].location, "(other)");
  uint64_t total = 0;
  for (size_t i = 0; i < kMetricLocations; ++i) total += sum->locations[i].byClass[2].load();
  EXPECT_EQ(total, 2 * (kMetricLocations - 1));  // nothing lost
}

TEST(RequestMetrics, UpstreamServersByLabelAndOther) {
  auto mine = std::make_unique<RequestMetrics>();
  setRequestMetrics(mine.get());
  int a = -1, b = -1;
  recordUpstreamTry(a, "app", "10.0.0.1:80", false, 1000);
  recordUpstreamTry(b, "app", "10.0.0.2:80", true, 50);
  recordUpstreamTry(a, "app", "10.0.0.1:80", false, 3000);
  int again = -1;
  recordUpstreamTry(again, "app", "10.0.0.1:80", false, 0);  // a second Peer, same server
  EXPECT_EQ(again, a);
  EXPECT_EQ(mine->upstreams[a].tries.load(), 3u);
  EXPECT_EQ(mine->upstreams[a].responseMicros.load(), 4000u);
  EXPECT_EQ(mine->upstreams[b].failures.load(), 1u);
  // A full table counts the rest as "(other)".
  for (size_t i = 0; i < kMetricUpstreams + 5; ++i) {
    int e = -1;
    recordUpstreamTry(e, "many", std::to_string(i), false, 1);
    EXPECT_LT(static_cast<size_t>(e), kMetricUpstreams);
  }
  setRequestMetrics(nullptr);
  EXPECT_EQ(mine->upstreamCount.load(), kMetricUpstreams);
  EXPECT_STREQ(mine->upstreams[kMetricUpstreams - 1].server, "(other)");
  auto sum = std::make_unique<RequestMetrics>();
  sum->add(*mine);
  sum->add(*mine);
  EXPECT_EQ(sum->upstreams[a].tries.load(), 6u);
  uint64_t total = 0;
  for (size_t i = 0; i < kMetricUpstreams; ++i) total += sum->upstreams[i].tries.load();
  EXPECT_EQ(total, 2 * (4 + kMetricUpstreams + 5));
}

TEST(RequestMetrics, RecordCountsIntoTheInstalledMetrics) {
  auto mine = std::make_unique<RequestMetrics>();
  mine->nameLocation(0, "s", "/");
  setRequestMetrics(mine.get());
  recordRequest(200, 100, 1000, 1500, 0);
  recordRequest(404, 50, 300, 20, -1);
  recordRequest(0, 10, 0, 5, 0);
  recordTlsHandshake(true, true);
  recordTlsHandshake(false, false);
  recordGilWait(250);
  setRequestMetrics(nullptr);
  EXPECT_EQ(mine->byClass[2].load(), 1u);
  EXPECT_EQ(mine->byClass[4].load(), 1u);
  EXPECT_EQ(mine->byClass[0].load(), 1u);
  EXPECT_EQ(mine->duration[1].load(), 1u);  // 1.5 ms
  EXPECT_EQ(mine->duration[0].load(), 2u);
  EXPECT_EQ(mine->durationMicros.load(), 1525u);
  EXPECT_EQ(mine->bytesIn.load(), 160u);
  EXPECT_EQ(mine->bytesOut.load(), 1300u);
  EXPECT_EQ(mine->locations[0].byClass[2].load(), 1u);
  EXPECT_EQ(mine->locations[0].byClass[0].load(), 1u);
  EXPECT_EQ(mine->tlsHandshakes.load(), 1u);
  EXPECT_EQ(mine->tlsResumed.load(), 1u);
  EXPECT_EQ(mine->tlsHandshakeFailures.load(), 1u);
  EXPECT_EQ(mine->gilWaitMicros.load(), 250u);
}

TEST(StatusBoardMetrics, RetiredWorkersStayInTheSum) {
  StatusBoard board(4);
  ASSERT_TRUE(board.ok());
  size_t a = board.claim();
  size_t b = board.claim();
  board.slot(a).metrics.nameLocation(0, "s", "/");
  board.slot(a).metrics.byClass[2] = 5;
  board.slot(a).metrics.locations[0].byClass[2] = 5;
  board.slot(a).connections.accepted = 3;
  board.slot(b).metrics.byClass[2] = 2;
  board.slot(b).connections.accepted = 1;
  board.slot(b).connections.active = 1;
  auto sum = std::make_unique<RequestMetrics>();
  http::ConnectionCounters connections;
  board.sum(sum.get(), connections);
  EXPECT_EQ(sum->byClass[2].load(), 7u);
  EXPECT_EQ(connections.accepted, 4u);
  board.retire(a);
  EXPECT_EQ(board.slot(a).state.load(), static_cast<uint32_t>(WorkerState::kFree));
  EXPECT_EQ(board.totals().foldSeq.load() % 2, 0u);
  // The slot is reused: its counts start from zero, the retired ones stay in the sum.
  size_t c = board.claim();
  EXPECT_EQ(c, a);
  EXPECT_EQ(board.slot(c).metrics.byClass[2].load(), 0u);
  board.slot(c).metrics.byClass[2] = 1;
  board.sum(sum.get(), connections);
  EXPECT_EQ(sum->byClass[2].load(), 8u);
  EXPECT_EQ(sum->locations[0].byClass[2].load(), 5u);
  EXPECT_EQ(connections.accepted, 4u);
  EXPECT_EQ(connections.active, 1);
}

TEST(Prometheus, TextFormat) {
  MetricsSnapshot s;
  s.requests->nameLocation(0, "example.com", "~ \"\\.png\"$");
  s.requests->locations[0].byClass[2] = 2;
  s.requests->locations[0].durationMicros = 1500;
  s.requests->byClass[2] = 2;
  s.requests->duration[0] = 1;
  s.requests->duration[2] = 1;
  s.requests->durationMicros = 4000;
  s.restarts[static_cast<size_t>(process::RestartCause::kMaxRequests)] = 3;
  s.workers.push_back({0, 42, WorkerState::kReady, 9, 1 << 20, 0, 2, 1, 0, {}, {}, 0, false});
  s.workers.push_back({1, 43, WorkerState::kReady, 1, 1 << 20, 0, 2, 2, 1, {}, {}, 0, false});
  s.listenQueues.push_back({"http://127.0.0.1:80", 3, 511});
  std::string text = process::renderPrometheus(s);
  auto samples = samplesOf(text);
  EXPECT_EQ(samples["portico_http_requests_total{status=\"2xx\"}"], "2");
  EXPECT_EQ(samples["portico_http_request_duration_seconds_bucket{le=\"0.001\"}"], "1");
  EXPECT_EQ(samples["portico_http_request_duration_seconds_bucket{le=\"0.0025\"}"], "1");
  EXPECT_EQ(samples["portico_http_request_duration_seconds_bucket{le=\"0.005\"}"], "2");
  EXPECT_EQ(samples["portico_http_request_duration_seconds_bucket{le=\"+Inf\"}"], "2");
  EXPECT_EQ(samples["portico_http_request_duration_seconds_sum"], "0.004");
  EXPECT_EQ(samples["portico_http_request_duration_seconds_count"], "2");
  EXPECT_EQ(samples["portico_http_location_requests_total{server=\"example.com\",location=\"~ "
                    "\\\"\\\\.png\\\"$\",status=\"2xx\"}"],
            "2");
  EXPECT_EQ(samples["portico_worker_restarts_total{cause=\"max_requests\"}"], "3");
  EXPECT_EQ(samples["portico_workers{state=\"busy\"}"], "1");
  EXPECT_EQ(samples["portico_workers{state=\"stuck\"}"], "1");
  EXPECT_EQ(samples["portico_python_threads{state=\"busy\"}"], "3");
  EXPECT_EQ(samples["portico_python_threads{state=\"idle\"}"], "1");
  EXPECT_EQ(samples["portico_listen_queue_length{listener=\"http://127.0.0.1:80\"}"], "3");
  EXPECT_EQ(samples["portico_listen_queue_limit{listener=\"http://127.0.0.1:80\"}"], "511");
  // Every family has its HELP and TYPE before its samples.
  EXPECT_NE(text.find("# TYPE portico_http_request_duration_seconds histogram\n"),
            std::string::npos);
  EXPECT_EQ(process::escapeLabel("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
}

}  // namespace
}  // namespace portico
