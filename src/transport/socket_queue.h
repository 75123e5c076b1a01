#pragma once

#include <cstddef>

namespace portico::transport {

// Bytes a TCP socket has written but the peer has not yet acknowledged (SIOCOUTQ); 0 when it
// cannot be told.
size_t socketUnsentBytes(int fd);
// Of those, the bytes not yet transmitted even once (SIOCOUTQNSD): held back by the peer's
// closed window or congestion, not merely waiting for their acknowledgement.
size_t socketUntransmittedBytes(int fd);

}  // namespace portico::transport
