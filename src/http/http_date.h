#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace portico::http {

// IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 §5.6.7).
std::string formatHttpDate(std::time_t t);

// Parses IMF-fixdate, and the obsolete RFC 850 and asctime forms a recipient must accept;
// nullopt when the value is none of them.
std::optional<std::time_t> parseHttpDate(std::string_view value);

// The current time as an HTTP date, recomputed at most once a second (event-loop thread).
const std::string& cachedHttpDate(std::time_t now);

}  // namespace portico::http
