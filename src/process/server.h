#pragma once

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "event/event_loop.h"
#include "event/listener.h"
#include "event/signal_watcher.h"
#include "http/connection.h"
#include "http/router.h"
#include "process/hand_off.h"
#include "process/proxy_header_reader.h"
#include "process/listeners.h"
#include "process/tls_contexts.h"
#include "pipeline/site_handler.h"
#include "process/worker_status.h"
#include "python/source_watcher.h"
#include "python/wsgi_runtime.h"
#include "http/mime_types.h"
#include "pipeline/stub_status_content.h"
#include "process/service_content.h"
#include "process/wsgi_content.h"
#include "upstream/proxy_content.h"
#include "static/static_handler.h"

namespace portico::process {

// The composition root of a worker process: builds the site's pipeline from the configuration
// and registers its content modules (stub_status, wsgi_app, the static files), serves on the
// listeners the master opened, owns every connection, reports to its status slot, and runs the
// event loop until a signal (or recycling) stops it. One per worker; event-loop thread only.
class Server : public http::ConnectionOwner {
 public:
  // `status` is the worker's slot on the master's board, `busy` its `busyThreads` thread
  // stamps (null when unsupervised).
  Server(const config::Config& config, WorkerStatus* status, std::atomic<uint64_t>* busy,
         int busyThreads = 0);
  ~Server() override;

  // Joins the siblings' request balancing (before open()): while every Python thread of this
  // worker is busy, a connection whose next request begins goes to the hand-off queue when a
  // sibling has a free thread; while a thread is free, this worker takes connections from it.
  // `board` and `queue` are the master's and outlive the server.
  void joinHandOff(StatusBoard& board, size_t slot, HandOffQueue& queue);

  // A worker of the master `parent`: once the master is gone (killed, so this process was
  // re-parented), the worker stops gracefully instead of serving on unmanaged, as gunicorn's
  // and uWSGI's workers do. Checked on the heartbeat.
  void watchParent(pid_t parent) { parent_ = parent; }

  // Checks the configuration against the file system, imports the app (unless `preloaded`
  // brings it from the master) and takes over the listeners.
  bool open(std::vector<BoundListener> listeners, std::unique_ptr<python::WsgiRuntime> preloaded,
            std::string& error);
  // Boots a worker's site in a child process without listeners — access logs, --static
  // directories, `user`, and the app's import when `importApps` — so what would make every
  // worker fail stops start-up (and -t) before anything listens. The child imports the app in
  // its own interpreter and exits; the caller's process never starts Python. False with the
  // worker's error message.
  static bool checkBoot(const config::Config& config, bool importApps, std::string& error);
  // Serves until SIGTERM/SIGQUIT (graceful), SIGINT (fast) or recycling; returns the exit code.
  int run();

  // The connection settings `server` implies before a route decides (head limits, timeouts).
  static http::ConnectionSettings connectionSettings(const config::VirtualServer& server);

  void connectionClosed(http::Connection* connection) override;
  bool offerHandOff(http::Connection& connection) override;

 private:
  // Serves a client of listener `index`; null when it could not be started.
  // `proxied`: a connection handed over by a sibling, whose PROXY protocol header was read
  // there (its addresses travel with it); otherwise a listen address with proxy_protocol
  // reads the header first (ProxyHeaderReader) and the connection starts after it.
  // `adopted`: what came with a handed-over connection (it is adopted, not started).
  http::Connection* addConnection(size_t index, UniqueFd fd, const sockaddr_storage& peer,
                                  const http::ConnectionInfo* proxied = nullptr,
                                  const HandOffQueue::Message* adopted = nullptr);
  void dropProxyReader(ProxyHeaderReader* reader);
  // nginx's worker_connections: at the limit this worker stops accepting (the kernel queues
  // new clients, siblings take them) until a connection closes.
  void checkFull();
  // Wraps the socket in its transport and starts the session (or adopts it: `adopted`).
  http::Connection* startConnection(size_t index, UniqueFd fd, http::ConnectionInfo info,
                                    const HandOffQueue::Message* adopted = nullptr);
  void accept(size_t index, UniqueFd fd, const sockaddr_storage& peer);
  // Takes connections from the hand-off queue while a Python thread is free.
  void takeHandOffs();
  // Adopts one connection from the queue; false when the queue is empty.
  bool takeOne();
  // Sends `connection` (of listener `listener`) to the hand-off queue and closes it here;
  // false, keeping it, when the queue is full.
  bool giveAway(http::Connection& connection, size_t listener, uint64_t requestStartMs);
  // While every thread is busy: takes connections that have waited in the queue too long.
  void rescueHandOffs();
  void adopt(HandOffQueue::Message message);
  void setTaking(bool taking);
  // A stopping worker gives its idle kept-alive connections to siblings that take them
  // (reload, recycling): their clients keep the connection instead of seeing it closed.
  void handOffIdle();
  void onSignal(int signo);
  void onRequestDone();
  void checkMemory();
  // --reload: starts watching the app's source files (and those whose SyntaxError it serves).
  bool watchSources(std::string& error);
  // --reload: a watched file changed; this worker goes and the master starts a fresh one.
  void sourceChanged(const std::string& path);
  void beginGracefulStop(const std::string& why);
  // Closes every copy of the listening sockets in this process; `acceptPending` first takes the
  // connections the kernel already queued (unless worker_connections are in use).
  void closeListeners(bool acceptPending);
  void heartbeat();
  // Its Python threads' stacks, when the status page asked for them (WorkerStatus).
  void answerStacks();
  // This worker's memory and Python threads on its board slot, for the metrics.
  void publishStatus(uint64_t now);
  // Listens or pauses the listeners: paused while the app's threads are all busy (among
  // siblings) or worker_connections are in use.
  void updateAccepting();

