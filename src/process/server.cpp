#include "process/server.h"

#include <sstream>

#include <signal.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include "core/child_output.h"
#include "core/log.h"
#include "core/request_metrics.h"
#include "core/statsd.h"
#include "event/signal_watcher.h"
#include "http/http1_session.h"
#include "process/privileges.h"
#include "transport/plain_transport.h"
#include "transport/tls_transport.h"

namespace portico::process {

namespace {

// Resident set size, from /proc/self/statm.
uint64_t residentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}
uint64_t residentMb() { return residentBytes() / (1024 * 1024); }

constexpr uint64_t kHeartbeatMs = 1000;
constexpr uint64_t kMemoryCheckMs = 100;
constexpr uint64_t kIdleHandOffEveryMs = 50;
constexpr uint64_t kRescueAfterMs = 10;
constexpr uint64_t kRescueFromTakerAfterMs = 200;
constexpr uint64_t kHandOffMinWaitUs = 1000;

// A limit that counts a line with its CRLF, as the parser's limit on the line without it.
size_t lineWithoutCrlf(size_t withCrlf) { return withCrlf >= 2 ? withCrlf - 2 : 0; }

uint64_t toMs(double seconds) { return static_cast<uint64_t>(seconds * 1000.0); }

}  // namespace

// What a connection knows before its request's server is chosen: the head limits and header
// timeout of its address's default server (nginx), and that server's level settings until a
// route decides (body limit, timeouts).
http::ConnectionSettings Server::connectionSettings(const config::VirtualServer& server) {
  http::ConnectionSettings out;
  if (server.fieldLimits) {
    const config::VirtualServer::FieldLimits& f = *server.fieldLimits;
    out.limits.maxRequestLine = f.requestLine;
    out.limits.maxHeaderCount = f.fields;
    // gunicorn counts a header line with its CRLF (message.py: len(line) + 2 > limit refuses);
    // the parser's limit is the line without it. Its request line limit is without CRLF.
    out.limits.maxHeaderFieldSize = lineWithoutCrlf(f.fieldSize);
    // The whole head may hold every allowed field at full size, within a sane bound.
    out.limits.maxHeaderTotal = std::max<size_t>(
        64 * 1024,
        std::min<size_t>(f.requestLine + f.fields * (f.fieldSize + 2), 16 * 1024 * 1024));
  } else {
    // nginx: a line must fit in one buffer with its CRLF (size 1k: 1022 bytes + CRLF pass,
    // 1023 do not, measured against nginx 1.22).
    out.limits.maxRequestLine = lineWithoutCrlf(server.largeHeaderBuffersSize);
    out.limits.maxHeaderFieldSize = lineWithoutCrlf(server.largeHeaderBuffersSize);
    out.limits.maxHeaderCount = 100000;  // nginx counts bytes, not fields
    out.limits.maxHeaderTotal = server.largeHeaderBuffersNumber * server.largeHeaderBuffersSize;
    out.headerTooLargeIs400 = true;
  }
  out.limits.nginxNames = server.headerNames.nginx;
  out.limits.ignoreInvalid = server.headerNames.ignoreInvalid;
  out.limits.underscores = server.headerNames.underscores;
  out.headerTimeoutMs = toMs(server.clientHeaderTimeoutSeconds);
  const config::LocationSettings& s = server.settings;
  out.maxBodySize = s.clientMaxBodySize;
  out.bodyTimeoutMs = toMs(s.clientBodyTimeoutSeconds);
  out.sendTimeoutMs = toMs(s.sendTimeoutSeconds);
  out.keepAliveTimeoutMs = toMs(s.keepaliveTimeoutSeconds);
  return out;
}

Server::Server(const config::Config& config, WorkerStatus* status, std::atomic<uint64_t>* busy,
               int busyThreads)
    : config_(config), status_(status), busy_(busy), busyThreads_(busyThreads) {
  // Blocked before any thread starts (Python threads inherit the mask), so the signals reach
  // only the loop's signalfd and never kill the process from another thread.
  event::blockHandledSignals();

  // Before any server is known (a listener without one): the defaults of a server.
  settings_ = connectionSettings(config::VirtualServer{});
  settings_.serverHeader = config.site.serverHeader;
  settings_.onRequestDone = [this] { onRequestDone(); };

  if (config.maxRequests > 0) {
    // Jitter spreads the recycling of workers started together (gunicorn's meaning).
    std::random_device rd;
    uint64_t jitter = config.maxRequestsJitter
                          ? std::uniform_int_distribution<uint64_t>(0, config.maxRequestsJitter)(rd)
                          : 0;
    maxRequests_ = config.maxRequests + jitter;
  }
}

