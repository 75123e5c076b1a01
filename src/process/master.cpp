#include "process/master.h"
#include "http/variables.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/cpu_count.h"
#include "core/file_time.h"
#include "core/log.h"
#include "core/statsd.h"
#include "event/signal_watcher.h"
#include "pipeline/limit_zones.h"
#include "process/cpu_affinity.h"
#include "process/process_title.h"
#include "process/server.h"
#include "process/tls_contexts.h"
#include "transport/kernel_tls.h"
#include "process/tls_shared.h"

namespace portico::process {

namespace {

constexpr int kWorkerBootError = 3;       // gunicorn's WORKER_BOOT_ERROR
constexpr int kStackDumpSignal = SIGUSR2;  // handled by faulthandler in the worker
constexpr uint64_t kTickMs = 200;
constexpr uint64_t kTouchCheckMs = 1000;  // uWSGI looks at touch-reload files once a second
constexpr uint64_t kTimeoutKillGraceMs = 1000;  // time for the stack dump before SIGKILL
constexpr uint64_t kQuickDeathMs = 1000;  // a worker dying this soon counts toward a crash loop
constexpr uint64_t kMaxBackoffMs = 10000;
constexpr uint64_t kStatusEveryMs = 5000;

std::string signalName(int signo) {
  const char* abbrev = ::sigabbrev_np(signo);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(signo);
}

// `auto`: the CPUs this process may use, within its cgroup's quota (a container's limit).
int resolveWorkers(int workers) { return workers > 0 ? workers : usableCpuCount(); }

// Once at start, when a server speaks TLS: whether static files can leave through kernel TLS
// (SSL_sendfile) or are read and encrypted in user space.
void logKernelTls(const config::HttpSite& site) {
  bool tls = false;
  for (const config::VirtualServer& server : site.servers) {
    tls |= !server.tls.certificates.empty();
    for (const config::ListenSpec& listen : server.listens) tls |= listen.ssl;
  }
  if (!tls) return;
  ErrorLog::instance().write(LogLevel::kNotice,
                             transport::kernelTlsNotice(transport::kernelTlsSupport()));
}

}  // namespace

Master::Master(config::Config config, Reloader reload)
    : config_(std::move(config)), reload_(std::move(reload)) {
  target_ = resolveWorkers(config_.workers);
  // Blocked from the start: the signals are read from a signalfd, and every child (and every
  // thread a preloaded app might start) inherits the mask.
  event::blockHandledSignals();
  ::signal(SIGPIPE, SIG_IGN);
}

Master::~Master() {
  for (const auto& l : listeners_) {
    if (!l.unixPath.empty()) ::unlink(l.unixPath.c_str());
  }
}

bool Master::open(std::string& error) {
  // As nginx at startup: an unknown variable anywhere is an error before anything listens.
  if (!http::validateTemplates(config_.site, error)) return false;
  // The limit_req/limit_conn zones are mapped before the forks: every worker shares them.
  pipeline::LimitZones::installed() = pipeline::LimitZones::create(config_.site, nullptr, error);
  if (!pipeline::LimitZones::installed()) return false;
  // So are the shared SSL session caches and the ticket keys (a ticket resumes on any worker).
  TlsShared::installed() = TlsShared::create(config_.site, nullptr, error);
  if (!TlsShared::installed()) return false;
  // What would stop every worker (a log that cannot be opened, an app that cannot be
  // imported) stops start-up here, exit 1, before anything listens. With --preload the
  // master's own import below checks the app.
  if (!Statsd::configure(config_.statsdHost, config_.statsdPrefix, config_.dogstatsdTags, error)) {
    return false;
  }
  if (!Server::checkBoot(config_, !config_.preload, error)) return false;
  logKernelTls(config_.site);
  // Socket activation: systemd's sockets serve the listen addresses they are; with the flags
  // they are the addresses (gunicorn's way: --bind is then not used).
  if (!takePassedSockets(systemdSockets_, error)) return false;
  if (config_.confFile.empty()) bindPassedSockets(config_, systemdSockets_);
  if (!openListeners(config_, listeners_, error, &systemdSockets_)) return false;
  if (!python::WsgiRuntime::specsOf(config_.site).empty() && config_.preload) {
    preloaded_ = python::WsgiRuntime::load(config_, error);
    if (!preloaded_) {
      error = "Failed to load the WSGI app " + python::WsgiRuntime::appNames(config_.site) +
              ":\n" + error;
      return false;
    }
  }
  handOff_ = HandOffQueue::create(error);
  if (!handOff_) return false;
  // Room for reloads and TTIN: twice the workers plus headroom, at least 64 slots.
  size_t slots = std::max<size_t>(64, static_cast<size_t>(target_) * 4);
  board_ = std::make_unique<StatusBoard>(slots);
  busyBoard_ = std::make_shared<BusyBoard>(slots, forkedThreads());
  if (!board_->ok() || !busyBoard_->ok()) {
    error = std::string("cannot map the worker status board: ") + std::strerror(errno);
    return false;
  }
  BoardTotals& totals = board_->totals();
  totals.masterPid = ::getpid();
  totals.startedUnixMs = wallMs();
  totals.masterState = static_cast<uint32_t>(MasterState::kStarting);
  publishTotals();
  return true;
}

int Master::run() {
  signals_ = std::make_unique<event::SignalWatcher>(loop_, [this](int signo) { onSignal(signo); });
  if (!signals_->ok()) return 1;
  // gunicorn's -n/--name, else the apps served.
  std::string apps = !config_.procName.empty() ? config_.procName
                                               : python::WsgiRuntime::appNames(config_.site);
  setProcessTitle("portico: master" + (apps.empty() ? "" : " [" + apps + "]"));
  for (const auto& l : listeners_) {
    logInfo("Listening at: " + l.name + " (" + std::to_string(::getpid()) + ")");
  }
  watchTouched();
  manageWorkers();
  tick();
  loop_.run();
  loop_.cancelTimer(tickTimer_);
  logInfo("Shutting down: Master");
  return exitCode_;
}

int Master::forkedThreads() const {
  return preloaded_ ? preloaded_->threads() : python::WsgiRuntime::totalThreads(config_.site);
}

size_t Master::activeWorkers() const {
  size_t n = 0;
  for (const auto& w : workers_) {
    if (w.retiring || w.generation != generation_) continue;
    // A worker recycling itself (max requests, memory) is replaced before it is gone.
    if (board_->slot(w.slot).state.load() == static_cast<uint32_t>(WorkerState::kDraining)) continue;
    ++n;
  }
  return n;
}

void Master::manageWorkers() {
  if (stopping_) return;
  uint64_t now = monotonicMs();
  while (activeWorkers() < static_cast<size_t>(target_)) {
    if (now < nextSpawnMs_) return;  // backing off after a crash loop
    if (!spawn()) return;
  }
  // TTOU or a smaller reload: the oldest current workers go first (as gunicorn).
  while (activeWorkers() > static_cast<size_t>(target_)) {
    auto oldest = workers_.end();
    for (auto it = workers_.begin(); it != workers_.end(); ++it) {
      if (it->retiring || it->generation != generation_) continue;
      if (oldest == workers_.end() || it->startedMs < oldest->startedMs) oldest = it;
    }
    if (oldest == workers_.end()) break;
    oldest->retiring = true;
    oldest->killAtMs = now + static_cast<uint64_t>(config_.gracefulTimeoutSeconds * 1000.0) + 1000;
    ::kill(oldest->pid, SIGTERM);
  }
}

bool Master::spawn() {
  size_t slot = board_->claim();
  if (slot == SIZE_MAX) {
    logError("no free worker slot; not spawning");
    return false;
  }
  busyBoard_->reset(slot);
  // The lowest number no current worker has: a replacement takes the number of the worker it
  // replaces, and a reload's new workers count from 0 again, as nginx's.
  auto taken = [this](int n) {
    return std::any_of(workers_.begin(), workers_.end(), [&](const Worker& w) {
      return !w.retiring && w.generation == generation_ && w.number == n;
    });
  };
  int number = 0;
  while (taken(number)) ++number;
  if (preloaded_) preloaded_->beforeFork();
  const pid_t master = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    if (preloaded_) preloaded_->afterForkInChild();
    runWorker(slot, master, number);
  }
  if (preloaded_) preloaded_->afterForkInParent();
  if (pid < 0) {
    logError(std::string("fork: ") + std::strerror(errno));
    board_->slot(slot).state = static_cast<uint32_t>(WorkerState::kFree);
    return false;
  }
  Worker w;
  w.pid = pid;
  w.slot = slot;
  w.number = number;
  w.generation = generation_;
  w.startedMs = monotonicMs();
  w.busy = busyBoard_;
  board_->slot(slot).pid = pid;
  workers_.push_back(w);
  logInfo("Booting worker with pid: " + std::to_string(pid));
  return true;
}

