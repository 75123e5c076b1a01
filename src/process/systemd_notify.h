#pragma once
// systemd's Type=notify protocol for the master: READY=1 once every worker of the current
// generation has booted, RELOADING=1 at a reload (then READY=1 again), STOPPING=1 at a stop,
// with a STATUS= line. Nothing is sent when systemd did not set NOTIFY_SOCKET.

#include <string>

namespace portico::process {

// Sends the master's state to systemd (sd_notify). Owned by the master; its loop thread only.
class SystemdNotifier {
 public:
  SystemdNotifier();

  bool enabled() const { return enabled_; }
  void ready(const std::string& status);
  // Reloading from now (MONOTONIC_USEC: systemd's Type=notify-reload needs it).
  void reloading();
  void stopping(const std::string& status);

 private:
  void send(const std::string& message);

  bool enabled_ = false;
};

}  // namespace portico::process