void Server::joinHandOff(StatusBoard& board, size_t slot, HandOffQueue& queue) {
  board_ = &board;
  slot_ = slot;
  handOff_ = &queue;
}

bool Server::checkBoot(const config::Config& config, bool importApps, std::string& error) {
  ChildOutput child = runInChild([&](int fd) {
    // Never destroyed: the child leaves with _exit, so an imported app's threads and the
    // interpreter are not torn down, and nothing the parent owns is flushed twice.
    auto* server = new Server(config, nullptr, nullptr);
    server->checkOnly_ = true;
    server->importApps_ = importApps;
    std::string message;
    bool ok = server->open({}, nullptr, message);
    writeAll(fd, message);
    std::fflush(nullptr);
    ::_exit(ok ? 0 : 1);
  });
  if (child.exitedZero()) return true;
  error = !child.output.empty() ? child.output
          : !child.error.empty() ? child.error
          : WIFSIGNALED(child.status)
              ? "the worker check was killed by signal " + std::to_string(WTERMSIG(child.status))
              : "the worker check failed";
  return false;
}

// The PROXY protocol addresses as they travel in a hand-off message: "addr port saddr sport",
// empty without a header.
static std::string proxyProtocolText(const http::ConnectionInfo& info) {
  if (info.proxyProtocolAddress.empty()) return {};
  return info.proxyProtocolAddress + " " + std::to_string(info.proxyProtocolPort) + " " +
         info.proxyProtocolServerAddress + " " + std::to_string(info.proxyProtocolServerPort);
}

static bool parseProxyProtocolText(const std::string& text, http::ConnectionInfo& out) {
  std::istringstream in(text);
  unsigned port = 0;
  unsigned serverPort = 0;
  if (!(in >> out.proxyProtocolAddress >> port >> out.proxyProtocolServerAddress >> serverPort) ||
      port > 65535 || serverPort > 65535) {
    return false;
  }
  out.proxyProtocolPort = static_cast<uint16_t>(port);
  out.proxyProtocolServerPort = static_cast<uint16_t>(serverPort);
  return true;
}

Server::~Server() {
  sourceWatcher_.reset();  // its thread may take the GIL: joined while Python is whole
  proxyReaders_.clear();
  stopping_ = true;
  setTaking(false);
  loop_.cancelTimer(rescueTimer_);
  loop_.cancelTimer(idleHandOffTimer_);
  std::vector<http::Connection*> rest;
  for (auto& [ptr, conn] : connections_) rest.push_back(ptr);
  for (auto* c : rest) {
    if (connections_.count(c)) c->close();
  }
  loop_.stop();
  loop_.run();    // one pass that buries the closed connections
  wsgi_.reset();  // joins the Python threads while the loop still exists
}