void Master::runWorker(size_t slot, pid_t master, int number) {
  int code;
  {
    applyCpuAffinity(config_, number);  // before any thread: they inherit it
    std::string apps = !config_.procName.empty() ? config_.procName
                                                 : python::WsgiRuntime::appNames(config_.site);
    setProcessTitle("portico: worker" + (apps.empty() ? "" : " [" + apps + "]"));
    // The master's epoll instance is shared with this child (fork copies the descriptor, not
    // the instance): deregistering from it here would deregister the master's watcher too.
    // Closing the child's copy of the signalfd is harmless.
    signals_->forgetLoop();
    signals_.reset();
    // The worker takes the master's copies it inherited (fork duplicated them), so a stop
    // that closes the worker's listeners leaves no copy behind in this process.
    std::vector<BoundListener> listeners;
    for (auto& l : listeners_) {
      BoundListener copy;
      copy.fd = std::move(l.fd);
      copy.local = l.local;
      copy.name = l.name;
      copy.key = l.key;
      copy.wildcard = l.wildcard;
      listeners.push_back(std::move(copy));
    }
    WorkerStatus& status = board_->slot(slot);
    status.pid = ::getpid();
    // stub_status counts into this worker's slot and shows the sum over the live workers.
    http::setConnectionStats(&status.connections);
    // The counts of the workers that are gone stay in (nginx keeps its counters in shared
    // memory across reloads).
    http::setConnectionCountersReader([board = board_.get()] {
      http::ConnectionCounters sum;
      board->sum(nullptr, sum);
      return sum;
    });
    // So do the request metrics (claim() zeroed them); a scrape on any worker reads the board.
    setRequestMetrics(&status.metrics);
    setThreadActivities(status.activity, kActivityThreads);
    Server server(config_, &status, busyBoard_->busy(slot), busyBoard_->threads());
    server.joinHandOff(*board_, slot, *handOff_);
    server.watchParent(master);
    std::string error;
    if (!server.open(std::move(listeners), std::move(preloaded_), error)) {
      logCritical(error);
      code = kWorkerBootError;
    } else {
      code = server.run();
    }
  }
  std::fflush(nullptr);
  std::exit(code);
}