  const config::Config& config_;
  WorkerStatus* status_;
  std::atomic<uint64_t>* busy_;
  int busyThreads_;
  event::EventLoop loop_;
  // proxy_pass's content module: its balancers and keep-alive pools outlive the site and the
  // connections, whose requests release peers as they end.
  upstream::ProxyContentModule proxyContent_{&loop_};
  http::ConnectionSettings settings_;  // the base every listener's settings copy
  std::vector<std::unique_ptr<http::ConnectionSettings>> listenerSettings_;  // by listener
  std::unique_ptr<http::AccessLog> accessLog_;  // the flags' process-level access log
  std::unique_ptr<http::SiteMap> siteMap_;
  TlsContexts tls_;  // before the connections, which hold its contexts
  std::unique_ptr<pipeline::SiteHandler> site_;
  std::vector<BoundListener> bound_;
  std::vector<std::unique_ptr<event::Listener>> listeners_;
  struct Client {
    std::unique_ptr<http::Connection> connection;
    size_t listener = 0;  // index into bound_
  };
  std::unordered_map<http::Connection*, Client> connections_;
  // Listen addresses (SiteMap::listenKey) that begin with a PROXY protocol header, and the
  // connections whose header is being read.
  std::unordered_map<std::string, ProxyProtocolMode> proxyProtocol_;
  std::unordered_map<ProxyHeaderReader*, std::unique_ptr<ProxyHeaderReader>> proxyReaders_;
  // The hand-off queue's receiving end as the loop sees it.
  struct HandOffWatcher : event::IoWatcher {
    explicit HandOffWatcher(Server& s) : server(s) {}
    void onIoEvent(uint32_t) override { server.takeHandOffs(); }
    Server& server;
  };
  StatusBoard* board_ = nullptr;  // with handOff_: the master's board, this worker's slot_
  size_t slot_ = 0;
  HandOffQueue* handOff_ = nullptr;
  HandOffWatcher handOffWatcher_{*this};
  bool taking_ = false;   // watching the hand-off queue
  bool serving_ = false;  // run() is serving
  uint64_t handedOff_ = 0;
  uint64_t adopted_ = 0;
  std::unique_ptr<event::SignalWatcher> signals_;
  std::unique_ptr<python::WsgiRuntime> wsgi_;  // after loop_: destroyed before it
  // --reload's watcher thread: stopped before wsgi_ goes (it reads sys.modules with the GIL).
  std::unique_ptr<python::SourceWatcher> sourceWatcher_;
  // The content modules registered with the site (asked while it is built).
  WsgiContentModule wsgiContent_;
  pipeline::StubStatusModule stubStatusContent_;
  ServiceContentModule serviceContent_;  // prometheus_metrics, health_live, health_ready
  bool checkOnly_ = false;   // checkBoot(): open() stops before serving
  bool importApps_ = true;   // checkBoot() without the import (the master preloads it)
  bool saturated_ = false;  // every Python thread busy (with siblings to take new clients)
  bool full_ = false;       // worker_connections reached
  bool stopping_ = false;
  pid_t parent_ = 0;  // the master (0: no master)
  event::TimerId gracefulTimer_{0, 0};
  event::TimerId heartbeatTimer_{0, 0};
  event::TimerId idleHandOffTimer_{0, 0};
  event::TimerId rescueTimer_{0, 0};
  uint64_t requests_ = 0;
  uint64_t maxRequests_ = 0;  // with jitter; 0 = never recycle
  uint64_t lastMemoryCheckMs_ = 0;
  int64_t importStartedNs_ = 0;  // --reload: files changed since are reported at once
};

}  // namespace portico::process