bool Server::open(std::vector<BoundListener> listeners,
                  std::unique_ptr<python::WsgiRuntime> preloaded, std::string& error) {
  const config::ProcessAccessLog& processLog = config_.site.processAccessLog;
  if (!processLog.file.empty()) {
    accessLog_ = std::make_unique<http::AccessLog>(processLog.format, processLog.json);
    if (!accessLog_->formatter.valid()) {
      error = "invalid --access-logformat: " + accessLog_->formatter.error();
      return false;
    }
    if (!accessLog_->file.open(processLog.file, stdout, error)) return false;
    settings_.accessLog = accessLog_.get();
  }

  // The flags' --static directories must exist (a file's root/alias may not).
  for (const auto& required : config_.site.requiredDirectories) {
    struct stat st;
    errno = 0;
    if (::stat(required.path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      error = required.what + ": " +
              (errno == 0 ? std::string("not a directory") : std::string(std::strerror(errno)));
      return false;
    }
  }

  // The site is built (its access logs opened) while still root, with the content modules
  // registered here: stub_status, wsgi_app (whose handlers reach the app once it is imported,
  // after the privileges are dropped), and the static module's files for every other location.
  pipeline::ContentModules content;
  content.modules = {&stubStatusContent_, &serviceContent_, &wsgiContent_, &proxyContent_};
  serviceContent_.setSources(
      {board_, &bound_, &stopping_,
       config_.timeoutSeconds > 0 ? toMs(config_.timeoutSeconds) : 0});
  proxyContent_.setUpstreams(&config_.site.upstreams);
  proxyContent_.setResolvers(&config_.site.resolvers);
  content.files = staticfiles::documentRoots();
  siteMap_ = http::SiteMap::build(config_.site, error, pipeline::autoRedirectOf(content));
  if (!siteMap_) return false;
  for (const config::VirtualServer& server : config_.site.servers) {
    for (const config::ListenSpec& listen : server.listens) {
      if (!listen.proxyProtocol) continue;
      // nginx ORs `proxy_protocol` over every listen of an address.
      ProxyProtocolMode& mode = proxyProtocol_[http::SiteMap::listenKey(listen)];
      mode.enabled = true;
      mode.optional = listen.proxyProtocolOptional;
      mode.allowFrom = listen.proxyAllowFrom;
    }
  }
  site_ = std::make_unique<pipeline::SiteHandler>(config_, *siteMap_, &loop_);
  if (!site_->build(content, error)) return false;
  settings_.site = site_.get();
  // The per-location metrics' labels, in this worker's slot (the last entry is "(other)").
  const auto& labels = site_->metricLocations();
  for (size_t i = 0; i < labels.size() && i < kMetricLocations; ++i) {
    requestMetrics().nameLocation(i, labels[i].server, labels[i].location);
  }
  if (!config_.site.servers.empty()) {
    // Answers before a server is chosen (a request line too long) sign as the first server's
    // server_tokens says (nginx: the default server's).
    settings_.serverHeaderValue =
        site_->serverHeader(config_.site.servers.front().settings.serverTokens);
  }

  // Certificates and keys are read while still root (keys are often readable by root only).
  // Their warnings were logged once by the start-up check or the master's reload check.
  if (!tls_.build(config_.site, error, checkOnly_)) return false;

  if (!createTempPaths(config_.site.tempPaths, config_.user, error)) return false;
  // nginx's `user`: everything that needs root (listeners, logs, pid file) is open by now.
  if (!dropPrivileges(config_.user, config_.group, config_.keepGroup, error)) return false;

  if (checkOnly_ && !importApps_) return true;
  if (!python::WsgiRuntime::specsOf(config_.site).empty()) {
    wsgi_ = std::move(preloaded);
    if (wsgi_) wsgi_->applyEnvironment(config_);
    importStartedNs_ = python::SourceWatcher::wallClockNs();
    if (!wsgi_) wsgi_ = python::WsgiRuntime::load(config_, error);
    if (!wsgi_) {
      error = "Failed to load the WSGI app " + python::WsgiRuntime::appNames(config_.site) + ":\n" +
              error;
      return false;
    }
    if (checkOnly_) return true;
    for (const python::ImportSyntaxError& e : wsgi_->syntaxErrors()) {
      // gunicorn's self.log.exception(e): the worker stays, serving the traceback.
      logError(e.message + " (--reload: every request to " + e.app +
               " is answered 500 with this traceback until the file is fixed)\n" + e.traceback);
    }
    if (busy_ && wsgi_->threads() > busyThreads_) {
      // The master sizes the stamps from what it forks; were they short, the threads would
      // write over the next worker's row.
      error = "the worker runs " + std::to_string(wsgi_->threads()) +
              " Python threads, the master's status board holds " +
              std::to_string(busyThreads_);
      return false;
    }
    // SIGUSR2 from the master (a request past --timeout): every Python thread's stack goes to
    // the error log before the master kills this worker.
    int logFd = ErrorLog::instance().fileno();
    if (logFd >= 0) wsgi_->dumpStacksOn(SIGUSR2, logFd);
    wsgi_->startServing(loop_, busy_,
                        static_cast<uint64_t>(std::max(0.0, config_.timeoutSeconds) * 1000.0));
    if (config_.workers != 1) {
      // Among several workers, one whose Python threads are all busy leaves new connections
      // to its siblings; the kernel queues them if every worker is busy.
      wsgi_->onSaturation([this](bool saturated) {
        saturated_ = saturated;
        updateAccepting();
      });
    }
  }
  if (!wsgiContent_.resolve(wsgi_.get(), error)) return false;
  if (config_.reload && !checkOnly_ && !watchSources(error)) return false;

  bound_ = std::move(listeners);
  for (size_t i = 0; i < bound_.size(); ++i) {
    // Before the Host is known the default server of the listener's address decides (nginx):
    // its head limits (large_client_header_buffers, or the flags' --limit-request-*) and
    // client_header_timeout.
    auto settings = std::make_unique<http::ConnectionSettings>(settings_);
    const http::ServerGroup* group = siteMap_->groupByKey(bound_[i].key);
    if (group && group->defaultServer) {
      http::ConnectionSettings own = connectionSettings(*group->defaultServer->config);
      settings->limits = own.limits;
      settings->headerTooLargeIs400 = own.headerTooLargeIs400;
      settings->headerTimeoutMs = own.headerTimeoutMs;
      settings->maxBodySize = own.maxBodySize;
      settings->bodyTimeoutMs = own.bodyTimeoutMs;
      settings->sendTimeoutMs = own.sendTimeoutMs;
      settings->keepAliveTimeoutMs = own.keepAliveTimeoutMs;
    }
    // `listen ... uwsgi` on any listen of the socket's address (ORed, as `ssl`).
    for (const config::VirtualServer& server : config_.site.servers) {
      for (const config::ListenSpec& listen : server.listens) {
        if (listen.uwsgi && http::SiteMap::listenKey(listen) == bound_[i].key) settings->uwsgi = true;
      }
    }
    listenerSettings_.push_back(std::move(settings));
    listeners_.push_back(std::make_unique<event::Listener>(
        loop_, UniqueFd(::dup(bound_[i].fd.get())),
        [this, i](UniqueFd client, const sockaddr_storage& peer) {
          accept(i, std::move(client), peer);
        },
        config_.multiAccept));
  }
  return true;
}

http::Connection* Server::addConnection(size_t index, UniqueFd fd, const sockaddr_storage& peer,
                                        const http::ConnectionInfo* proxied,
                                        const HandOffQueue::Message* adopted) {
  const BoundListener& local = bound_[index];
  http::ConnectionInfo info = local.local;
  if (!info.isUnix) event::describeAddress(peer, info.peerAddress, info.peerPort);
  if (local.wildcard) {
    // The address the client reached picks the server group ($server_addr, as nginx).
    sockaddr_storage addr{};
    socklen_t length = sizeof addr;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &length) == 0) {
      event::describeAddress(addr, info.localAddress, info.localPort);
    }
  }
  if (proxied) {
    info.proxyProtocolAddress = proxied->proxyProtocolAddress;
    info.proxyProtocolPort = proxied->proxyProtocolPort;
    info.proxyProtocolServerAddress = proxied->proxyProtocolServerAddress;
    info.proxyProtocolServerPort = proxied->proxyProtocolServerPort;
    return startConnection(index, std::move(fd), std::move(info), adopted);
  }
  if (!proxyProtocol_.empty()) {
    const http::ServerGroup* group = siteMap_->groupFor(info, siteMap_->groupByKey(local.key));
    auto mode = group ? proxyProtocol_.find(group->key) : proxyProtocol_.end();
    if (mode != proxyProtocol_.end()) {
      // The header comes first, before TLS: the session starts once it is read.
      auto reader = std::make_unique<ProxyHeaderReader>(
          loop_, std::move(fd), std::move(info), mode->second,
          listenerSettings_[index]->headerTimeoutMs,
          [this, index](ProxyHeaderReader* r, UniqueFd socket, http::ConnectionInfo read) {
            dropProxyReader(r);
            if (!stopping_) startConnection(index, std::move(socket), std::move(read));
          },
          [this](ProxyHeaderReader* r) { dropProxyReader(r); });
      ProxyHeaderReader* raw = reader.get();
      proxyReaders_.emplace(raw, std::move(reader));
      checkFull();
      raw->start();
      return nullptr;
    }
  }
  return startConnection(index, std::move(fd), std::move(info));
}

