#include "process/cpu_affinity.h"

#include <gtest/gtest.h>

#include <string>

#include "config/conf_builder.h"

namespace portico::process {
namespace {

config::Config load(const std::string& mainLines) {
  config::ConfLoader loader;
  loader.addMemoryFile("/etc/p/site.conf", mainLines + "\nevents {}\nhttp {}\n");
  config::ConfLoadOptions options{"/etc/p/site.conf", "/etc/p/", "", ""};
  config::ConfLoadResult r = config::loadConf(options, loader);
  EXPECT_TRUE(r.ok) << (r.messages.empty() ? "" : r.messages.back());
  return r.config;
}

using Cpus = std::vector<int>;

TEST(CpuAffinityTest, NoneByDefault) {
  EXPECT_FALSE(cpuAffinityFor(load(""), 0, {0, 1}).has_value());
}

TEST(CpuAffinityTest, MasksReadRightToLeftAndTheLastServesTheRest) {
  config::Config c = load("worker_cpu_affinity 0101 1010 1 1000 0000;");
  ASSERT_EQ(c.cpuAffinityMasks.size(), 5u);
  EXPECT_EQ(*cpuAffinityFor(c, 0, {0, 1}), (Cpus{0, 2}));
  EXPECT_EQ(*cpuAffinityFor(c, 1, {0, 1}), (Cpus{1, 3}));
  EXPECT_EQ(*cpuAffinityFor(c, 2, {0, 1}), (Cpus{0}));
  EXPECT_EQ(*cpuAffinityFor(c, 3, {0, 1}), (Cpus{3}));  // as written, even outside `allowed`
  EXPECT_EQ(*cpuAffinityFor(c, 4, {0, 1}), Cpus{});     // nginx passes it on; the kernel refuses
  EXPECT_EQ(*cpuAffinityFor(c, 9, {0, 1}), Cpus{});
  // Spaces are skipped and do not count as CPUs.
  EXPECT_EQ(*cpuAffinityFor(load("worker_cpu_affinity \"1 0000 0000\";"), 0, {}), (Cpus{8}));
}

TEST(CpuAffinityTest, AutoCountsRoundTheUsableCpus) {
  config::Config c = load("worker_cpu_affinity auto;");
  EXPECT_EQ(*cpuAffinityFor(c, 0, {2, 5, 7}), (Cpus{2}));
  EXPECT_EQ(*cpuAffinityFor(c, 1, {2, 5, 7}), (Cpus{5}));
  EXPECT_EQ(*cpuAffinityFor(c, 2, {2, 5, 7}), (Cpus{7}));
  EXPECT_EQ(*cpuAffinityFor(c, 3, {2, 5, 7}), (Cpus{2}));
  EXPECT_FALSE(cpuAffinityFor(c, 0, {}).has_value());
}

TEST(CpuAffinityTest, AutoWithAMaskCountsRoundTheMask) {
  config::Config c = load("worker_cpu_affinity auto 11000;");
  EXPECT_EQ(*cpuAffinityFor(c, 0, {0, 1}), (Cpus{3}));
  EXPECT_EQ(*cpuAffinityFor(c, 1, {0, 1}), (Cpus{4}));
  EXPECT_EQ(*cpuAffinityFor(c, 2, {0, 1}), (Cpus{3}));
  EXPECT_FALSE(cpuAffinityFor(load("worker_cpu_affinity auto 0000;"), 0, {0, 1}).has_value());
}

}  // namespace
}  // namespace portico::process
