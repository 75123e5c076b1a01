#include "http/site_map.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace portico::http {

namespace {

std::string where(const config::SourceRef& source) {
  if (source.file.empty()) return {};
  return " in " + source.file + ":" + std::to_string(source.line);
}

// nginx's find-config result codes (ngx_http_core_find_location).
enum class Found { kDeclined, kAgain, kOk, kDone };

bool isPrefix(const config::Location& l) {
  return l.match == config::Location::Match::kPrefix ||
         l.match == config::Location::Match::kPrefixNoRegex;
}

bool isRegex(const config::Location& l) {
  return l.match == config::Location::Match::kRegex ||
         l.match == config::Location::Match::kRegexCaseless;
}

Found findIn(const std::vector<LocationNode>& level, std::string_view uri, LocationMatch& m) {
  // An exact location wins at once.
  for (const LocationNode& n : level) {
    if (n.config->match == config::Location::Match::kExact && n.config->pattern == uri) {
      m.node = &n;
      return Found::kOk;
    }
  }
  const LocationNode* best = nullptr;
  for (const LocationNode& n : level) {
    if (!isPrefix(*n.config)) continue;
    const std::string& p = n.config->pattern;
    if (uri.starts_with(p) && (!best || p.size() > best->config->pattern.size())) best = &n;
  }
  // "/app" against `location /app/ { wsgi_app ...; }`: 301 to "/app/" unless a location
  // names "/app" itself (the static tree reaches that node first).
  if (!best || best->config->pattern.size() != uri.size()) {
    for (const LocationNode& n : level) {
      const std::string& p = n.config->pattern;
      if (n.autoRedirect && p.size() == uri.size() + 1 && p.back() == '/' && p.starts_with(uri) &&
          (isPrefix(*n.config) || n.config->match == config::Location::Match::kExact)) {
        m.node = &n;
        m.redirectToSlash = true;
        return Found::kDone;
      }
    }
  }
  Found found = Found::kDeclined;
  if (best) {
    m.node = best;
    found = Found::kAgain;
    if (!best->children.empty()) {
      Found nested = findIn(best->children, uri, m);
      if (nested == Found::kOk || nested == Found::kDone) return nested;
    }
    if (best->config->match == config::Location::Match::kPrefixNoRegex) return found;
  }
  for (const LocationNode& n : level) {
    if (!isRegex(*n.config) || !n.regex) continue;
    Regex::Match captures;
    if (!n.regex->match(uri, captures)) continue;
    m.node = &n;
    m.captures = std::move(captures);
    m.hasCaptures = true;
    if (!n.children.empty()) findIn(n.children, uri, m);
    return Found::kOk;
  }
  return found;
}

bool compileLocations(const std::vector<config::Location>& in, std::vector<LocationNode>& out,
                      ServerNode& server, std::vector<const LocationNode*>& all,
                      const SiteMap::AutoRedirect& autoRedirect, std::string& error) {
  out.reserve(in.size());
  for (const config::Location& l : in) {
    LocationNode node;
    node.config = &l;
    if (isRegex(l)) {
      std::string message;
      node.regex = Regex::compile(l.pattern, l.match == config::Location::Match::kRegexCaseless,
                                  message);
      if (!node.regex) {
        error = "pcre2_compile() failed: " + message + " in \"" + l.pattern + "\"" +
                where(l.source);
        return false;
      }
    }
    node.autoRedirect = autoRedirect && autoRedirect(l.settings) && !l.pattern.empty() &&
                        l.pattern.back() == '/';
    if (!compileLocations(l.children, node.children, server, all, autoRedirect, error)) {
      return false;
    }
    out.push_back(std::move(node));
  }
  return true;
}

void indexLocations(std::vector<LocationNode>& nodes, ServerNode& server,
                    std::vector<const LocationNode*>& all) {
  for (LocationNode& n : nodes) {
    n.id = all.size();
    all.push_back(&n);
    if (n.config->match == config::Location::Match::kNamed) {
      server.named.emplace(n.config->pattern, &n);
    }
    indexLocations(n.children, server, all);
  }
}

std::string normalizeHost(std::string host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "*") return "0.0.0.0";
  if (host == "localhost") return "127.0.0.1";
  return host;
}

}  // namespace

