#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/exchange.h"

namespace portico::http {

// Maps a normalized request path to the handler of the longest matching prefix (nginx's prefix
// locations). Built once by the composition root, then read-only; any thread.
class Router {
 public:
  void addPrefix(std::string prefix, Handler* handler);
  // The handler for `path`, or nullptr when no prefix matches.
  Handler* route(std::string_view path) const;

 private:
  struct Route {
    std::string prefix;
    Handler* handler;
  };
  std::vector<Route> routes_;  // longest prefix first
};

}  // namespace portico::http
