#pragma once

#include <string>
#include <string_view>

namespace portico {

// `text` as a JSON string literal, quotes included: '"' and '\' escaped, control characters and
// bytes >= 0x7f as \u00XX (a byte that is not vouched-for UTF-8 becomes its Latin-1 code point,
// so the document stays valid for a strict parser). For the JSON error log and status page.
std::string jsonQuote(std::string_view text);

}  // namespace portico
