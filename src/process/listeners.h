#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "core/unique_fd.h"
#include "http/exchange.h"

namespace portico::process {

// A listening socket opened by the master, inherited by every worker.
struct BoundListener {
  UniqueFd fd;
  http::ConnectionInfo local;  // the local half of every accepted connection's info
  std::string name;            // "http://127.0.0.1:8000" or "unix:/path", for the log
  std::string unixPath;        // removed at exit
};

// Opens every --bind (127.0.0.1:8000 when none); false with a message on the first failure.
bool openListeners(const config::Config& config, std::vector<BoundListener>& out,
                   std::string& error);

}  // namespace portico::process