void Server::dropProxyReader(ProxyHeaderReader* reader) {
  auto it = proxyReaders_.find(reader);
  if (it == proxyReaders_.end()) return;
  loop_.deferDelete(std::move(it->second));
  proxyReaders_.erase(it);
  if (full_) checkFull();
}

http::Connection* Server::startConnection(size_t index, UniqueFd fd, http::ConnectionInfo info,
                                          const HandOffQueue::Message* adopted) {
  const BoundListener& local = bound_[index];
  // An address that listens with `ssl` speaks TLS first: the handshake starts with its default
  // server's certificates (SNI may switch them); every other socket is used as it is.
  std::unique_ptr<transport::Transport> transport;
  const http::ServerGroup* group = siteMap_->groupFor(info, siteMap_->groupByKey(local.key));
  const transport::TlsContext* tls =
      group && tls_.sslAddress(group->key) ? tls_.forGroup(*group) : nullptr;
  if (tls) {
    info.scheme = "https";
    transport = std::make_unique<transport::TlsTransport>(std::move(fd), !info.isUnix, *tls, group);
  } else {
    transport = std::make_unique<transport::PlainTransport>(std::move(fd), !info.isUnix);
  }
  auto conn = std::make_unique<http::Http1Session>(loop_, std::move(transport), std::move(info),
                                                   *listenerSettings_[index], *this);
  http::Connection* raw = conn.get();
  connections_.emplace(raw, Client{std::move(conn), index});
  if (adopted) {
    raw->adopt(adopted->buffered, adopted->requestStartMs, adopted->requestsServed);
  } else {
    raw->start();
  }
  checkFull();
  return connections_.count(raw) ? raw : nullptr;
}

