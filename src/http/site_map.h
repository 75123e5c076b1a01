#pragma once

// The HTTP model (config::HttpSite) compiled for lookups: which virtual server answers a
// connection's address and Host (nginx's server selection), and which location answers a URI
// (nginx's find-config phase, nested locations included). Pure and immutable once built; any
// thread. The content phase (pipeline::SiteHandler) attaches its per-location runtime by id.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/site.h"
#include "core/regex.h"
#include "http/exchange.h"

namespace portico::http {

// One location ready for matching; `id` indexes SiteMap::locations().
struct LocationNode {
  const config::Location* config = nullptr;
  std::optional<Regex> regex;        // for ~ and ~*
  std::vector<LocationNode> children;  // nested locations, file order
  size_t id = 0;
  // nginx's auto_redirect: a location whose content is an upstream's (wsgi_app; the content
  // module says, see SiteMap::build) and whose name ends in '/' answers its name without the
  // slash with a 301 to the slash form.
  bool autoRedirect = false;
};

// The outcome of location matching.
struct LocationMatch {
  const LocationNode* node = nullptr;  // null: no location matches (nginx: 404)
  Regex::Match captures;               // of the regex location that matched, if any
  bool hasCaptures = false;
  bool redirectToSlash = false;  // answer 301 to the URI plus '/' (auto_redirect)
};

// One `server` block ready for requests.
struct ServerNode {
  const config::VirtualServer* config = nullptr;
  size_t index = 0;
  std::vector<LocationNode> locations;
  std::map<std::string, const LocationNode*, std::less<>> named;  // "@name" → location
  std::string primaryName;  // $server_name: the first name ("" when none)
};

// The servers listening on one address:port (or unix path), with their names compiled.
class ServerGroup {
 public:
  // The normalized key: "0.0.0.0:80", "[::]:8080", "127.0.0.1:8000", "unix:/run/x.sock".
  std::string key;
  config::ListenSpec listen;     // the first `listen` written for this address
  bool wildcard = false;         // 0.0.0.0 or [::]
  std::vector<const ServerNode*> servers;
  const ServerNode* defaultServer = nullptr;

  // nginx's order: exact name, longest leading wildcard, longest trailing wildcard, first
  // matching regex (its captures go to `captures`), else the default server.
  const ServerNode* select(std::string_view host, Regex::Match* captures) const;

 private:
  friend class SiteMap;
  std::map<std::string, const ServerNode*, std::less<>> exact_;
  std::vector<std::pair<std::string, const ServerNode*>> heads_;  // ".example.com" → suffix
  std::vector<std::pair<std::string, const ServerNode*>> tails_;  // "www.example." → prefix
  std::vector<std::pair<Regex, const ServerNode*>> regexes_;
};

class SiteMap {
 public:
  // Whether a location's content sets nginx's auto_redirect (its content module decides).
  using AutoRedirect = std::function<bool(const config::LocationSettings& settings)>;

  // Compiles regexes and groups listens; nullptr with a message naming file:line when a regex
  // is invalid or a name is malformed. `autoRedirect` empty: no location auto-redirects.
  static std::unique_ptr<SiteMap> build(const config::HttpSite& site, std::string& error,
                                        const AutoRedirect& autoRedirect = {});

  const config::HttpSite& site() const { return *site_; }
  const std::vector<std::unique_ptr<ServerNode>>& servers() const { return servers_; }
  const std::vector<std::unique_ptr<ServerGroup>>& groups() const { return groups_; }
  // Every location of every server, by LocationNode::id.
  const std::vector<const LocationNode*>& locations() const { return locations_; }

  // The group serving a connection: the one for its exact local address, else the wildcard
  // of its port, else `fallback` (the group its listener was opened for).
  const ServerGroup* groupFor(const ConnectionInfo& local, const ServerGroup* fallback) const;
  const ServerGroup* groupByKey(std::string_view key) const;

  // nginx's location lookup for a normalized URI.
  static LocationMatch match(const ServerNode& server, std::string_view uri);
  static const LocationNode* named(const ServerNode& server, std::string_view name);

  // "0.0.0.0:80" etc. for a listen directive (see ServerGroup::key).
  static std::string listenKey(const config::ListenSpec& listen);

 private:
  const config::HttpSite* site_ = nullptr;
  std::vector<std::unique_ptr<ServerNode>> servers_;
  std::vector<std::unique_ptr<ServerGroup>> groups_;
  std::vector<const LocationNode*> locations_;
};

}  // namespace portico::http
