#include "http/router.h"

#include <algorithm>

namespace portico::http {

void Router::addPrefix(std::string prefix, Handler* handler) {
  routes_.push_back({std::move(prefix), handler});
  std::stable_sort(routes_.begin(), routes_.end(), [](const Route& a, const Route& b) {
    return a.prefix.size() > b.prefix.size();
  });
}

Handler* Router::route(std::string_view path) const {
  for (const auto& r : routes_) {
    if (path.substr(0, r.prefix.size()) == r.prefix) return r.handler;
  }
  return nullptr;
}

}  // namespace portico::http