void Server::checkFull() {
  // A connection whose PROXY header is still being read counts too, as in nginx.
  size_t open = connections_.size() + proxyReaders_.size();
  if (config_.workerConnections > 0 && !full_ &&
      open >= static_cast<size_t>(config_.workerConnections)) {
    full_ = true;
    logCritical("[alert] " + std::to_string(config_.workerConnections) +
                " worker_connections are not enough");
    updateAccepting();
  } else if (full_ && open < static_cast<size_t>(config_.workerConnections)) {
    full_ = false;
    updateAccepting();
  }
}

void Server::accept(size_t index, UniqueFd fd, const sockaddr_storage& peer) {
  if (stopping_) return;
  http::connectionStats().accepted.fetch_add(1, std::memory_order_relaxed);
  http::connectionStats().handled.fetch_add(1, std::memory_order_relaxed);
  addConnection(index, std::move(fd), peer);
}

bool Server::offerHandOff(http::Connection& connection) {
  // Only while every Python thread here is busy (the request would wait) and a sibling has a
  // free one; otherwise the connection stays (a request then waits only when all are busy).
  if (!saturated_ || stopping_ || !handOff_ || !board_->otherTaker(slot_)) return false;
  // Only when the wait here is worth a move (two processes' syscalls, a few tens of
  // microseconds): not for requests of a fast app queued behind each other, and not when a
  // thread has already answered and is only finishing (a sequential client's next request
  // arrives in that moment; moving it would bounce the client between workers for nothing).
  if (wsgi_->expectedWaitUs() < kHandOffMinWaitUs) return false;
  auto it = connections_.find(&connection);
  if (it == connections_.end()) return false;
  uint64_t started = connection.requestStartMs() ? connection.requestStartMs() : loop_.nowMs();
  return giveAway(connection, it->second.listener, started);  // false: the queue is full
}

bool Server::giveAway(http::Connection& connection, size_t listener, uint64_t requestStartMs) {
  if (!handOff_->send(connection.fd(), bound_[listener].name, connection.bufferedInput(),
                      requestStartMs, connection.requestsServed(), loop_.nowMs(),
                      proxyProtocolText(connection.info()))) {
    return false;
  }
  ++handedOff_;
  if (status_) status_->handedOff.store(handedOff_, std::memory_order_relaxed);
  connection.close();  // the sibling holds the socket now; this copy goes
  return true;
}

void Server::takeHandOffs() {
  // A few per wake-up: each adopted connection's request is read and dispatched at once, and
  // a worker whose threads are then all busy stops taking (updateAccepting).
  for (int i = 0; i < 16 && taking_ && takeOne(); ++i) {
  }
}

bool Server::takeOne() {
  HandOffQueue::Message message;
  HandOffQueue::Receive got = handOff_->receive(message);
  if (got == HandOffQueue::Receive::kMessage) adopt(std::move(message));
  return got != HandOffQueue::Receive::kEmpty;
}

void Server::rescueHandOffs() {
  rescueTimer_ = {0, 0};
  if (taking_ || stopping_ || !handOff_) return;
  // A connection was queued for a worker that had a free thread, but every worker became busy
  // before one took it. Busy workers take what has waited kRescueAfterMs (and queue it like
  // their own), so it never waits longer than the others' requests do.
  // While a sibling still says it takes, it is given longer (it may only be slow to run):
  // a request waits for a busy worker only when no worker is free.
  uint64_t sentMs = 0;
  for (int i = 0; i < 16 && !full_ && handOff_->oldestSentMs(sentMs); ++i) {
    uint64_t after = board_->otherTaker(slot_) ? kRescueFromTakerAfterMs : kRescueAfterMs;
    if (sentMs + after > loop_.nowMs() || !takeOne()) break;
  }
  if (!taking_ && !stopping_) {
    rescueTimer_ = loop_.addTimer(kRescueAfterMs, [this] { rescueHandOffs(); });
  }
}

