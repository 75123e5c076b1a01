#include "process/listeners.h"

#include "event/listener.h"

namespace portico::process {

bool openListeners(const config::Config& config, std::vector<BoundListener>& out,
                   std::string& error) {
  std::vector<config::BindAddress> binds = config.binds;
  if (binds.empty()) {
    config::BindAddress def;
    def.host = "127.0.0.1";
    def.port = 8000;
    def.spec = "127.0.0.1:8000";
    binds.push_back(def);
  }
  for (const auto& bind : binds) {
    BoundListener l;
    if (bind.kind == config::BindAddress::Kind::kUnix) {
      l.fd = event::listenUnix(bind.path, config.backlog, error);
      l.local.isUnix = true;
      l.local.localAddress = bind.path;
      l.name = "unix:" + bind.path;
      l.unixPath = bind.path;
    } else {
      l.fd = event::listenTcp(bind.host, bind.port, config.backlog, error);
      l.local.localAddress = bind.host.empty() ? "0.0.0.0" : bind.host;
      if (l.fd) l.local.localPort = event::boundPort(l.fd.get());
      bool v6 = l.local.localAddress.find(':') != std::string::npos;
      l.name = "http://" + (v6 ? "[" + l.local.localAddress + "]" : l.local.localAddress) + ":" +
               std::to_string(l.local.localPort);
    }
    if (!l.fd) {
      error = "cannot listen on " + bind.spec + ": " + error;
      return false;
    }
    out.push_back(std::move(l));
  }
  return true;
}

}  // namespace portico::process
