#pragma once

#include <cstddef>

namespace portico::transport {

// Bytes a TCP socket has written but the peer has not yet acknowledged (SIOCOUTQ); 0 when it
// cannot be told.
size_t socketUnsentBytes(int fd);

}  // namespace portico::transport
