#pragma once

#include <memory>
#include <string>
#include <algorithm>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "event/event_loop.h"
#include "event/listener.h"
#include "http/connection.h"
#include "http/router.h"
#include "python/wsgi_runtime.h"
#include "static/mime_types.h"
#include "static/static_handler.h"

namespace portico::process {

// The composition root of a serving process: builds the handlers and the router from the
// configuration, owns the listeners and every connection, and runs the event loop until a
// signal stops it. One per process; event-loop thread only.
class Server : public http::ConnectionOwner {
 public:
  explicit Server(const config::Config& config);
  ~Server() override;

  // Checks the configuration against the file system, starts Python and imports the app (if
  // one is configured), and opens every listener.
  bool open(std::string& error);
  // Serves until SIGTERM/SIGQUIT (graceful) or SIGINT (fast); returns the exit code.
  int run();

  // "http://127.0.0.1:8000" or "unix:/path" for each listener, in --bind order.
  const std::vector<std::string>& listenerNames() const { return listenerNames_; }

  void connectionClosed(http::Connection* connection) override;

 private:
  struct ListenerSlot {
    std::unique_ptr<event::Listener> listener;
    http::ConnectionInfo local;  // local half, copied into each accepted connection's info
  };
  class SignalWatcher;

  void accept(const ListenerSlot& slot, UniqueFd fd, const sockaddr_storage& peer);
  void onSignal(int signo);
  void beginGracefulStop();

  const config::Config& config_;
  event::EventLoop loop_;
  http::ConnectionSettings settings_;
  http::Router router_;
  std::unique_ptr<http::AccessLog> accessLog_;
  std::vector<std::unique_ptr<http::Handler>> handlers_;
  std::vector<ListenerSlot> listeners_;
  std::vector<std::string> listenerNames_;
  std::unordered_map<http::Connection*, std::unique_ptr<http::Connection>> connections_;
  std::unique_ptr<SignalWatcher> signals_;
  std::unique_ptr<python::WsgiRuntime> wsgi_;  // after loop_: destroyed before it
  bool stopping_ = false;
  event::TimerId gracefulTimer_{0, 0};
};

}  // namespace portico::process
