#include "event/signal_watcher.h"

#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/log.h"

namespace portico::event {

sigset_t handledSignals() {
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGTERM, SIGQUIT, SIGINT, SIGUSR1, SIGHUP, SIGTTIN, SIGTTOU, SIGCHLD}) {
    sigaddset(&mask, s);
  }
  return mask;
}

void blockHandledSignals() {
  sigset_t mask = handledSignals();
  ::pthread_sigmask(SIG_BLOCK, &mask, nullptr);
}

SignalWatcher::SignalWatcher(EventLoop& loop, std::function<void(int)> onSignal)
    : loop_(loop), onSignal_(std::move(onSignal)) {
  sigset_t mask = handledSignals();
  fd_ = UniqueFd(::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd_) {
    logCritical(std::string("signalfd: ") + std::strerror(errno));
    return;
  }
  if (!loop_.add(fd_.get(), EPOLLIN, this)) {
    logCritical(std::string("epoll_ctl(signalfd): ") + std::strerror(errno));
    fd_.reset();
    return;
  }
  registered_ = true;
}

SignalWatcher::~SignalWatcher() {
  if (registered_) loop_.remove(fd_.get());
}

void SignalWatcher::onIoEvent(uint32_t) {
  signalfd_siginfo info;
  while (::read(fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    onSignal_(static_cast<int>(info.ssi_signo));
  }
}

}  // namespace portico::event
