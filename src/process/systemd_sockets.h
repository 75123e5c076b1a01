#pragma once
// systemd socket activation: the listening sockets a .socket unit passes (LISTEN_FDS,
// LISTEN_PID, LISTEN_FDNAMES), taken by the master in place of binding its own.

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/unique_fd.h"

namespace portico::process {

// One socket systemd passed: its descriptor until a listener takes it, the listen address it
// is (http::SiteMap::listenKey's form: "127.0.0.1:8000", "[::]:80", "unix:/run/app.sock"),
// and its FileDescriptorName.
struct PassedSocket {
  UniqueFd fd;
  std::string key;
  std::string name;
  bool isUnix = false;
  std::string host;  // TCP: the bound address; unix: the path
  uint16_t port = 0;
};

// Takes the sockets systemd passed to this process (none unless LISTEN_PID is ours) and
// removes the variables, so workers and the app's children do not see them. Each must be a
// listening stream socket (TCP or unix); false with a message otherwise.
bool takePassedSockets(std::vector<PassedSocket>& out, std::string& error);

// The flags' way (gunicorn's): the sockets systemd passed are the addresses served, in place of
// --bind; their options (ssl, uwsgi, PROXY protocol, ...) are those of the first --bind. Only
// the sockets' addresses are read (their descriptors may have gone to listeners already).
void bindPassedSockets(config::Config& config, const std::vector<PassedSocket>& sockets);

}  // namespace portico::process
