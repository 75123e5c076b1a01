#pragma once
// worker_cpu_affinity: which CPUs a worker is bound to (nginx's ngx_get_cpu_affinity), and the
// binding itself (ngx_setaffinity), done by the worker before it starts any thread.

#include <optional>
#include <vector>

#include "config/config.h"

namespace portico::process {

// The CPUs worker number `number` (0-based) is bound to, or nothing when the configuration
// binds none. `allowed`: the CPUs this process may use (sched_getaffinity), which `auto`
// without a mask counts through; an explicit mask is used as written, as nginx does.
std::optional<std::vector<int>> cpuAffinityFor(const config::Config& config, int number,
                                               const std::vector<int>& allowed);

// The calling process's usable CPUs, ascending.
std::vector<int> allowedCpus();

// Binds the calling process (call before any thread exists: threads inherit it) and logs
// nginx's notice per CPU, or its alert when the kernel refuses.
void applyCpuAffinity(const config::Config& config, int number);

}  // namespace portico::process