void Server::adopt(HandOffQueue::Message message) {
  size_t index = 0;
  while (index < bound_.size() && bound_[index].name != message.listener) ++index;
  if (index == bound_.size()) {
    // A reload between the send and now dropped that listen address: nothing here serves it.
    logInfo("a connection handed over from " + message.listener +
            ", which this worker does not serve, is closed");
    return;
  }
  sockaddr_storage peer{};
  socklen_t length = sizeof peer;
  if (::getpeername(message.fd.get(), reinterpret_cast<sockaddr*>(&peer), &length) != 0) {
    return;  // the client is gone already (ENOTCONN)
  }
  ++adopted_;
  if (status_) status_->adopted.store(adopted_, std::memory_order_relaxed);
  http::ConnectionInfo proxied;
  bool hasProxy = !message.proxy.empty() && parseProxyProtocolText(message.proxy, proxied);
  http::ConnectionInfo none;
  addConnection(index, std::move(message.fd), peer, hasProxy ? &proxied : &none, &message);
}

void Server::handOffIdle() {
  idleHandOffTimer_ = {0, 0};
  if (!handOff_ || connections_.empty()) return;
  if (board_->otherTaker(slot_)) {
    std::vector<std::pair<http::Connection*, size_t>> idle;
    for (auto& [ptr, client] : connections_) {
      if (ptr->idleBetweenRequests()) idle.emplace_back(ptr, client.listener);
    }
    for (auto& [conn, listener] : idle) {
      if (connections_.count(conn) && !giveAway(*conn, listener, 0)) break;  // the queue is full
    }
  }
  // Until the drain ends: a replacement worker may start taking later, and a busy connection
  // may fall idle (one whose client sends a request meanwhile is answered here, with close).
  if (!connections_.empty()) {
    idleHandOffTimer_ = loop_.addTimer(kIdleHandOffEveryMs, [this] { handOffIdle(); });
  }
}

void Server::setTaking(bool taking) {
  if (taking == taking_ || !handOff_) return;
  if (taking) {
    // Exclusive: one message wakes one idle worker, not all of them.
    if (!loop_.add(handOff_->receiveFd(), EPOLLIN | EPOLLEXCLUSIVE, &handOffWatcher_)) return;
  } else {
    loop_.remove(handOff_->receiveFd());
  }
  taking_ = taking;
  board_->setTaker(slot_, taking);
  loop_.cancelTimer(rescueTimer_);
  rescueTimer_ = {0, 0};
  if (!taking && !stopping_) {
    rescueTimer_ = loop_.addTimer(kRescueAfterMs, [this] { rescueHandOffs(); });
  }
}

void Server::updateAccepting() {
  if (stopping_) {
    setTaking(false);
    return;
  }
  // Taking hand-offs needs an app whose threads can saturate (several workers) and a loop
  // that is serving (run() has started the listeners).
  bool balancing = handOff_ && wsgi_ && config_.workers != 1;
  setTaking(!saturated_ && !full_ && balancing && serving_);
  // A busy worker goes on accepting when it can hand a client's first request to an idle
  // sibling: were it to stop, clients not yet accepted would wait in the backlog for as long
  // as every worker stays busy with its kept-alive clients (for ever under steady load).
  // Without hand-offs it leaves new clients to its siblings while its threads are all busy.
  bool accepting = !full_ && (balancing || !saturated_);
  for (auto& l : listeners_) {
    if (accepting) {
      l->start();
    } else {
      l->pause();
    }
  }
}

void Server::connectionClosed(http::Connection* connection) {
  auto it = connections_.find(connection);
  if (it == connections_.end()) return;
  loop_.deferDelete(std::move(it->second.connection));
  connections_.erase(it);
  if (stopping_ && connections_.empty()) loop_.stop();
  if (full_) checkFull();
}

void Server::onRequestDone() {
  ++requests_;
  if (status_) status_->requests.store(requests_, std::memory_order_relaxed);
  if (stopping_) return;
  if (maxRequests_ && requests_ >= maxRequests_) {
    if (status_) status_->exitCause = static_cast<uint32_t>(RestartCause::kMaxRequests);
    beginGracefulStop("Autorestarting worker after current request (" +
                      std::to_string(requests_) + " requests, --max-requests).");
    return;
  }
  if (loop_.nowMs() - lastMemoryCheckMs_ >= kMemoryCheckMs) checkMemory();
}

