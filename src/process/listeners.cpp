#include "process/listeners.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <tuple>

#include "core/log.h"
#include "event/listener.h"
#include "http/site_map.h"

namespace portico::process {

namespace {

// A listen without backlog=: gunicorn's --backlog default (nginx's is 511; portico has always
// used gunicorn's, and the flags write theirs into every listen).
constexpr int kDefaultBacklog = 2048;

// One wanted socket, derived from the site's listen directives.
struct Wanted {
  std::string key;
  config::ListenSpec listen;
  bool wildcard = false;
};

// listen's rcvbuf= and sndbuf=, set on the listening socket at open and again at a reload (as
// nginx's ngx_configure_listening_sockets); a refusal is logged and ignored, as nginx does.
void applyBuffers(int fd, const config::ListenSpec& spec) {
  for (auto [option, value, name] : {std::tuple{SO_RCVBUF, spec.rcvbuf, "SO_RCVBUF"},
                                     std::tuple{SO_SNDBUF, spec.sndbuf, "SO_SNDBUF"}}) {
    if (value < 0) continue;
    int size = static_cast<int>(value);
    if (::setsockopt(fd, SOL_SOCKET, option, &size, sizeof size) != 0) {
      logError(std::string("setsockopt(") + name + ", " + std::to_string(size) + ") " +
               spec.spec + " failed, ignored");
    }
  }
}

bool wantedSockets(const config::Config& config, std::vector<Wanted>& out, std::string& error) {
  auto map = http::SiteMap::build(config.site, error);
  if (!map) return false;
  std::vector<const http::ServerGroup*> groups;
  for (const auto& g : map->groups()) groups.push_back(g.get());
  // Addresses written with `bind` (or an option implying it) on any of their listens.
  std::vector<std::string> bound;
  for (const config::VirtualServer& server : config.site.servers) {
    for (const config::ListenSpec& listen : server.listens) {
      if (listen.bind) bound.push_back(http::SiteMap::listenKey(listen));
    }
  }
  for (const http::ServerGroup* g : groups) {
    bool bind = std::find(bound.begin(), bound.end(), g->key) != bound.end();
    if (!g->listen.isUnix && !g->wildcard && !bind) {
      bool v6 = g->key.starts_with('[');
      std::string wildcardKey =
          std::string(v6 ? "[::]" : "0.0.0.0") + ":" + std::to_string(g->listen.port);
      bool covered = std::any_of(groups.begin(), groups.end(), [&](const http::ServerGroup* o) {
        return o->key == wildcardKey;
      });
      if (covered && g->listen.port != 0) continue;
    }
    out.push_back({g->key, g->listen, g->wildcard});
  }
  return true;
}

// The listener's name in the log: "unix:/path", or "http://host:port" ("https://" for TLS, as
// gunicorn names it; an IPv6 host in brackets).
std::string listenerName(const http::ConnectionInfo& local, bool ssl) {
  if (local.isUnix) return "unix:" + local.localAddress;
  const bool v6 = local.localAddress.find(':') != std::string::npos;
  return std::string(ssl ? "https://" : "http://") +
         (v6 ? "[" + local.localAddress + "]" : local.localAddress) + ":" +
         std::to_string(local.localPort);
}

bool openOne(const Wanted& want, BoundListener& l, std::string& error,
             std::vector<PassedSocket>* passed) {
  const config::ListenSpec& spec = want.listen;
  int backlog = spec.backlog >= 0 ? spec.backlog : kDefaultBacklog;
  l.key = want.key;
  l.wildcard = want.wildcard;
  l.reuseport = spec.reuseport;
  l.backlog = backlog;
  if (passed) {
    for (PassedSocket& s : *passed) {
      if (!s.fd || s.key != want.key) continue;
      // Socket activation: systemd's socket, as it was made (its Backlog= included). No
      // unixPath: the file is systemd's to remove.
      l.fd = std::move(s.fd);
      l.local.isUnix = s.isUnix;
      l.local.localAddress = s.host;
      l.local.localPort = s.port;
      l.name = listenerName(l.local, spec.ssl);
      applyBuffers(l.fd.get(), spec);
      return true;
    }
  }
  if (spec.isUnix) {
    l.fd = event::listenUnix(spec.path, backlog, error);
    if (l.fd && spec.socketMode >= 0 &&
        ::chmod(spec.path.c_str(), static_cast<mode_t>(spec.socketMode)) != 0) {
      error = std::string("chmod: ") + std::strerror(errno);
      l.fd.reset();
    }
    l.local.isUnix = true;
    l.local.localAddress = spec.path;
    l.name = listenerName(l.local, spec.ssl);
    l.unixPath = spec.path;
  } else {
    std::string host = spec.host;
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    if (host == "*") host.clear();
    l.fd = event::listenTcp(host, spec.port, backlog, error, spec.reuseport);
    l.local.localAddress = host.empty() ? "0.0.0.0" : host;
    if (l.fd) l.local.localPort = event::boundPort(l.fd.get());
    l.name = listenerName(l.local, spec.ssl);
  }
  if (!l.fd) {
    error = "cannot listen on " + (spec.spec.empty() ? want.key : spec.spec) + ": " + error;
    return false;
  }
  applyBuffers(l.fd.get(), spec);
  return true;
}

}  // namespace

bool openListeners(const config::Config& config, std::vector<BoundListener>& out,
                   std::string& error, std::vector<PassedSocket>* passed) {
  std::vector<Wanted> wanted;
  if (!wantedSockets(config, wanted, error)) return false;
  for (const Wanted& want : wanted) {
    BoundListener l;
    if (!openOne(want, l, error, passed)) return false;
    out.push_back(std::move(l));
  }
  if (passed) {
    for (const PassedSocket& s : *passed) {
      if (!s.fd) continue;
      // Its clients would wait in a queue nobody accepts from.
      error = "the socket systemd passed for " + s.key +
              (s.name.empty() ? "" : " (" + s.name + ")") + " matches no listen address";
      return false;
    }
  }
  return true;
}

bool updateListeners(const config::Config& config, std::vector<BoundListener>& current,
                     std::string& error, std::vector<PassedSocket>* passed) {
  std::vector<Wanted> wanted;
  if (!wantedSockets(config, wanted, error)) return false;
  std::vector<BoundListener> next;
  std::vector<int> source;  // per entry of `next`: its index in `current`, -1 when new
  std::vector<bool> kept(current.size(), false);
  for (const Wanted& want : wanted) {
    int backlog = want.listen.backlog >= 0 ? want.listen.backlog : kDefaultBacklog;
    bool found = false;
    for (size_t i = 0; i < current.size() && !found; ++i) {
      BoundListener& l = current[i];
      if (kept[i] || l.key != want.key || l.reuseport != want.listen.reuseport) continue;
      if (l.backlog != backlog) {
        ::listen(l.fd.get(), backlog);  // as nginx: a new backlog applies to the open socket
        l.backlog = backlog;
      }
      applyBuffers(l.fd.get(), want.listen);
      kept[i] = true;
      found = true;
      next.push_back(std::move(l));
      source.push_back(static_cast<int>(i));
    }
    if (found) continue;
    BoundListener l;
    if (!openOne(want, l, error, passed)) {
      // Put back what was moved: the running configuration keeps every socket.
      for (size_t k = 0; k < next.size(); ++k) {
        if (source[k] >= 0) current[static_cast<size_t>(source[k])] = std::move(next[k]);
      }
      return false;
    }
    next.push_back(std::move(l));
    source.push_back(-1);
  }
  for (size_t i = 0; i < current.size(); ++i) {
    if (kept[i]) continue;
    // No longer configured: closed here; workers of the old generation drop theirs on exit.
    if (!current[i].unixPath.empty()) ::unlink(current[i].unixPath.c_str());
  }
  current = std::move(next);
  return true;
}

}  // namespace portico::process
