#include "process/server.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"

namespace portico::process {

namespace {
constexpr uint64_t kGracefulTimeoutMs = 30000;  // gunicorn's --graceful-timeout default
}

// Turns SIGTERM/SIGQUIT/SIGINT/SIGUSR1/SIGHUP into loop events through a signalfd; owned by
// the server, event-loop thread.
class Server::SignalWatcher : public event::IoWatcher {
 public:
  SignalWatcher(Server& server, int fd) : server_(server), fd_(fd) {}
  int fd() const { return fd_.get(); }
  void onIoEvent(uint32_t) override {
    signalfd_siginfo info;
    while (::read(fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      server_.onSignal(static_cast<int>(info.ssi_signo));
    }
  }

 private:
  Server& server_;
  UniqueFd fd_;
};

namespace {
sigset_t serverSignals() {
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGTERM, SIGQUIT, SIGINT, SIGUSR1, SIGHUP}) sigaddset(&mask, s);
  return mask;
}
}  // namespace

Server::Server(const config::Config& config) : config_(config) {
  // Blocked before any thread starts (Python threads inherit the mask), so the signals reach
  // only the loop's signalfd and never kill the process from another thread.
  sigset_t mask = serverSignals();
  ::pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  settings_.limits.maxRequestLine = config.limitRequestLine;
  settings_.limits.maxHeaderCount = config.limitRequestFields;
  settings_.limits.maxHeaderFieldSize = config.limitRequestFieldSize;
  // The whole head may hold every allowed field at full size, within a sane bound.
  settings_.limits.maxHeaderTotal =
      std::max<size_t>(64 * 1024, std::min<size_t>(config.limitRequestLine +
                                                       config.limitRequestFields *
                                                           (config.limitRequestFieldSize + 2),
                                                   16 * 1024 * 1024));
  settings_.maxBodySize = config.limitRequestBody;
  auto ms = [](double seconds) { return static_cast<uint64_t>(seconds * 1000.0); };
  settings_.headerTimeoutMs = ms(config.headerTimeoutSeconds);
  settings_.bodyTimeoutMs = ms(config.bodyTimeoutSeconds);
  settings_.sendTimeoutMs = ms(config.sendTimeoutSeconds);
  settings_.keepAliveTimeoutMs = ms(config.keepAliveSeconds);
  settings_.serverHeader = config.serverHeader;
  settings_.router = &router_;
}

Server::~Server() {
  std::vector<http::Connection*> rest;
  for (auto& [ptr, conn] : connections_) rest.push_back(ptr);
  for (auto* c : rest) {
    if (connections_.count(c)) c->close();
  }
  loop_.stop();
  loop_.run();  // one pass that buries the closed connections
  wsgi_.reset();  // joins the Python threads while the loop still exists
}

