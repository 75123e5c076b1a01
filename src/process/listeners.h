#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "core/unique_fd.h"
#include "http/exchange.h"
#include "process/systemd_sockets.h"

namespace portico::process {

// A listening socket opened by the master, inherited by every worker.
struct BoundListener {
  UniqueFd fd;
  http::ConnectionInfo local;  // the local half of every accepted connection's info
  std::string name;            // "http://127.0.0.1:8000" or "unix:/path", for the log
  std::string unixPath;        // removed at exit
  std::string key;             // the listen address it serves (http::SiteMap::listenKey)
  bool wildcard = false;       // 0.0.0.0 / [::]: the server is chosen by the local address
  bool reuseport = false;
  int backlog = 0;
};

// The sockets config.site needs: one per distinct listen address, except that an address on
// the same port as a wildcard of its family is served through the wildcard's socket unless it
// is bound (`bind`, backlog=, reuseport: nginx's lsopt.bind; Linux then refuses the pair with
// "Address already in use", as it does nginx). False with a message on the first failure.
// `passed`: sockets systemd passed (socket activation); a wanted address that one of them is
// takes it (its descriptor moves out) instead of binding anew.
bool openListeners(const config::Config& config, std::vector<BoundListener>& out,
                   std::string& error, std::vector<PassedSocket>* passed = nullptr);

// Reload: keeps the sockets of `current` that `config` still wants (same key, backlog and
// reuseport), opens the new ones, and drops the rest (their unix files are removed). On
// failure `current` is unchanged and false is returned with a message.
bool updateListeners(const config::Config& config, std::vector<BoundListener>& current,
                     std::string& error, std::vector<PassedSocket>* passed = nullptr);

}  // namespace portico::process