std::string SiteMap::listenKey(const config::ListenSpec& listen) {
  if (listen.isUnix) return "unix:" + listen.path;
  std::string host = normalizeHost(listen.host);
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(listen.port);
}

std::unique_ptr<SiteMap> SiteMap::build(const config::HttpSite& site, std::string& error,
                                        const AutoRedirect& autoRedirect) {
  auto map = std::make_unique<SiteMap>();
  map->site_ = &site;
  for (size_t i = 0; i < site.servers.size(); ++i) {
    const config::VirtualServer& vs = site.servers[i];
    auto server = std::make_unique<ServerNode>();
    server->config = &vs;
    server->index = i;
    // nginx's cscf->server_name ($server_name, server_name_in_redirect): the first name as
    // written, a regex with its '~', a ".name" without the dot, others in lower case.
    if (!vs.serverNames.empty()) {
      std::string_view first = vs.serverNames.front();
      if (!first.starts_with('~')) {
        if (first.starts_with('.')) first.remove_prefix(1);
        for (char c : first) {
          server->primaryName.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c);
        }
      } else {
        server->primaryName = first;
      }
    }
    if (!compileLocations(vs.locations, server->locations, *server, map->locations_, autoRedirect,
                          error)) {
      return nullptr;
    }
    map->servers_.push_back(std::move(server));
  }
  // Ids are assigned once every vector is in place (the nodes no longer move).
  for (auto& server : map->servers_) indexLocations(server->locations, *server, map->locations_);

  for (auto& server : map->servers_) {
    std::vector<config::ListenSpec> listens = server->config->listens;
    if (listens.empty()) {
      config::ListenSpec def;  // nginx: *:80 when the server says nothing
      def.port = 80;
      def.spec = "*:80";
      listens.push_back(def);
    }
    for (const config::ListenSpec& listen : listens) {
      std::string key = listenKey(listen);
      ServerGroup* group = nullptr;
      for (auto& g : map->groups_) {
        if (g->key == key) group = g.get();
      }
      if (!group) {
        map->groups_.push_back(std::make_unique<ServerGroup>());
        group = map->groups_.back().get();
        group->key = key;
        group->listen = listen;
        std::string host = normalizeHost(listen.host);
        group->wildcard = !listen.isUnix && (host == "0.0.0.0" || host == "::");
      }
      if (std::find(group->servers.begin(), group->servers.end(), server.get()) ==
          group->servers.end()) {
        group->servers.push_back(server.get());
      }
      if (listen.defaultServer) {
        if (group->defaultServer && group->listen.defaultServer) {
          error = "a duplicate default server for " + listen.spec + where(listen.source);
          return nullptr;
        }
        group->defaultServer = server.get();
        group->listen.defaultServer = true;
      }
      if (listen.backlog >= 0) group->listen.backlog = listen.backlog;
      if (listen.reuseport) group->listen.reuseport = true;
    }
  }
  for (auto& group : map->groups_) {
    if (!group->defaultServer) group->defaultServer = group->servers.front();
    for (const ServerNode* server : group->servers) {
      for (const std::string& raw : server->config->serverNames) {
        if (!raw.empty() && raw[0] == '~') {
          std::string message;
          // As ngx_http_core_server_name: caseless when the pattern has an upper-case letter
          // (the host it is matched with is in lower case).
          bool upper = std::any_of(raw.begin(), raw.end(),
                                   [](char c) { return c >= 'A' && c <= 'Z'; });
          auto regex = Regex::compile(std::string_view(raw).substr(1), upper, message);
          if (!regex) {
            error = "pcre2_compile() failed: " + message + " in \"" + raw + "\"" +
                    where(server->config->source);
            return nullptr;
          }
          group->regexes_.emplace_back(std::move(*regex), server);
          continue;
        }
        std::string name;
        for (char c : raw) name.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c);
        if (name.starts_with("*.")) {
          group->heads_.emplace_back(name.substr(1), server);  // ".example.com"
        } else if (name.starts_with('.')) {
          group->heads_.emplace_back(name, server);
          group->exact_.emplace(name.substr(1), server);  // also example.com itself
        } else if (name.size() >= 2 && name.ends_with(".*")) {
          group->tails_.emplace_back(name.substr(0, name.size() - 1), server);  // "www.example."
        } else if (name.find('*') != std::string::npos) {
          error = "invalid server name or wildcard \"" + raw + "\"" +
                  where(server->config->source);
          return nullptr;
        } else {
          group->exact_.emplace(name, server);  // the first server with a name keeps it
        }
      }
    }
    // Longest wildcard first; stable, so the first written wins among equals.
    auto longer = [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); };
    std::stable_sort(group->heads_.begin(), group->heads_.end(), longer);
    std::stable_sort(group->tails_.begin(), group->tails_.end(), longer);
  }
  return map;
}

