#pragma once

// The proxy_pass content (nginx's ngx_http_proxy_module over ngx_http_upstream): a location's
// ProxyHandler and the engine that runs one proxied request — non-blocking connect (TCP v4/v6,
// unix), the request sent with nginx's URI and header rules, the response read with the strict
// ResponseParser and relayed through the Exchange with backpressure, timeouts, retries over the
// upstream's peers (proxy_next_upstream) and 502/504 answers that go through error_page.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "event/event_loop.h"
#include "config/upstream.h"
#include "pipeline/content.h"

namespace portico::dns {
class Resolver;
}

namespace portico::upstream {

class Balancer;
class KeepalivePool;
class ProxyHandler;

// The proxy_pass content module, registered with the pipeline by the Server: claims the
// locations with proxy_pass and makes their handlers. Owned by the Server; loop thread.
class ProxyContentModule : public pipeline::ContentModule {
 public:
  explicit ProxyContentModule(event::EventLoop* loop);
  ~ProxyContentModule() override;
  bool claims(const config::LocationSettings& settings) const override;
  std::unique_ptr<pipeline::ContentHandler> create(const config::LocationSettings& settings,
                                                   std::string& error) override;
  // As nginx's proxy_pass: "/app" gets a 301 to a `location /app/ { proxy_pass ...; }`.
  bool autoRedirect() const override { return true; }
  // The site's upstreams (HttpSite::upstreams), which a location's proxy_pass names by index;
  // they outlive the module.
  void setUpstreams(const std::vector<config::UpstreamSpec>* upstreams) { upstreams_ = upstreams; }
  // The site's `resolver` lines (HttpSite::resolvers), which a location names by index; they
  // outlive the module.
  void setResolvers(const std::vector<config::ResolverSpec>* resolvers) {
    resolverSpecs_ = resolvers;
  }
  // This worker's resolver for the `resolver` line `index`, made on first use; null for -1 or
  // a line without servers.
  dns::Resolver* resolver(int index);
  void setVariables(const std::vector<std::string>& captureNames,
                    const http::VariableRegistry& users) override {
    captureNames_ = &captureNames;
    users_ = &users;
  }

 private:
  event::EventLoop* loop_;
  const std::vector<std::string>* captureNames_ = nullptr;
  const http::VariableRegistry* users_ = nullptr;
  const std::vector<config::UpstreamSpec>* upstreams_ = nullptr;
  // One pool of idle connections per upstream with `keepalive`, for this worker.
  std::map<const config::UpstreamSpec*, std::unique_ptr<KeepalivePool>> pools_;
  // One balancer per upstream (its peers' passive health), for this worker.
  std::map<const config::UpstreamSpec*, std::unique_ptr<Balancer>> balancers_;
  const std::vector<config::ResolverSpec>* resolverSpecs_ = nullptr;
  std::map<int, std::unique_ptr<dns::Resolver>> resolvers_;

  // proxy_pass with variables: the URL compiled, and every upstream's balancer and pool made
  // for the names it may select.
  bool createChoices(ProxyHandler& handler, std::string& error);
};

}  // namespace portico::upstream