void Master::onSignal(int signo) {
  switch (signo) {
    case SIGCHLD:
      reap();
      manageWorkers();
      break;
    case SIGTERM:
    case SIGQUIT:
      logInfo("Handling signal: " + std::string(signo == SIGTERM ? "term" : "quit"));
      stop(true);
      break;
    case SIGINT:
      logInfo("Handling signal: int");
      stop(false);
      break;
    case SIGHUP:
      logInfo("Handling signal: hup");
      reload();
      break;
    case SIGTTIN:
      ++target_;
      logInfo("Handling signal: ttin; workers: " + std::to_string(target_));
      manageWorkers();
      break;
    case SIGTTOU:
      if (target_ > 1) --target_;
      logInfo("Handling signal: ttou; workers: " + std::to_string(target_));
      manageWorkers();
      break;
    case SIGUSR1: {
      logInfo("Handling signal: usr1; reopening log files");
      std::string error;
      if (!ErrorLog::instance().reopen(error)) logError(error);
      for (const auto& w : workers_) ::kill(w.pid, SIGUSR1);
      break;
    }
    default:
      break;
  }
}

void Master::reload() {
  if (stopping_) return;
  // READY=1 follows once the generation that serves after this is all booted: the new one, or
  // the running one when the reload fails.
  systemd_.reloading();
  readyGeneration_ = 0;
  board_->totals().masterState = static_cast<uint32_t>(MasterState::kReloading);
  config::Config fresh;
  std::string error;
  if (reload_ && !reload_(fresh, error)) {
    logError("reload failed, keeping the running configuration: " + error);
    return;
  }
  if (reload_) {
    // As nginx: sockets still configured stay open (no connection is refused), new ones
    // are opened, those no longer configured are closed. A socket that cannot be opened
    // fails the reload and the running configuration stays.
    if (!http::validateTemplates(fresh.site, error)) {
      logError("reload failed, keeping the running configuration: " + error);
      return;
    }
    // Certificates and keys are read here too, as nginx's master does on reload: were a broken
    // one left to the new workers, they would fail to boot and take the master down.
    if (!TlsContexts().build(fresh.site, error)) {
      logError("reload failed, keeping the running configuration: " + error);
      return;
    }
    // Zones whose name and size are unchanged keep their mapping (and counts), as nginx's.
    std::shared_ptr<pipeline::LimitZones> zones =
        pipeline::LimitZones::create(fresh.site, pipeline::LimitZones::installed().get(), error);
    if (!zones) {
      logError("reload failed, keeping the running configuration: " + error);
      return;
    }
    std::shared_ptr<TlsShared> tlsShared =
        TlsShared::create(fresh.site, TlsShared::installed().get(), error);
    if (!tlsShared) {
      logError("reload failed, keeping the running configuration: " + error);
      return;
    }
    std::vector<std::string> before;
    for (const auto& l : listeners_) before.push_back(l.name);
    if (fresh.confFile.empty()) bindPassedSockets(fresh, systemdSockets_);
    if (!updateListeners(fresh, listeners_, error, &systemdSockets_)) {
      logError("reload failed, keeping the running configuration: " + error);
      return;
    }
    pipeline::LimitZones::installed() = std::move(zones);
    TlsShared::installed() = std::move(tlsShared);
    for (const auto& l : listeners_) {
      if (std::find(before.begin(), before.end(), l.name) == before.end()) {
        logInfo("Listening at: " + l.name + " (" + std::to_string(::getpid()) + ")");
      }
    }
    if (!Statsd::configure(fresh.statsdHost, fresh.statsdPrefix, fresh.dogstatsdTags, error)) {
      // The running workers keep the client they forked with; the new ones send nothing.
      logError("reload: " + error + "; no statsd metrics until the next reload");
    }
    fresh.preload = config_.preload;
    config_ = std::move(fresh);
    ErrorLog::useJsonFormat(config_.jsonLogs);  // error_log_format, as the new workers have it
    // The thread stamps are sized from what the new workers run: a new count gets a board of
    // its own, the old workers keep theirs until they are gone.
    int threads = forkedThreads();
    if (threads != busyBoard_->threads()) {
      auto busy = std::make_shared<BusyBoard>(board_->slots(), threads);
      if (busy->ok()) {
        logInfo("reload: the new workers run " + std::to_string(threads) +
                " Python thread(s) each (were " + std::to_string(busyBoard_->threads()) + ")");
        busyBoard_ = std::move(busy);
      } else {
        // Then the new workers would run more threads than their stamps hold: they refuse
        // to boot (Server::open) rather than write past their row.
        logError(std::string("reload: cannot map the thread board: ") + std::strerror(errno));
      }
    }
    if (preloaded_ && python::WsgiRuntime::totalThreads(config_.site) != threads) {
      logWarning("reload: the app was preloaded in the master; the new workers keep its " +
                 std::to_string(threads) + " Python thread(s) each (a restart applies the new"
                 " count)");
    }
    target_ = resolveWorkers(config_.workers);
  }
  if (preloaded_) {
    logInfo("reload: the app was preloaded in the master; new workers fork from it (as gunicorn,"
            " the code is not re-imported)");
  }
  // New workers first, then the old ones drain: the listeners never stop accepting.
  ++generation_;
  board_->totals().reloads.fetch_add(1);
  publishTotals();
  crashStreak_ = 0;
  nextSpawnMs_ = 0;
  manageWorkers();
  uint64_t now = monotonicMs();
  for (auto& w : workers_) {
    if (w.generation == generation_ || w.retiring) continue;
    w.retiring = true;
    w.killAtMs = now + static_cast<uint64_t>(config_.gracefulTimeoutSeconds * 1000.0) + 1000;
    ::kill(w.pid, SIGTERM);
  }
}

