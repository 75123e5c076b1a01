#include "upstream/uwsgi_request.h"

#include "http/uwsgi_codec.h"

namespace portico::upstream {
namespace {

char lowerUnderscore(char c) {
  if (c >= 'A' && c <= 'Z') return static_cast<char>(c | 0x20);
  return c == '-' ? '_' : c;
}

bool replacedName(const std::vector<std::string>& replaced, std::string_view header) {
  for (const std::string& name : replaced) {
    if (name.size() != header.size()) continue;
    bool same = true;
    for (size_t i = 0; same && i < name.size(); ++i) same = name[i] == lowerUnderscore(header[i]);
    if (same) return true;
  }
  return false;
}

}  // namespace

std::string uwsgiHeaderKey(std::string_view headerName) {
  std::string key = "HTTP_";
  key.reserve(5 + headerName.size());
  for (char c : headerName) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c & ~0x20);
    else if (c == '-') c = '_';
    key += c;
  }
  return key;
}

bool buildUwsgiPacket(const std::vector<UwsgiVar>& params,
                      const std::vector<http::Header>* headers,
                      const std::vector<std::string>& replaced, uint8_t modifier1,
                      uint8_t modifier2, std::string& out, std::string& error) {
  std::string vars;
  uint64_t size = 0;  // what nginx counts, to say how big a refused packet was
  bool fits = true;
  auto add = [&](std::string_view key, std::string_view value) {
    size += 4 + key.size() + value.size();
    if (fits && !http::uwsgi::appendVar(vars, key, value)) fits = false;
  };
  for (const UwsgiVar& var : params) add(var.key, var.value);
  if (headers) {
    for (const http::Header& header : *headers) {
      if (replacedName(replaced, header.name)) continue;
      add(uwsgiHeaderKey(header.name), header.value);
    }
  }
  if (!fits || size > http::uwsgi::kMaxVarsSize) {
    error = "uwsgi request is too big: " + std::to_string(size);
    return false;
  }
  out.clear();
  out.reserve(http::uwsgi::kHeadSize + vars.size());
  out += static_cast<char>(modifier1);
  out += static_cast<char>(vars.size() & 0xff);
  out += static_cast<char>((vars.size() >> 8) & 0xff);
  out += static_cast<char>(modifier2);
  out += vars;
  return true;
}

bool UwsgiParams::compile(const std::vector<config::UwsgiParam>& params,
                          const std::vector<std::string>& captureNames,
                          const http::VariableRegistry* users, std::string& error) {
  for (const config::UwsgiParam& p : params) {
    // ngx_http_uwsgi_init_params: an HTTP_X param hides the header X; with an empty value it
    // only hides it.
    if (p.name.size() > 5 && p.name.compare(0, 5, "HTTP_") == 0) {
      std::string name;
      for (char c : std::string_view(p.name).substr(5)) {
        name += c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : c;  // as ngx_hash_init
      }
      replaced_.push_back(std::move(name));
      if (p.value.empty()) continue;
    }
    std::string message;
    auto t = http::Template::compile(p.value, message, captureNames, users);
    if (!t) {
      error = message;
      return false;
    }
    params_.push_back({p.name, std::move(*t), p.ifNotEmpty});
  }
  return true;
}

bool UwsgiParams::build(const std::function<std::string(const http::Template&)>& expand,
                        const std::vector<http::Header>* headers, uint8_t modifier1,
                        uint8_t modifier2, std::string& out, std::string& error) const {
  std::vector<UwsgiVar> vars;
  vars.reserve(params_.size());
  for (const Param& p : params_) {
    std::string value = p.value.constant() ? p.value.source() : expand(p.value);
    if (p.ifNotEmpty && value.empty()) continue;
    vars.push_back({p.name, std::move(value)});
  }
  return buildUwsgiPacket(vars, headers, replaced_, modifier1, modifier2, out, error);
}

}  // namespace portico::upstream
