#pragma once
// How many CPUs this process can keep busy, for `-w auto` and `worker_processes auto`: the CPUs
// it may run on, bounded by its cgroup's CPU quota (a container's CPU limit).

#include <string>
#include <string_view>

namespace portico {

// The CPUs the process may run on (sched_getaffinity: taskset, a container's cpuset), bounded
// by the CPU quota of its cgroup and of every ancestor group (cgroup v2 `cpu.max`, v1
// `cpu.cfs_quota_us` / `cpu.cfs_period_us`), rounded up; at least 1.
int usableCpuCount();

// The quota part: `procCgroup` is /proc/self/cgroup's text, `mountRoot` where the cgroup file
// systems are mounted (/sys/fs/cgroup). The tightest quota on the group's path, in CPUs rounded
// up; 0 when none applies. A group path that is not under the mount (a container that sees the
// host's path) is looked up by its ancestors, down to the mount's own root.
int cgroupCpuLimit(std::string_view procCgroup, const std::string& mountRoot);

}  // namespace portico