void Master::stop(bool graceful) {
  if (stopping_ && graceful) return;
  if (!stopping_) systemd_.stopping(graceful ? "stopping gracefully" : "stopping");
  stopping_ = true;
  board_->totals().masterState = static_cast<uint32_t>(MasterState::kStopping);
  uint64_t now = monotonicMs();
  uint64_t grace = graceful ? static_cast<uint64_t>(config_.gracefulTimeoutSeconds * 1000.0) + 1000
                            : 2000;
  stopDeadlineMs_ = now + grace;
  bool booting = false;
  for (auto& w : workers_) {
    w.retiring = true;
    w.killAtMs = stopDeadlineMs_;
    // Looked at before the signal: a ready worker that takes it at once marks itself draining,
    // and was taken for a booting one, whose socket shutdown() then made its sibling's last
    // accepts fail ("accept: Invalid argument" in two stops of five).
    if (board_->slot(w.slot).state.load() == static_cast<uint32_t>(WorkerState::kBooting)) {
      booting = true;
    }
    ::kill(w.pid, graceful ? SIGTERM : SIGINT);
  }
  closeListeners(booting);
  if (workers_.empty()) loop_.stop();
}

void Master::closeListeners(bool stopListening) {
  // A stop refuses new clients at once (as nginx's QUIT): the workers close their copies as
  // they take the signal, after accepting what the kernel had queued, and the master closes
  // its own. A worker still importing the app reads its signal only once booted; meanwhile its
  // copy would keep the socket listening, so then shutdown() stops the socket itself (the
  // clients still queued are reset, as when nginx closes a listener).
  for (auto& l : listeners_) {
    if (!l.fd) continue;
    if (stopListening) ::shutdown(l.fd.get(), SHUT_RD);
    l.fd.reset();
  }
}

