// `-w auto` / `worker_processes auto`: the cgroup CPU quota read from fake cgroup trees (v2's
// cpu.max, v1's cfs files), and the count as the kernel gives it to this process.

#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/cpu_count.h"

namespace portico {
namespace {

namespace fs = std::filesystem;

class CgroupTree : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("portico-cgroup-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  void write(const std::string& relative, const std::string& text) {
    fs::create_directories((root_ / relative).parent_path());
    std::ofstream(root_ / relative) << text;
  }
  std::string root() const { return root_.string(); }

  fs::path root_;
};

TEST_F(CgroupTree, V2QuotaRoundsUpAndTheTightestAncestorWins) {
  write("cpu.max", "max 100000\n");
  write("kubepods/cpu.max", "300000 100000\n");
  write("kubepods/pod1/cpu.max", "150000 100000\n");  // 1.5 CPUs: 2 workers
  write("kubepods/pod1/app/cpu.max", "max 100000\n");
  EXPECT_EQ(cgroupCpuLimit("0::/kubepods/pod1/app\n", root()), 2);
  write("kubepods/cpu.max", "50000 100000\n");  // an ancestor's half CPU: 1
  EXPECT_EQ(cgroupCpuLimit("0::/kubepods/pod1/app\n", root()), 1);
}

TEST_F(CgroupTree, V2WithoutAQuotaIsNoLimit) {
  write("cpu.max", "max 100000\n");
  write("user.slice/cpu.max", "max 100000\n");
  EXPECT_EQ(cgroupCpuLimit("0::/user.slice\n", root()), 0);
  EXPECT_EQ(cgroupCpuLimit("0::/\n", root()), 0);
  EXPECT_EQ(cgroupCpuLimit("", root()), 0);
}

TEST_F(CgroupTree, AContainerSeesItsOwnGroupAtTheMountRoot) {
  // Without a cgroup namespace the host's path is listed, but the container's mount shows its
  // own group at the root: the path's ancestors lead there.
  write("cpu.max", "200000 100000\n");
  EXPECT_EQ(cgroupCpuLimit("0::/system.slice/docker-0123abcd.scope\n", root()), 2);
}

TEST_F(CgroupTree, V1CfsQuotaUnderItsControllerMount) {
  write("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "250000\n");
  write("cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  const std::string cgroup =
      "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/docker/abc\n";
  EXPECT_EQ(cgroupCpuLimit(cgroup, root()), 3);
  write("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");  // no quota
  EXPECT_EQ(cgroupCpuLimit(cgroup, root()), 0);
}

TEST_F(CgroupTree, V1CpuMountedAlone) {
  write("cpu/cpu.cfs_quota_us", "100000\n");
  write("cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(cgroupCpuLimit("3:cpuacct:/\n2:cpu:/\n", root()), 1);
  EXPECT_EQ(cgroupCpuLimit("3:cpuacct:/\n", root()), 0);  // no cpu controller listed
}

TEST(UsableCpuCount, IsWhatThisProcessMayRunOnAtMost) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
  int count = usableCpuCount();
  EXPECT_GE(count, 1);
  EXPECT_LE(count, CPU_COUNT(&set));
}

}  // namespace
}  // namespace portico
