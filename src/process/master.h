#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "event/event_loop.h"
#include "event/signal_watcher.h"
#include "process/hand_off.h"
#include "process/listeners.h"
#include "process/systemd_notify.h"
#include "process/systemd_sockets.h"
#include "process/worker_status.h"
#include "python/wsgi_runtime.h"

namespace portico::process {

// The supervising process (gunicorn's arbiter, nginx's master): opens the listeners, forks the
// workers and keeps the wanted number alive — respawning the dead (with back-off on a crash
// loop), killing a worker stuck in one request past --timeout after its Python stacks were
// logged, replacing workers that recycle themselves — and turns signals into graceful stop,
// fast stop, reload (HUP), more or fewer workers (TTIN/TTOU) and log reopening (USR1). It never
// serves a request. One per run; single-threaded.
class Master {
 public:
  // `reload` re-reads the settings for HUP (the command line, later the config file); it
  // returns false with a message when they are broken, and the old settings stay.
  using Reloader = std::function<bool(config::Config& out, std::string& error)>;
  Master(config::Config config, Reloader reload);
  ~Master();

  // Opens the listeners and (with --preload) imports the app; false with a message.
  bool open(std::string& error);
  // Supervises until stopped; returns the exit code (3 when a worker could not boot).
  int run();
  const std::vector<BoundListener>& listeners() const { return listeners_; }

 private:
  struct Worker {
    pid_t pid = 0;
    size_t slot = 0;
    int number = 0;               // 0 .. workers-1 within its generation (worker_cpu_affinity)
    uint64_t generation = 0;
    uint64_t startedMs = 0;
    bool retiring = false;        // told to stop (reload, TTOU, shutdown)
    uint64_t killAtMs = 0;        // SIGKILL deadline once a stop or timeout kill is under way
    std::shared_ptr<BusyBoard> busy;  // the thread stamps of its generation
  };

  void onSignal(int signo);
  void tick();
  // --touch-reload: watchTouched() takes the files' times now; touchedFile() names the first
  // whose time changed since (and takes it), empty when none did.
  void watchTouched();
  std::string touchedFile();
  void reap();
  void manageWorkers();
  bool spawn();
  [[noreturn]] void runWorker(size_t slot, pid_t master, int number);
  void stop(bool graceful);
  // Closes the master's copies of the listening sockets (a stop); `stopListening` shuts them
  // down for every process first (kept unix paths are still removed at exit).
  void closeListeners(bool stopListening);
  void reload();
  void checkTimeouts(Worker& w, uint64_t now);
  void logStatus();
  // systemd's READY=1 once every worker of the current generation has booted (at start, and
  // after each reload's RELOADING=1).
  void notifyReadiness();
  // The master's heartbeat, generation and worker target, for the metrics and health.
  void publishTotals();
  size_t activeWorkers() const;
  // Python threads a worker forked now runs: the preloaded app's, else what config_ says.
  int forkedThreads() const;

  config::Config config_;
  Reloader reload_;
  event::EventLoop loop_;
  std::vector<BoundListener> listeners_;
  std::unique_ptr<python::WsgiRuntime> preloaded_;
  std::unique_ptr<StatusBoard> board_;
  // The thread stamps of the workers forked now, sized by forkedThreads(); replaced when a
  // reload changes the count (the older generation keeps its own through Worker::busy).
  std::shared_ptr<BusyBoard> busyBoard_;
  // Connections a busy worker gives to an idle sibling; the master's copy keeps those queued
  // alive while workers come and go.
  std::unique_ptr<HandOffQueue> handOff_;
  std::unique_ptr<event::SignalWatcher> signals_;
  std::vector<Worker> workers_;
  int target_ = 1;
  uint64_t generation_ = 1;
  bool stopping_ = false;
  int exitCode_ = 0;
  uint64_t stopDeadlineMs_ = 0;
  int crashStreak_ = 0;
  uint64_t nextSpawnMs_ = 0;  // back-off: no spawn before this
  uint64_t lastStatusMs_ = 0;
  // --touch-reload: each file with the modification time last seen (nullopt: missing), looked
  // at about once a second; a change reloads.
  std::vector<std::pair<std::string, std::optional<int64_t>>> touched_;
  uint64_t lastTouchCheckMs_ = 0;
  int64_t gaugedWorkers_ = -1;  // --statsd-host: the worker count last reported
  event::TimerId tickTimer_{0, 0};
  SystemdNotifier systemd_;
  // Socket activation: what systemd passed (each descriptor moves to its listener; the
  // addresses stay, for the flags' binds at every reload).
  std::vector<PassedSocket> systemdSockets_;
  uint64_t lastHistoryMs_ = 0;                      // the status page's last history point
  std::unique_ptr<RequestMetrics> historyScratch_;  // the sum each point is taken from
  uint64_t readyGeneration_ = 0;  // the generation READY=1 was sent for (0: none since a reload)
};

}  // namespace portico::process
