#include "transport/socket_queue.h"

#include <linux/sockios.h>
#include <sys/ioctl.h>

namespace portico::transport {

size_t socketUnsentBytes(int fd) {
  int queued = 0;
  if (::ioctl(fd, SIOCOUTQ, &queued) != 0 || queued < 0) return 0;
  return static_cast<size_t>(queued);
}

size_t socketUntransmittedBytes(int fd) {
  int queued = 0;
  if (::ioctl(fd, SIOCOUTQNSD, &queued) != 0 || queued < 0) return 0;
  return static_cast<size_t>(queued);
}

}  // namespace portico::transport
