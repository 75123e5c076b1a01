#include "process/cpu_affinity.h"

#include <sched.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/log.h"

namespace portico::process {

std::optional<std::vector<int>> cpuAffinityFor(const config::Config& config, int number,
                                               const std::vector<int>& allowed) {
  const auto& masks = config.cpuAffinityMasks;
  if (number < 0) return std::nullopt;
  if (config.cpuAffinityAuto) {
    // The number-th CPU of the mask, counting round it (nginx walks the mask modulo its size).
    const std::vector<int>& mask = masks.empty() ? allowed : masks.front();
    if (mask.empty()) return std::nullopt;
    return std::vector<int>{mask[static_cast<size_t>(number) % mask.size()]};
  }
  if (masks.empty()) return std::nullopt;
  return masks[std::min(static_cast<size_t>(number), masks.size() - 1)];
}

std::vector<int> allowedCpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

void applyCpuAffinity(const config::Config& config, int number) {
  if (!config.cpuAffinityAuto && config.cpuAffinityMasks.empty()) return;  // no syscall then
  std::optional<std::vector<int>> cpus = cpuAffinityFor(config, number, allowedCpus());
  if (!cpus) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : *cpus) {
    ErrorLog::instance().write(LogLevel::kNotice, "sched_setaffinity(): using cpu #" + std::to_string(cpu));
    CPU_SET(cpu, &set);
  }
  if (::sched_setaffinity(0, sizeof(set), &set) != 0) {
    int err = errno;
    ErrorLog::instance().write(LogLevel::kAlert, "sched_setaffinity() failed (" + std::to_string(err) + ": " +
                                                     std::strerror(err) + ")");
  }
}

}  // namespace portico::process