void Master::reap() {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      if (stopping_ && workers_.empty()) loop_.stop();
      return;
    }
    auto it = std::find_if(workers_.begin(), workers_.end(),
                           [pid](const Worker& w) { return w.pid == pid; });
    if (it == workers_.end()) continue;
    Worker w = *it;
    workers_.erase(it);
    board_->setTaker(w.slot, false);  // a killed worker could not withdraw itself
    RestartCause cause = static_cast<RestartCause>(board_->slot(w.slot).exitCause.load());
    // Its counts join the totals and the slot is free.
    board_->retire(w.slot);
    uint64_t lived = monotonicMs() - w.startedMs;
    bool abnormal = false;
    bool timedOut = false;
    if (WIFEXITED(status)) {
      int code = WEXITSTATUS(status);
      if (code == kWorkerBootError) {
        logCritical("Worker (pid:" + std::to_string(pid) + ") failed to boot; shutting down");
        exitCode_ = kWorkerBootError;
        stop(true);
      } else if (code != 0) {
        logError("Worker (pid:" + std::to_string(pid) + ") exited with code " +
                 std::to_string(code));
        abnormal = true;
      } else {
        logInfo("Worker exiting (pid: " + std::to_string(pid) + ")");
      }
    } else if (WIFSIGNALED(status)) {
      int sig = WTERMSIG(status);
      std::string how = "Worker (pid:" + std::to_string(pid) + ") was sent " + signalName(sig);
      if (WCOREDUMP(status)) how += " (core dumped)";
      if (w.killAtMs != 0 && !stopping_ && !w.retiring) {
        how += " after a timeout";
        timedOut = true;
      }
      if (w.retiring || stopping_) {
        logWarning(how);
      } else {
        logError(how + "!");
        abnormal = true;
      }
    }
    if (!stopping_) {
      if (timedOut) {
        cause = RestartCause::kTimeout;
      } else if (abnormal) {
        cause = RestartCause::kCrash;
      } else if (cause == RestartCause::kNone && w.retiring) {
        cause = RestartCause::kReload;
      }
      if (cause != RestartCause::kNone && cause < RestartCause::kCount) {
        board_->totals().restarts[static_cast<size_t>(cause)].fetch_add(1);
      }
    }
    if (abnormal && lived < kQuickDeathMs) {
      ++crashStreak_;
      uint64_t delay = std::min<uint64_t>(kMaxBackoffMs, 100ull << std::min(crashStreak_, 7));
      nextSpawnMs_ = monotonicMs() + delay;
      logWarning("workers are dying at start-up (" + std::to_string(crashStreak_) +
                 " in a row); next spawn in " + std::to_string(delay) + " ms");
    } else if (!abnormal || lived >= kQuickDeathMs) {
      crashStreak_ = 0;
    }
  }
}

