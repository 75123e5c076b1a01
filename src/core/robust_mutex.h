#pragma once

#include <pthread.h>

#include <cerrno>

namespace portico {

// Makes `*mutex` (in memory shared by the master and its workers) a process-shared robust mutex.
// Called once by whoever formats the shared region, before any worker can lock it.
inline void initRobustMutex(pthread_mutex_t* mutex) {
  pthread_mutexattr_t attr;
  ::pthread_mutexattr_init(&attr);
  ::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  ::pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  ::pthread_mutex_init(mutex, &attr);
  ::pthread_mutexattr_destroy(&attr);
}

// Holds a process-shared robust mutex for one scope, in whichever process and thread made it.
// When the previous owner died holding it, the lock returns EOWNERDEAD: the mutex is marked
// consistent and the caller goes on, so a crashed worker never wedges the others (the shared
// data is at worst off by the one operation the dead worker was doing, which its users accept).
class RobustLock {
 public:
  explicit RobustLock(pthread_mutex_t* mutex) : mutex_(mutex) {
    if (::pthread_mutex_lock(mutex_) == EOWNERDEAD) ::pthread_mutex_consistent(mutex_);
  }
  ~RobustLock() { ::pthread_mutex_unlock(mutex_); }
  RobustLock(const RobustLock&) = delete;
  RobustLock& operator=(const RobustLock&) = delete;

 private:
  pthread_mutex_t* mutex_;
};

}  // namespace portico
