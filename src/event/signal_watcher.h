#pragma once

#include <signal.h>

#include <functional>

#include "core/unique_fd.h"
#include "event/event_loop.h"

namespace portico::event {

// The signals portico's processes handle themselves (through a signalfd, never a handler):
// TERM, QUIT, INT, USR1, HUP, TTIN, TTOU and CHLD. Blocked in every thread before any is
// started, so they can only arrive through the signalfd.
sigset_t handledSignals();
// Blocks handledSignals() in the calling thread (and every thread it starts afterwards).
void blockHandledSignals();

// Delivers handledSignals() to a callback on the loop thread through a signalfd. Owned by the
// process's composition root (master or worker); event-loop thread.
class SignalWatcher : public IoWatcher {
 public:
  SignalWatcher(EventLoop& loop, std::function<void(int)> onSignal);
  ~SignalWatcher() override;
  bool ok() const { return static_cast<bool>(fd_); }
  // In a forked child: the loop's epoll instance is shared with the parent, so the destructor
  // must not deregister from it (that would deregister the parent's watcher too).
  void forgetLoop() { registered_ = false; }
  void onIoEvent(uint32_t events) override;

 private:
  EventLoop& loop_;
  std::function<void(int)> onSignal_;
  UniqueFd fd_;
  bool registered_ = false;
};

}  // namespace portico::event