void Master::checkTimeouts(Worker& w, uint64_t now) {
  if (w.killAtMs != 0 || config_.timeoutSeconds <= 0) return;
  auto timeoutMs = static_cast<uint64_t>(config_.timeoutSeconds * 1000.0);
  WorkerStatus& status = board_->slot(w.slot);
  std::string why;
  std::atomic<uint64_t>* busy = w.busy->busy(w.slot);
  // The worker itself answers a request past --timeout (504) and interrupts its Python thread;
  // only a thread still busy a grace later (stuck in C code) costs the worker.
  uint64_t stuckMs = timeoutMs + python::WsgiRuntime::kTimeoutGraceMs;
  for (int t = 0; t < w.busy->threads(); ++t) {
    uint64_t since = busy[t].load(std::memory_order_relaxed);
    if (since != 0 && now > since && now - since > stuckMs) {
      why = "a request has run for " + std::to_string((now - since) / 1000) +
            " s and its thread could not be interrupted";
      break;
    }
  }
  uint64_t beat = status.heartbeatMs.load(std::memory_order_relaxed);
  if (why.empty() && status.state.load() == static_cast<uint32_t>(WorkerState::kReady) &&
      now > beat && now - beat > std::max<uint64_t>(timeoutMs, 5000)) {
    why = "its event loop has not answered for " + std::to_string((now - beat) / 1000) + " s";
  }
  if (why.empty()) return;
  logCritical("WORKER TIMEOUT (pid:" + std::to_string(w.pid) + "): " + why +
              " (--timeout " + std::to_string(static_cast<long>(config_.timeoutSeconds)) +
              "); its Python threads' stacks follow");
  // SIGUSR2 makes the worker's faulthandler write every Python thread's stack to the error
  // log (it works even while a thread holds the GIL); SIGKILL follows shortly.
  ::kill(w.pid, kStackDumpSignal);
  w.killAtMs = now + kTimeoutKillGraceMs;
}

