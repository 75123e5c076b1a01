#include "process/systemd_sockets.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "event/listener.h"
#include "http/site_map.h"

namespace portico::process {

namespace {

// The socket's address as a listen directive would write it.
void setAddress(config::ListenSpec& spec, const PassedSocket& s) {
  spec.isUnix = s.isUnix;
  if (s.isUnix) {
    spec.path = s.host;
    spec.host.clear();
  } else {
    spec.host = s.host;
    spec.port = s.port;
    spec.path.clear();
  }
}

}  // namespace

bool takePassedSockets(std::vector<PassedSocket>& out, std::string& error) {
  char** names = nullptr;
  // unset_environment: the variables go (a worker or a child must not take them as its own);
  // the descriptors get FD_CLOEXEC.
  int count = ::sd_listen_fds_with_names(1, &names);
  if (count < 0) {
    error = std::string("systemd socket activation: ") + std::strerror(-count);
    return false;
  }
  bool ok = true;
  for (int i = 0; i < count; ++i) {
    PassedSocket s;
    s.fd = UniqueFd(SD_LISTEN_FDS_START + i);
    s.name = names && names[i] ? names[i] : "";
    if (s.name == "unknown") s.name.clear();  // libsystemd's name when LISTEN_FDNAMES is unset
    const int fd = s.fd.get();
    if (ok && ::sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
      error = "the socket systemd passed as descriptor " + std::to_string(fd) +
              (s.name.empty() ? "" : " (" + s.name + ")") +
              " is not a listening stream socket (ListenStream= is what portico serves)";
      ok = false;
    }
    // systemd passes blocking sockets; the workers' accept loop needs them non-blocking.
    if (ok) {
      int flags = ::fcntl(fd, F_GETFL);
      if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        error = "fcntl(O_NONBLOCK) on the socket systemd passed as descriptor " +
                std::to_string(fd) + " failed: " + std::strerror(errno);
        ok = false;
      }
    }
    sockaddr_storage addr{};
    socklen_t length = sizeof addr;
    if (ok && ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
      error = "getsockname() of the socket systemd passed as descriptor " + std::to_string(fd) +
              " failed: " + std::strerror(errno);
      ok = false;
    }
    if (ok && addr.ss_family == AF_UNIX) {
      const auto* un = reinterpret_cast<const sockaddr_un*>(&addr);
      const size_t max = length > offsetof(sockaddr_un, sun_path)
                             ? length - offsetof(sockaddr_un, sun_path)
                             : 0;
      s.isUnix = true;
      s.host.assign(un->sun_path, strnlen(un->sun_path, max));
    } else if (ok && (addr.ss_family == AF_INET || addr.ss_family == AF_INET6)) {
      event::describeAddress(addr, s.host, s.port);
    } else if (ok) {
      error = "the socket systemd passed as descriptor " + std::to_string(fd) +
              " is neither TCP nor a unix socket";
      ok = false;
    }
    if (names) std::free(names[i]);
    if (!ok) continue;
    config::ListenSpec spec;
    setAddress(spec, s);
    s.key = http::SiteMap::listenKey(spec);
    out.push_back(std::move(s));
  }
  std::free(names);
  return ok;
}

void bindPassedSockets(config::Config& config, const std::vector<PassedSocket>& sockets) {
  if (sockets.empty() || config.site.servers.empty()) return;
  std::vector<config::ListenSpec>& listens = config.site.servers.front().listens;
  const config::ListenSpec model = listens.empty() ? config::ListenSpec{} : listens.front();
  listens.clear();
  for (const PassedSocket& s : sockets) {
    config::ListenSpec spec = model;
    spec.spec = s.key;
    spec.bind = false;
    spec.reuseport = false;
    setAddress(spec, s);
    listens.push_back(std::move(spec));
  }
}

}  // namespace portico::process
