#include "upstream/variable_pass.h"

#include <arpa/inet.h>

#include <map>
#include <string_view>

#include "config/upstream_address.h"
#include "core/log.h"
#include "http/exchange.h"
#include "upstream/proxy_content.h"

namespace portico::upstream {
namespace {

bool startsWithCaseless(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && http::iequals(s.substr(0, prefix.size()), prefix);
}

// "1.2.3.4:80", "[::1]:80" (a literal address and a port: no resolver needed).
bool literalWithPort(std::string_view target) {
  std::string host;
  if (target.starts_with('[')) {
    size_t close = target.find(']');
    if (close == std::string_view::npos || close + 1 >= target.size() || target[close + 1] != ':') {
      return false;
    }
    host = std::string(target.substr(1, close - 1));
    in6_addr a6{};
    return ::inet_pton(AF_INET6, host.c_str(), &a6) == 1;
  }
  size_t colon = target.rfind(':');
  if (colon == std::string_view::npos) return false;
  host = std::string(target.substr(0, colon));
  in_addr a4{};
  return ::inet_pton(AF_INET, host.c_str(), &a4) == 1;
}

// Owned by the location's SiteHandler (made by ProxyContentModule::create); loop thread. The
// per-target handlers it keeps live as long as it does (their requests refer to them).
class VariablePassHandler final : public pipeline::ContentHandler {
 public:
  static constexpr size_t kMaxTargets = 64;

  VariablePassHandler(ProxyContentModule& module, const config::LocationSettings& settings,
                      http::Template target, const std::vector<config::UpstreamSpec>* upstreams)
      : module_(module), settings_(settings), target_(std::move(target)),
        upstreams_(upstreams) {}

  void handle(http::Exchange& exchange) override;
  bool readsBody() const override { return true; }
  bool upstream() const override { return true; }

 private:
  config::ProxyPass& pass(config::LocationSettings& s) {
    return s.uwsgi.pass ? *s.uwsgi.pass : *s.proxy.pass;
  }
  // The handler of `target`; null with `message` and the answer's `status` otherwise.
  pipeline::ContentHandler* handlerFor(const std::string& target, std::string& message,
                                       int& status);
  void fail(http::Exchange& exchange, const std::string& message, int status);

  ProxyContentModule& module_;
  config::LocationSettings settings_;
  http::Template target_;
  const std::vector<config::UpstreamSpec>* upstreams_;
  std::map<std::string, std::unique_ptr<pipeline::ContentHandler>> handlers_;
};

pipeline::ContentHandler* VariablePassHandler::handlerFor(const std::string& target,
                                                          std::string& message, int& status) {
  status = 502;
  config::LocationSettings s = settings_;
  config::ProxyPass& p = pass(s);
  p.variables = false;
  p.upstream = target;
  p.upstreamIndex = -1;
  if (upstreams_) {
    for (size_t i = 0; i < upstreams_->size(); ++i) {
      const config::UpstreamSpec& u = (*upstreams_)[i];
      if (!u.implicit && http::iequals(u.name, target)) p.upstreamIndex = static_cast<int>(i);
    }
  }
  // A block is kept under its index (however the name was spelled), an address as written.
  std::string key = p.upstreamIndex >= 0 ? "\n" + std::to_string(p.upstreamIndex) : target;
  auto found = handlers_.find(key);
  if (found != handlers_.end()) return found->second.get();
  if (p.upstreamIndex < 0) {
    bool unix = startsWithCaseless(target, "unix:");
    if (!unix && !literalWithPort(target)) {
      // nginx without `resolver`: a name that is no upstream block cannot be looked up.
      std::string_view host = target;
      host = host.substr(0, host.rfind(':') == std::string_view::npos ? host.size()
                                                                      : host.rfind(':'));
      message = "no resolver defined to resolve " + std::string(host);
      return nullptr;
    }
    if (handlers_.size() >= kMaxTargets + (upstreams_ ? upstreams_->size() : 0)) {
      message = "too many upstream addresses from variables (" + std::to_string(kMaxTargets) +
                "), \"" + target + "\" refused";
      return nullptr;
    }
    config::UpstreamServerSpec server;
    if (auto error = config::resolveUpstreamAddress(target, 0, server.addresses)) {
      message = *error;  // nginx: ngx_parse_url's refusal, a 500
      status = 500;
      return nullptr;
    }
    server.name = target;
    config::UpstreamSpec spec;
    spec.name = target;
    spec.implicit = true;
    spec.hostIsUnixPath = unix;
    spec.servers.push_back(std::move(server));
    p.implicit = std::move(spec);
    p.unixSocket = unix;
  }
  std::string error;
  std::unique_ptr<pipeline::ContentHandler> handler = module_.create(s, error);
  if (!handler) {
    message = error;
    status = 500;
    return nullptr;
  }
  return (handlers_[key] = std::move(handler)).get();
}

void VariablePassHandler::fail(http::Exchange& exchange, const std::string& message,
                               int status) {
  std::string line = message + exchange.errorContext();
  if (const std::string* host = exchange.request().header("Host")) {
    line += ", host: \"" + *host + "\"";
  }
  logError(line);
  http::ResponseHead head;
  head.status = status;
  head.special = true;
  head.gateway = status == 502;
  head.add("Content-Type", "text/html");
  std::string page = exchange.errorPage(status);
  exchange.respond(std::move(head), std::move(page));
}

void VariablePassHandler::handle(http::Exchange& exchange) {
  std::string target = exchange.expand(target_);
  if (settings_.uwsgi.pass) {
    if (startsWithCaseless(target, "uwsgi://")) {
      target.erase(0, 8);
    } else if (startsWithCaseless(target, "suwsgi://")) {
      fail(exchange, "suwsgi:// (uwsgi over TLS) is not supported by portico yet", 500);
      return;
    }
  }
  if (target.empty()) {
    fail(exchange, "no host in upstream \"\"", 500);  // nginx: ngx_parse_url's refusal
    return;
  }
  std::string message;
  int status = 502;
  pipeline::ContentHandler* handler = handlerFor(target, message, status);
  if (!handler) {
    fail(exchange, message, status);
    return;
  }
  handler->handle(exchange);
}

}  // namespace

std::unique_ptr<pipeline::ContentHandler> makeVariablePassHandler(
    ProxyContentModule& module, const config::LocationSettings& settings,
    const std::vector<std::string>* captureNames, const http::VariableRegistry* users,
    const std::vector<config::UpstreamSpec>* upstreams, std::string& error) {
  static const std::vector<std::string> kNone;
  const config::ProxyPass& p = settings.uwsgi.pass ? *settings.uwsgi.pass : *settings.proxy.pass;
  std::string message;
  auto target = http::Template::compile(p.upstream, message, captureNames ? *captureNames : kNone,
                                        users);
  if (!target) {
    error = message;
    return nullptr;
  }
  return std::make_unique<VariablePassHandler>(module, settings, std::move(*target), upstreams);
}

}  // namespace portico::upstream