void Server::checkMemory() {
  if (!config_.maxWorkerMemoryMb || stopping_) return;
  lastMemoryCheckMs_ = loop_.nowMs();
  uint64_t rss = residentMb();
  if (rss > config_.maxWorkerMemoryMb) {
    if (status_) status_->exitCause = static_cast<uint32_t>(RestartCause::kMemory);
    beginGracefulStop("Autorestarting worker: resident memory " + std::to_string(rss) +
                      " MB is over --max-worker-memory " +
                      std::to_string(config_.maxWorkerMemoryMb) + " MB.");
  }
}

bool Server::watchSources(std::string& error) {
  // Without an app there is no module to watch, but the extra files still are (gunicorn's
  // reloader starts whatever the app).
  std::vector<std::string> files = config_.reloadExtraFiles;
  if (wsgi_) {
    for (const python::ImportSyntaxError& e : wsgi_->syntaxErrors()) {
      if (!e.file.empty()) files.push_back(e.file);
    }
  }
  python::ReloadEngine engine =
      python::parseReloadEngine(config_.reloadEngine).value_or(python::ReloadEngine::kAuto);
  sourceWatcher_ = std::make_unique<python::SourceWatcher>(
      engine, std::move(files),
      // The watcher's thread. A source that does not compile is not worth a fresh worker
      // (it would serve nothing but the error): this one keeps serving the last good code,
      // says why, and the watch goes on until the file is fixed. Else the loop takes it.
      [this](const std::string& path) {
        std::string syntax = python::syntaxErrorOf(path);
        if (!syntax.empty()) {
          logError("--reload: " + path + " changed but does not compile; the last good code "
                   "keeps serving until it is fixed:\n" + syntax);
          return false;
        }
        loop_.post([this, path] { sourceChanged(path); });
        return true;
      });
  return sourceWatcher_->start(error, importStartedNs_);
}

void Server::sourceChanged(const std::string& path) {
  if (stopping_) return;
  // Counted as the master counts a HUP's replacements: a reload, not a crash.
  if (status_) status_->exitCause = static_cast<uint32_t>(RestartCause::kReload);
  beginGracefulStop("Worker reloading: " + path + " modified");
}

void Server::closeListeners(bool acceptPending) {
  // Every copy this process holds goes (the master moved its own into bound_ at the fork):
  // once the master and every worker have closed theirs the kernel refuses new clients at
  // once, instead of queueing them for a worker that will never accept them.
  for (auto& l : listeners_) {
    if (acceptPending && !full_) {
      l->acceptPendingAndStop();
    } else {
      l->stop();
    }
  }
  for (auto& b : bound_) b.fd.reset();
}

void Server::beginGracefulStop(const std::string& why) {
  if (stopping_) return;
  logInfo(why);
  // First the clients the kernel already queued (served like the in-flight ones), then no more.
  closeListeners(true);
  stopping_ = true;
  setTaking(false);
  if (status_) status_->state = static_cast<uint32_t>(WorkerState::kDraining);
  // After this iteration's writes: a connection whose response is being flushed now is idle
  // then (the one whose response ended the worker closes, as before).
  if (handOff_) idleHandOffTimer_ = loop_.addTimer(0, [this] { handOffIdle(); });
  // drain() may close (and unlink) connections, so walk a snapshot.
  std::vector<http::Connection*> snapshot;
  for (auto& [ptr, conn] : connections_) snapshot.push_back(ptr);
  for (auto* c : snapshot) {
    if (connections_.count(c)) c->drain();
  }
  if (connections_.empty()) {
    loop_.stop();
    return;
  }
  auto graceMs = static_cast<uint64_t>(config_.gracefulTimeoutSeconds * 1000.0);
  gracefulTimer_ = loop_.addTimer(graceMs, [this] {
    gracefulTimer_ = {0, 0};
    logWarning("graceful timeout reached; closing " + std::to_string(connections_.size()) +
               " connection(s)");
    std::vector<http::Connection*> rest;
    for (auto& [ptr, conn] : connections_) rest.push_back(ptr);
    for (auto* c : rest) {
      if (connections_.count(c)) c->close();
    }
    loop_.stop();
  });
}

