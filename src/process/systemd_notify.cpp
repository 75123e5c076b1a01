#include "process/systemd_notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdlib>
#include <cstring>

#include "core/log.h"

namespace portico::process {

SystemdNotifier::SystemdNotifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && socket[0] != '\0';
}

void SystemdNotifier::ready(const std::string& status) {
  send("READY=1\nSTATUS=" + status);
}

void SystemdNotifier::reloading() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const unsigned long long micros =
      static_cast<unsigned long long>(now.tv_sec) * 1000000ull + static_cast<unsigned long long>(now.tv_nsec) / 1000ull;
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(micros) + "\nSTATUS=reloading");
}

void SystemdNotifier::stopping(const std::string& status) {
  send("STOPPING=1\nSTATUS=" + status);
}

void SystemdNotifier::send(const std::string& message) {
  if (!enabled_) return;
  // The environment is left as it is: workers never send (the unit's NotifyAccess=main), and
  // an app's own children may have their reasons to see it.
  int result = ::sd_notify(0, message.c_str());
  if (result < 0) {
    logError("sd_notify(\"" + message.substr(0, message.find('\n')) + "\") failed (" +
             std::to_string(-result) + ": " + std::strerror(-result) + ")");
  }
}

}  // namespace portico::process