void Master::logStatus() {
  if (!ErrorLog::instance().enabled(LogLevel::kDebug)) return;
  for (const auto& w : workers_) {
    WorkerStatus& s = board_->slot(w.slot);
    bool busy = false;
    for (int t = 0; t < w.busy->threads(); ++t) busy |= w.busy->busy(w.slot)[t].load() != 0;
    static constexpr const char* kStates[] = {"free", "booting", "ready", "draining"};
    uint32_t state = s.state.load();
    logDebug("worker pid=" + std::to_string(w.pid) + " requests=" +
             std::to_string(s.requests.load()) + " state=" +
             (state < 4 ? kStates[state] : "unknown") + (busy ? " busy" : " idle") +
             " handed_off=" + std::to_string(s.handedOff.load()) +
             " adopted=" + std::to_string(s.adopted.load()) + (w.retiring ? " retiring" : ""));
  }
}

void Master::notifyReadiness() {
  if (readyGeneration_ == generation_) return;
  int ready = 0;
  for (const Worker& w : workers_) {
    if (w.retiring || w.generation != generation_) continue;
    if (board_->slot(w.slot).state.load() == static_cast<uint32_t>(WorkerState::kReady)) ++ready;
  }
  if (ready < target_) return;
  readyGeneration_ = generation_;
  board_->totals().masterState = static_cast<uint32_t>(MasterState::kRunning);
  systemd_.ready(std::to_string(ready) + (ready == 1 ? " worker" : " workers") + " ready");
}

void Master::publishTotals() {
  BoardTotals& t = board_->totals();
  uint64_t now = monotonicMs();
  t.masterHeartbeatMs.store(now, std::memory_order_relaxed);
  if (now - lastHistoryMs_ >= BoardTotals::kHistoryEveryMs) {
    lastHistoryMs_ = now;
    if (!historyScratch_) historyScratch_ = std::make_unique<RequestMetrics>();
    board_->recordHistory(wallMs(), *historyScratch_);
  }
  t.generation.store(generation_, std::memory_order_relaxed);
  t.targetWorkers.store(static_cast<uint32_t>(target_), std::memory_order_relaxed);
}

void Master::watchTouched() {
  touched_.clear();
  for (const std::string& path : config_.touchReload) {
    touched_.emplace_back(path, modifiedTimeNs(path));
  }
}

std::string Master::touchedFile() {
  for (auto& [path, seen] : touched_) {
    // A missing file's appearance is a touch too, as uWSGI takes it.
    std::optional<int64_t> now = modifiedTimeNs(path);
    if (now == seen) continue;
    seen = now;
    return path;
  }
  return {};
}

void Master::tick() {
  uint64_t now = monotonicMs();
  for (auto& w : workers_) {
    checkTimeouts(w, now);
    if (w.killAtMs != 0 && now >= w.killAtMs) {
      ::kill(w.pid, SIGKILL);
      w.killAtMs = now + 60000;  // do not repeat every tick
    }
  }
  publishTotals();
  if (!stopping_) {
    manageWorkers();
    notifyReadiness();
  }
  if (stopping_ && workers_.empty()) {
    loop_.stop();
    return;
  }
  if (now - lastStatusMs_ >= kStatusEveryMs) {
    lastStatusMs_ = now;
    logStatus();
  }
  if (Statsd::enabled()) {
    // gunicorn's arbiter reports its count of workers (those it keeps) when it changes.
    int64_t active = std::count_if(workers_.begin(), workers_.end(),
                                   [](const Worker& w) { return !w.retiring; });
    if (active != gaugedWorkers_) {
      gaugedWorkers_ = active;
      Statsd::gauge("gunicorn.workers", active);
    }
  }
  if (!touched_.empty() && !stopping_ && now - lastTouchCheckMs_ >= kTouchCheckMs) {
    lastTouchCheckMs_ = now;
    std::string file = touchedFile();
    if (!file.empty()) {
      logInfo("touch-reload: " + file + " modified; reloading");
      reload();
      watchTouched();  // the reloaded configuration's files, from their times now
    }
  }
  tickTimer_ = loop_.addTimer(kTickMs, [this] {
    tickTimer_ = {0, 0};
    tick();
  });
}

}  // namespace portico::process