void Server::onSignal(int signo) {
  switch (signo) {
    case SIGTERM:
    case SIGQUIT:
      beginGracefulStop("Worker exiting (pid: " + std::to_string(::getpid()) + ")");
      break;
    case SIGINT:
      stopping_ = true;
      setTaking(false);
      closeListeners(false);
      loop_.stop();
      break;
    case SIGUSR1: {
      std::string error;
      if (!ErrorLog::instance().reopen(error)) logError(error);
      if (accessLog_ && !accessLog_->file.reopen(error)) logError(error);
      if (site_ && !site_->reopenLogs(error)) logError(error);
      break;
    }
    default:
      break;  // HUP, TTIN, TTOU are the master's; a worker ignores them
  }
}

void Server::heartbeat() {
  if (status_) {
    uint64_t now = monotonicMs();
    status_->heartbeatMs.store(now, std::memory_order_relaxed);
    publishStatus(now);
  }
  if (parent_ != 0 && ::getppid() != parent_) {
    parent_ = 0;
    beginGracefulStop("Parent changed, shutting down: worker " + std::to_string(::getpid()));
  }
  // Also between requests: the response that crossed the limit may have been the last one
  // within a rate-limited check.
  checkMemory();
  heartbeatTimer_ = loop_.addTimer(kHeartbeatMs, [this] {
    heartbeatTimer_ = {0, 0};
    heartbeat();
  });
}

void Server::publishStatus(uint64_t now) {
  answerStacks();
  status_->rssBytes.store(residentBytes(), std::memory_order_relaxed);
  uint32_t threads = wsgi_ ? static_cast<uint32_t>(wsgi_->threads()) : 0;
  uint32_t busy = 0, stuck = 0;
  uint64_t stuckMs = config_.timeoutSeconds > 0 ? toMs(config_.timeoutSeconds) : 0;
  for (int t = 0; busy_ && t < busyThreads_ && static_cast<uint32_t>(t) < threads; ++t) {
    uint64_t since = busy_[t].load(std::memory_order_relaxed);
    if (since == 0) continue;
    ++busy;
    if (stuckMs && now > since && now - since > stuckMs) ++stuck;
  }
  status_->pythonThreads.store(threads, std::memory_order_relaxed);
  status_->pythonBusy.store(busy, std::memory_order_relaxed);
  status_->pythonStuck.store(stuck, std::memory_order_relaxed);
}

void Server::answerStacks() {
  uint32_t asked = status_->stacksAsked.load(std::memory_order_acquire);
  if (asked == status_->stacksAnswered.load(std::memory_order_relaxed)) return;
  WorkerStatus* slot = status_;  // shared memory: mapped until the process ends
  if (!wsgi_) {
    slot->writeStacks(asked, "This worker runs no Python.\n", wallMs());
    return;
  }
  // A dump under way answers an older ask: the next heartbeat asks again.
  python::WsgiRuntime::dumpStacks(
      [slot, asked](std::string text) { slot->writeStacks(asked, text, wallMs()); });
}

int Server::run() {
  signals_ = std::make_unique<event::SignalWatcher>(loop_, [this](int signo) { onSignal(signo); });
  if (!signals_->ok()) return 1;
  ::signal(SIGPIPE, SIG_IGN);

  for (auto& l : listeners_) {
    if (!l->start()) {
      logCritical(std::string("cannot watch a listener: ") + std::strerror(errno));
      return 1;
    }
  }
  if (status_) {
    status_->startedUnixMs = wallMs();
    status_->state = static_cast<uint32_t>(WorkerState::kReady);
  }
  serving_ = true;
  updateAccepting();
  heartbeat();
  if (Statsd::enabled()) {
    // --statsd-host: the requests of a batch of events go out as one datagram, sent before
    // the loop waits again (and as it ends).
    Statsd::batchOnThisThread();
    loop_.addBeforeWait([] { Statsd::flush(); });
  }
  loop_.run();
  setTaking(false);
  loop_.cancelTimer(gracefulTimer_);
  loop_.cancelTimer(heartbeatTimer_);
  loop_.cancelTimer(idleHandOffTimer_);
  loop_.cancelTimer(rescueTimer_);
  closeListeners(false);
  std::vector<http::Connection*> rest;
  for (auto& [ptr, conn] : connections_) rest.push_back(ptr);
  for (auto* c : rest) {
    if (connections_.count(c)) c->close();
  }
  loop_.run();  // one pass to bury closed connections (stop flag makes it return at once)
  return 0;
}

}  // namespace portico::process
