#include "http/user_variables.h"

#include "core/log.h"
#include "http/variables.h"

namespace portico::http {

namespace {
constexpr int kMaxDepth = 100;  // nginx's ngx_http_variable_depth
}

namespace {
// nginx's variable names are case-insensitive (ngx_http_add_variable lower-cases them).
std::string lowered(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}
}  // namespace

int VariableRegistry::add(std::string_view name) {
  int existing = find(name);
  if (existing >= 0) return existing;
  names_.push_back(lowered(name));
  producers_.push_back(nullptr);
  return static_cast<int>(names_.size() - 1);
}

int VariableRegistry::find(std::string_view name) const {
  std::string key = lowered(name);
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == key) return static_cast<int>(i);
  }
  return -1;
}

std::optional<std::string> UserVariableStore::get(int index, const VariableContext& context) {
  auto slot = static_cast<size_t>(index);
  if (values_[slot]) return values_[slot];
  const VariableProducer* producer = registry_.producer(index);
  if (!producer) {
    if (context.warnUninitialized) {
      logWarning("using uninitialized \"" + registry_.name(index) + "\" variable");
    }
    return std::string();
  }
  if (depth_ >= kMaxDepth) {
    logError("cycle while evaluating variable \"" + registry_.name(index) + "\"");
    return std::nullopt;
  }
  ++depth_;
  std::string value = producer->evaluate(context);
  --depth_;
  if (!producer->isVolatile()) values_[slot] = value;
  return value;
}

}  // namespace portico::http