const ServerNode* ServerGroup::select(std::string_view host, Regex::Match* captures) const {
  if (auto it = exact_.find(host); it != exact_.end()) return it->second;
  if (!host.empty()) {
    for (const auto& [suffix, server] : heads_) {
      if (host.size() > suffix.size() && host.ends_with(suffix)) return server;
    }
    for (const auto& [prefix, server] : tails_) {
      if (host.size() > prefix.size() && host.starts_with(prefix)) return server;
    }
    for (const auto& [regex, server] : regexes_) {
      Regex::Match m;
      if (regex.match(host, m)) {
        if (captures) *captures = std::move(m);
        return server;
      }
    }
  }
  return defaultServer;
}

// Asked for every connection: the keys are put together in a buffer on the stack, not in strings.
const ServerGroup* SiteMap::groupFor(const ConnectionInfo& local,
                                     const ServerGroup* fallback) const {
  const std::string& address = local.localAddress;
  char buffer[128];
  if (address.size() + 16 > sizeof buffer) return fallback;  // no address is that long
  auto key = [&](std::string_view prefix, std::string_view host, bool brackets, bool port) {
    char* p = buffer;
    std::memcpy(p, prefix.data(), prefix.size());
    p += prefix.size();
    if (brackets) *p++ = '[';
    std::memcpy(p, host.data(), host.size());
    p += host.size();
    if (brackets) *p++ = ']';
    if (port) {
      *p++ = ':';
      p = std::to_chars(p, buffer + sizeof buffer, local.localPort).ptr;
    }
    return std::string_view(buffer, static_cast<size_t>(p - buffer));
  };
  if (local.isUnix) return groupByKey(key("unix:", address, false, false)) ?: fallback;
  const bool v6 = address.find(':') != std::string::npos;
  if (const ServerGroup* g = groupByKey(key("", address, v6, true))) return g;
  if (const ServerGroup* g = groupByKey(key("", v6 ? "::" : "0.0.0.0", v6, true))) return g;
  return fallback;
}

const ServerGroup* SiteMap::groupByKey(std::string_view key) const {
  for (const auto& g : groups_) {
    if (g->key == key) return g.get();
  }
  return nullptr;
}

LocationMatch SiteMap::match(const ServerNode& server, std::string_view uri) {
  LocationMatch m;
  findIn(server.locations, uri, m);
  return m;
}

const LocationNode* SiteMap::named(const ServerNode& server, std::string_view name) {
  auto it = server.named.find(name);
  return it == server.named.end() ? nullptr : it->second;
}

}  // namespace portico::http
