#pragma once

// ASCII case-insensitive comparisons, as nginx's ngx_strcasecmp: header names, tokens,
// directive words and URL schemes. Bytes outside A-Z compare as they are.

#include <cstddef>
#include <string_view>

namespace portico {

// Inline: header names are compared many times per request, most often with names of other
// lengths, which the first test settles.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

inline bool startsWithCaseless(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

}  // namespace portico
