#include "config/conf_module.h"

#include <algorithm>
#include <cctype>

#include "config/conf_values.h"
#include "core/regex.h"

namespace portico::config {

bool argsOk(Args rule, size_t n) {
  switch (rule) {
    case Args::kNone: return n == 0;
    case Args::k01: return n <= 1;
    case Args::k1: return n == 1;
    case Args::k2: return n == 2;
    case Args::k12: return n == 1 || n == 2;
    case Args::k23: return n == 2 || n == 3;
    case Args::k1More: return n >= 1;
    case Args::k2More: return n >= 2;
  }
  return false;
}

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string prefixedPath(const std::string& prefix, const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  return prefix + path;
}

std::string DirectiveCall::fullName(const std::string& path) const {
  return prefixedPath(prefix_, path);
}

std::string DirectiveCall::confName(const std::string& path) const {
  if (!path.empty() && path[0] == '/') return path;
  return confPrefix_ + path;
}

void DirectiveCall::emerg(const std::string& text) const {
  throw ConfFailure{confMessage("emerg", text, directive_.source)};
}

void DirectiveCall::directiveError(const std::string& text) const {
  emerg(quote(directive_.name) + " directive " + text);
}

void DirectiveCall::unsupported(const std::string& what) const {
  throw ConfRefusal{{confMessage("emerg", what + " is not supported by portico yet",
                                 directive_.source)}};
}

void DirectiveCall::warn(const std::string& text) const {
  messages_.push_back(confMessage("warn", text, directive_.source));
}

void DirectiveCall::noVariables(const std::string& value) const {
  if (value.find('$') != std::string::npos) {
    unsupported("a variable in the " + quote(directive_.name) + " directive");
  }
}

bool DirectiveCall::flag() const {
  const std::string& v = arg(0);
  if (iequals(v, "on")) return true;
  if (iequals(v, "off")) return false;
  emerg("invalid value " + quote(v) + " in " + quote(name()) +
        " directive, it must be \"on\" or \"off\"");
}

void DirectiveCall::setFlag(std::optional<bool>& slot) const {
  checkUnset(slot);
  slot = flag();
}

void DirectiveCall::setMsec(std::optional<double>& slot) const {
  checkUnset(slot);
  auto ms = parseNginxTime(arg(0), false);
  if (!ms) directiveError("invalid value");
  slot = static_cast<double>(*ms) / 1000.0;
}

void DirectiveCall::setSeconds(std::optional<int64_t>& slot) const {
  checkUnset(slot);
  auto s = parseNginxTime(arg(0), true);
  if (!s) directiveError("invalid value");
  slot = *s;
}

void DirectiveCall::setSize(std::optional<uint64_t>& slot, bool offset) const {
  checkUnset(slot);
  auto v = offset ? parseNginxOffset(arg(0)) : parseNginxSize(arg(0));
  if (!v) directiveError("invalid value");
  slot = static_cast<uint64_t>(*v);
}

void DirectiveCall::setString(std::optional<std::string>& slot) const {
  checkUnset(slot);
  slot = arg(0);
}

int64_t DirectiveCall::number(const std::string& text) const {
  auto v = parseNginxNumber(text);
  if (!v) directiveError("invalid number");
  return *v;
}

size_t DirectiveCall::enumValue(std::initializer_list<std::string_view> choices) const {
  size_t i = 0;
  for (std::string_view c : choices) {
    if (iequals(arg(0), c)) return i;
    ++i;
  }
  emerg("invalid value " + quote(arg(0)));
}

std::pair<int, int64_t> DirectiveCall::bufs() const {
  auto n = parseNginxNumber(arg(0));
  if (!n || *n == 0 || *n > 1 << 20) directiveError("invalid value");
  auto size = parseNginxSize(arg(1));
  if (!size || *size == 0) directiveError("invalid value");
  return {static_cast<int>(*n), *size};
}

void DirectiveCall::checkRegex(const std::string& pattern, bool caseless) const {
  std::string error;
  if (Regex::compile(pattern, caseless, error)) return;
  // Regex says "REASON at offset N"; nginx says `REASON in "PATTERN" at "REST"` (the "at"
  // part only when the offset is inside the pattern).
  std::string message = "pcre2_compile() failed: ";
  size_t at = error.rfind(" at offset ");
  std::string reason = at == std::string::npos ? error : error.substr(0, at);
  message += reason + " in " + quote(pattern);
  if (at != std::string::npos) {
    auto offset = parseNginxNumber(std::string_view(error).substr(at + 11));
    if (offset && static_cast<size_t>(*offset) < pattern.size()) {
      message += " at " + quote(pattern.substr(static_cast<size_t>(*offset)));
    }
  }
  emerg(message);
}

}  // namespace portico::config
