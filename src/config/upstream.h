#pragma once

// The upstream part of the configuration model: nginx's `upstream {}` blocks and the implicit
// upstream a `proxy_pass http://host:port` / `uwsgi_pass host:port` names (ngx_http_upstream).
// Filled by the upstream module of the file (upstream_module.cpp) and by the proxy/uwsgi modules
// for implicit upstreams; read by the upstream engine (src/upstream/).

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

namespace portico::config {

// One resolved address of an upstream server (a TCP v4/v6 address or a unix socket path), with
// the text nginx shows for it in $upstream_addr ("127.0.0.1:8081", "[::1]:8081",
// "unix:/tmp/app.sock").
struct UpstreamAddress {
  sockaddr_storage addr{};
  socklen_t length = 0;
  std::string text;
};

// One `server` line of an upstream block (or the one address of an implicit upstream). A name
// that resolves to several addresses is several peers with these parameters, as in nginx.
struct UpstreamServerSpec {
  std::string name;                  // as written ("backend:8000", "unix:/tmp/app.sock")
  std::vector<UpstreamAddress> addresses;  // resolved at load (getaddrinfo), in resolver order
  int weight = 1;
  int maxFails = 1;                  // max_fails=; 0 = never marked failed
  int failTimeoutSeconds = 10;       // fail_timeout=
  int maxConns = 0;                  // max_conns=; 0 = unlimited
  bool backup = false;
  bool down = false;
  std::string file;                  // where it was written, for messages
  int line = 0;
};

// One `upstream NAME {}` block, or an implicit upstream (`implicit`: made from a *_pass address,
// named by its host as nginx's uscf->host — "127.0.0.1", "backend", or a unix socket's path —
// with its port apart; its one server line, filled at the end of http, uses the defaults).
struct UpstreamSpec {
  enum class Method { kRoundRobin, kLeastConn, kIpHash, kHash };
  std::string name;
  bool implicit = false;
  std::vector<UpstreamServerSpec> servers;
  Method method = Method::kRoundRobin;
  std::string hashKey;               // `hash KEY`: a template with variables (nginx's complex value)
  bool hashConsistent = false;       // `hash KEY consistent` (ketama)
  // `keepalive N` (0: no cached connections), keepalive_requests, keepalive_timeout (ms).
  int keepalive = 0;
  uint64_t keepaliveRequests = 1000;
  uint64_t keepaliveTimeoutMs = 60000;
  uint64_t keepaliveTimeMs = 3600000;  // keepalive_time: a cached connection's whole life
  // An implicit upstream's port as the *_pass wrote it (0: none written and no default, nginx's
  // "no port in upstream"); `hostIsUnixPath`: name is a unix socket path.
  uint16_t port = 0;
  bool noPort = false;               // the *_pass wrote no port (an upstream block may take it)
  bool hostIsUnixPath = false;
  std::string file;                  // where the block (or the *_pass) was written
  int line = 0;
};

// One `resolver ADDRESS... [valid=TIME] [ipv4=on|off] [ipv6=on|off]` line: the name servers
// (resolved at load, port 53 unless written) and how answers are used.
struct ResolverSpec {
  std::vector<UpstreamAddress> servers;
  uint32_t validSeconds = 0;  // valid=: 0 keeps the answers' TTL
  bool ipv4 = true;
  bool ipv6 = true;
  std::string file;
  int line = 0;
};

}  // namespace portico::config
