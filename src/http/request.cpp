#include "http/request.h"

namespace portico::http {

const std::string* Request::header(std::string_view name) const {
  for (const Header& h : headers) {
    if (iequals(h.name, name)) return &h.value;
  }
  return nullptr;
}

}  // namespace portico::http
