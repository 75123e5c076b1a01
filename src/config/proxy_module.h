#pragma once

// nginx's ngx_http_proxy_module as portico implements it: proxy_pass and the proxy_* settings
// the upstream engine (src/upstream/) applies, what each level wrote, the merge parent → child
// (proxy_pass is never inherited; proxy_set_header, proxy_hide_header and proxy_pass_header are
// inherited whole by a level that sets none), and the location's ProxySettings. The proxy_*
// directives not in this table stay refused as "not supported by portico yet".

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/conf_module.h"
#include "config/proxy_ssl_conf.h"
#include "config/site.h"
#include "config/upstream_module.h"

namespace portico::config {

// What one level wrote; unset fields inherit from the enclosing level.
struct ProxyPartial {
  std::optional<ProxyPass> pass;
  std::optional<std::vector<std::pair<std::string, std::string>>> setHeaders;
  std::optional<int> httpVersionMinor;
  std::optional<double> connectTimeout, readTimeout, sendTimeout, nextUpstreamTimeout;
  std::optional<bool> passRequestHeaders, passRequestBody, buffering, requestBuffering;
  std::optional<std::string> setBody, method;
  std::optional<uint64_t> bufferSize;
  std::optional<std::pair<int, int64_t>> buffers;
  std::optional<std::vector<std::string>> hideHeaders, passHeaders;
  std::optional<unsigned> nextUpstream;
  std::optional<int64_t> nextUpstreamTries;
  // proxy_busy_buffers_size, proxy_temp_file_write_size, proxy_max_temp_file_size (their
  // defaults depend on the merged buffer sizes: computed by finishProxy)
  std::optional<uint64_t> busyBuffersSize, tempFileWriteSize, maxTempFileSize;
  std::optional<uint64_t> limitRate;  // proxy_limit_rate
  // proxy_redirect: nginx's plcf->redirect (false after `off`) and the rules of this level.
  std::optional<bool> redirect;
  std::optional<std::vector<ProxyRewriteRule>> redirects;
  std::optional<bool> interceptErrors;
  std::optional<unsigned> ignoreHeaders;
  // proxy_cookie_domain / _path: an empty vector is `off` (nginx's NULL), unset inherits.
  std::optional<std::vector<ProxyRewriteRule>> cookieDomains, cookiePaths;
  std::optional<std::vector<ProxyCookieFlags>> cookieFlags;  // empty after `off`
  std::optional<std::string> bind;  // "" for `proxy_bind off`
  ProxySslPartial ssl;  // proxy_ssl_* (config/proxy_ssl_conf.h)
};

const std::vector<ModuleDirective<ProxyPartial>>& proxyDirectives();
// proxy_pass, which names an upstream (the load's upstream list).
const std::vector<ModuleLoadDirective<ProxyPartial, UpstreamLoad>>& proxyPassDirectives();

void mergeProxy(ProxyPartial& child, const ProxyPartial& parent);

// proxy_next_upstream / uwsgi_next_upstream (`uwsgi`: nginx's uwsgi masks and its `off`).
void parseNextUpstream(const DirectiveCall& call, ProxyPartial& level, bool uwsgi);

// The location's settings; `pass` only where proxy_pass is written.
void finishProxy(const ProxyPartial& level, ProxySettings& settings);

// nginx 1.22's ngx_http_proxy_merge_loc_conf checks of a level's finished buffer sizes ("there
// must be at least 2 \"proxy_buffers\"", proxy_busy_buffers_size, proxy_temp_file_write_size,
// proxy_max_temp_file_size against proxy_buffer_size and proxy_buffers): a ConfFailure reported
// at `at` (the http block's closing brace, where nginx merges).
void checkProxyBuffers(const ProxySettings& settings, const SourceRef& at,
                       std::string_view module = "proxy");

}  // namespace portico::config
