#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/exchange.h"
#include "http/request.h"

namespace portico::http {

// Everything one access-log line may mention, gathered by the connection when a response ends.
struct AccessLogEntry {
  const Request* request = nullptr;
  const ConnectionInfo* connection = nullptr;
  int status = 0;
  uint64_t bodyBytesSent = 0;              // body bytes written (not headers)
  uint64_t bytesSent = 0;                  // head and body bytes ($bytes_sent)
  const std::vector<Header>* responseHeaders = nullptr;  // may be null
  std::time_t startTime = 0;               // wall clock when the request head was complete
  uint64_t durationMicros = 0;
};

// Formats access-log lines: nginx's `combined` by default, or a gunicorn --access-logformat
// string with %(h)s-style atoms. Immutable after construction; any thread.
class AccessLogFormatter {
 public:
  // Empty format → combined; `json`: one JSON object per line (--log-format json), the format
  // unused. Returns false from valid() with error() for a bad format.
  explicit AccessLogFormatter(std::string format = {}, bool json = false);
  bool valid() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  std::string format(const AccessLogEntry& entry) const;

 private:
  // The implementation may add any private members it needs.
  struct Compiled;  // the format parsed once into segments; defined in access_log.cpp
  std::string format_;
  std::string error_;
  std::shared_ptr<const Compiled> compiled_;
};

// The user of an `Authorization: Basic` header ($remote_user); nullopt when absent/malformed.
std::optional<std::string> basicAuthUser(const Request* request);
// "22/Nov/2026:13:16:46 +0000" in local time ($time_local), cached per thread per second.
std::string_view localTimeText(std::time_t t);

}  // namespace portico::http