bool Server::open(std::string& error) {
  if (!config_.accessLogFile.empty()) {
    accessLog_ = std::make_unique<http::AccessLog>(config_.accessLogFormat);
    if (!accessLog_->formatter.valid()) {
      error = "invalid --access-logformat: " + accessLog_->formatter.error();
      return false;
    }
    if (!accessLog_->file.open(config_.accessLogFile, stdout, error)) return false;
    settings_.accessLog = accessLog_.get();
  }

  for (const auto& mount : config_.statics) {
    struct stat st;
    if (::stat(mount.directory.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      error = "--static " + mount.prefix + "=" + mount.directory + ": " +
              (errno == 0 || S_ISDIR(st.st_mode) ? std::string("not a directory")
                                                 : std::string(std::strerror(errno)));
      return false;
    }
    auto handler =
        std::make_unique<staticfiles::StaticHandler>(mount, staticfiles::MimeTypes::builtin());
    router_.addPrefix(mount.prefix, handler.get());
    handlers_.push_back(std::move(handler));
  }

  if (!config_.wsgiApp.empty()) {
    wsgi_ = python::WsgiRuntime::start(config_, loop_, error);
    if (!wsgi_) {
      error = "Failed to load the WSGI app " + config_.wsgiApp + ":\n" + error;
      return false;
    }
    router_.addPrefix(config_.wsgiMount, &wsgi_->handler());
  }

  std::vector<config::BindAddress> binds = config_.binds;
  if (binds.empty()) {
    config::BindAddress def;
    def.host = "127.0.0.1";
    def.port = 8000;
    def.spec = "127.0.0.1:8000";
    binds.push_back(def);
  }
  for (const auto& bind : binds) {
    ListenerSlot slot;
    UniqueFd fd;
    std::string name;
    if (bind.kind == config::BindAddress::Kind::kUnix) {
      fd = event::listenUnix(bind.path, config_.backlog, error);
      slot.local.isUnix = true;
      slot.local.localAddress = bind.path;
      name = "unix:" + bind.path;
    } else {
      fd = event::listenTcp(bind.host, bind.port, config_.backlog, error);
      slot.local.localAddress = bind.host.empty() ? "0.0.0.0" : bind.host;
      if (fd) slot.local.localPort = event::boundPort(fd.get());
      bool v6 = slot.local.localAddress.find(':') != std::string::npos;
      name = "http://" + (v6 ? "[" + slot.local.localAddress + "]" : slot.local.localAddress) +
             ":" + std::to_string(slot.local.localPort);
    }
    if (!fd) {
      error = "cannot listen on " + bind.spec + ": " + error;
      return false;
    }
    listenerNames_.push_back(name);
    size_t index = listeners_.size();
    slot.listener = std::make_unique<event::Listener>(
        loop_, std::move(fd), [this, index](UniqueFd client, const sockaddr_storage& peer) {
          accept(listeners_[index], std::move(client), peer);
        });
    listeners_.push_back(std::move(slot));
  }
  return true;
}

void Server::accept(const ListenerSlot& slot, UniqueFd fd, const sockaddr_storage& peer) {
  if (stopping_) return;
  http::ConnectionInfo info = slot.local;
  if (!info.isUnix) event::describeAddress(peer, info.peerAddress, info.peerPort);
  auto conn = std::make_unique<http::Connection>(loop_, std::move(fd), std::move(info),
                                                 settings_, *this);
  http::Connection* raw = conn.get();
  connections_.emplace(raw, std::move(conn));
  raw->start();
}

void Server::connectionClosed(http::Connection* connection) {
  auto it = connections_.find(connection);
  if (it == connections_.end()) return;
  loop_.deferDelete(std::move(it->second));
  connections_.erase(it);
  if (stopping_ && connections_.empty()) loop_.stop();
}

void Server::beginGracefulStop() {
  if (stopping_) return;
  stopping_ = true;
  for (auto& slot : listeners_) slot.listener->stop();
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
  gracefulTimer_ = loop_.addTimer(kGracefulTimeoutMs, [this] {
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
      logInfo(std::string("Handling signal: ") + (signo == SIGTERM ? "term" : "quit") +
              "; finishing in-flight requests");
      beginGracefulStop();
      break;
    case SIGINT:
      logInfo("Handling signal: int; stopping now");
      stopping_ = true;
      for (auto& slot : listeners_) slot.listener->stop();
      loop_.stop();
      break;
    case SIGUSR1: {
      logInfo("Handling signal: usr1; reopening log files");
      std::string error;
      if (!ErrorLog::instance().reopen(error)) logError(error);
      if (accessLog_ && !accessLog_->file.reopen(error)) logError(error);
      break;
    }
    case SIGHUP:
      logWarning("Handling signal: hup; reload needs the master process, which is not part of "
                 "this release: ignored");
      break;
    default:
      break;
  }
}

int Server::run() {
  sigset_t mask = serverSignals();
  int sfd = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) {
    logCritical(std::string("signalfd: ") + std::strerror(errno));
    return 1;
  }
  signals_ = std::make_unique<SignalWatcher>(*this, sfd);
  loop_.add(signals_->fd(), EPOLLIN, signals_.get());
  ::signal(SIGPIPE, SIG_IGN);

  for (auto& slot : listeners_) {
    if (!slot.listener->start()) {
      logCritical(std::string("cannot watch a listener: ") + std::strerror(errno));
      return 1;
    }
  }
  loop_.run();
  loop_.cancelTimer(gracefulTimer_);
  for (auto& slot : listeners_) slot.listener->stop();
  std::vector<http::Connection*> rest;
  for (auto& [ptr, conn] : connections_) rest.push_back(ptr);
  for (auto* c : rest) {
    if (connections_.count(c)) c->close();
  }
  loop_.run();  // one pass to bury closed connections (stop flag makes it return at once)
  for (const auto& bind : config_.binds) {
    if (bind.kind == config::BindAddress::Kind::kUnix) ::unlink(bind.path.c_str());
  }
  logInfo("Shutting down: Master");
  return 0;
}

}  // namespace portico::process
