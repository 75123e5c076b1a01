#include "http/variables.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <functional>

#include "http/access_log.h"
#include "http/rewrite.h"
#include "http/stub_status.h"
#include "transport/tls_variables.h"

namespace portico::http {

enum class Template::Kind : uint8_t {
  kLiteral,
  kProxyHost,
  kProxyPort,
  kProxyAddXForwardedFor,
  kUpstreamAddr,
  kUpstreamStatus,
  kUpstreamResponseTime,
  kUpstreamConnectTime,
  kUpstreamHeaderTime,
  kUpstreamResponseLength,
  kUpstreamHttp,
  kUri,
  kRequestUri,
  kArgs,
  kIsArgs,
  kArg,
  kHost,
  kHostname,
  kPid,
  kServerName,
  kServerPort,
  kServerAddr,
  kServerProtocol,
  kScheme,
  kHttps,
  kRemoteAddr,
  kRemotePort,
  kRemoteUser,
  kRealipRemoteAddr,
  kRealipRemotePort,
  kProxyProtocolAddr,
  kProxyProtocolPort,
  kProxyProtocolServerAddr,
  kProxyProtocolServerPort,
  kConnectionsActive,
  kConnectionsReading,
  kConnectionsWriting,
  kConnectionsWaiting,
  kRequestMethod,
  kRequest,
  kDocumentRoot,
  kRealpathRoot,
  kRequestFilename,
  kHttp,
  kSentHttp,
  kSentTrailer,
  kCookie,
  kContentType,
  kContentLength,
  kStatus,
  kBodyBytesSent,
  kBytesSent,
  kRequestTime,
  kTimeLocal,
  kTimeIso8601,
  kMsec,
  kRequestLength,
  kPipe,
  kConnection,
  kConnectionRequests,
  kConnectionTime,
  kSsl,  // $ssl_NAME: transport/tls_variables (NAME in text)
  kBinaryRemoteAddr,
  kLimitReqStatus,
  kLimitConnStatus,
  kCapture,       // $1..$9
  kNamedCapture,  // (?<name>...)
  kUser,          // `set` / `map` variables (index into the VariableRegistry)
  kUpstreamBytesSent,
  kUpstreamBytesReceived,
  kUpstreamCookie,  // $upstream_cookie_NAME: a cookie the upstream's Set-Cookie lines set
  kRequestBody,     // $request_body: what the upstream engine read into memory
  kRequestBodyFile, // $request_body_file: the temp file it read the body into
  kLimitRate,       // $limit_rate
};

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// $http_user_agent names "User-Agent": '_' stands for '-', case does not matter.
bool headerNameMatches(std::string_view header, std::string_view variable) {
  if (header.size() != variable.size()) return false;
  for (size_t i = 0; i < header.size(); ++i) {
    char h = header[i] == '-' ? '_' : lower(header[i]);
    if (h != lower(variable[i])) return false;
  }
  return true;
}

// The value of argument `name` in `args` ("a=1&b=2"), case-insensitively as nginx's
// ngx_http_arg; nullopt when absent.
std::optional<std::string_view> findArg(std::string_view args, std::string_view name) {
  while (!args.empty()) {
    size_t amp = args.find('&');
    std::string_view pair = args.substr(0, amp);
    args = amp == std::string_view::npos ? std::string_view() : args.substr(amp + 1);
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    if (key.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < key.size() && same; ++i) same = lower(key[i]) == lower(name[i]);
    if (same) return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
  }
  return std::nullopt;
}

std::optional<std::string_view> findCookie(const Request& request, std::string_view name) {
  for (const Header& header : request.headers) {
    if (!iequals(header.name, "Cookie")) continue;
    std::string_view list = header.value;
    while (!list.empty()) {
      size_t semi = list.find(';');
      std::string_view pair = list.substr(0, semi);
      list = semi == std::string_view::npos ? std::string_view() : list.substr(semi + 1);
      while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
      size_t eq = pair.find('=');
      if (eq == std::string_view::npos) continue;
      if (iequals(pair.substr(0, eq), name)) return pair.substr(eq + 1);
    }
  }
  return std::nullopt;
}

void appendEscaped(std::string& out, std::string_view value, VariableEscape escape) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : value) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (escape == VariableEscape::kDefault) {
      if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) {
        out += "\\x";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
      } else {
        out.push_back(ch);
      }
    } else {  // JSON, as nginx's escape=json
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (c < 0x20) {
            out += "\\u00";
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 15]);
          } else {
            out.push_back(ch);
          }
      }
    }
  }
}

}  // namespace

std::vector<std::string> captureNamesOf(const config::HttpSite& site) {
  std::vector<std::string> names;
  auto add = [&](const std::string& pattern) {
    for (std::string_view open : {"(?<", "(?P<", "(?'"}) {
      for (size_t i = pattern.find(open); i != std::string::npos; i = pattern.find(open, i + 1)) {
        size_t start = i + open.size();
        size_t end = pattern.find_first_of(">'", start);
        if (end == std::string::npos) break;
        std::string name = pattern.substr(start, end - start);
        // "(?<=" and "(?<!" are lookbehinds, not names.
        if (!name.empty() && name[0] != '=' && name[0] != '!') names.push_back(std::move(name));
      }
    }
  };
  // The rewrite module's regexes (rewrite, if) and the map module's.
  std::function<void(const std::vector<config::RewriteStep>&)> addSteps =
      [&](const std::vector<config::RewriteStep>& steps) {
        for (const config::RewriteStep& step : steps) {
          if (!step.regex.empty()) add(step.regex);
          if (step.condition == config::RewriteStep::Condition::kMatch ||
              step.condition == config::RewriteStep::Condition::kNotMatch) {
            add(step.operand);
          }
          addSteps(step.body);
        }
      };
  for (const config::MapSpec& map : site.maps) {
    for (const config::MapSpec::Entry& entry : map.entries) {
      if (entry.regex) add(entry.key);
    }
  }
  std::vector<const config::Location*> stack;
  for (const config::VirtualServer& server : site.servers) {
    for (const std::string& name : server.serverNames) {
      if (name.starts_with('~')) add(name);
    }
    addSteps(server.settings.rewrites);
    for (const config::Location& l : server.locations) stack.push_back(&l);
  }
  while (!stack.empty()) {
    const config::Location* l = stack.back();
    stack.pop_back();
    if (l->match == config::Location::Match::kRegex ||
        l->match == config::Location::Match::kRegexCaseless) {
      add(l->pattern);
    }
    addSteps(l->settings.rewrites);
    for (const config::Location& child : l->children) stack.push_back(&child);
  }
  return names;
}

bool validateTemplates(const config::HttpSite& site, std::string& error) {
  const std::vector<std::string> names = captureNamesOf(site);
  VariableRegistry users;  // `set` and `map` variables
  std::vector<std::unique_ptr<VariableProducer>> maps;
  if (!buildUserVariables(site, names, users, maps, error)) return false;
  auto check = [&](const std::string& text, const config::SourceRef& source) {
    std::string message;
    if (Template::compile(text, message, names, &users)) return true;
    error = message;
    if (!source.file.empty()) error += " in " + source.file + ":" + std::to_string(source.line);
    return false;
  };
  std::function<bool(const config::LocationSettings&, const config::SourceRef&)> checkSettings =
      [&](const config::LocationSettings& s, const config::SourceRef& source) {
    const config::SourceRef& directory =
        s.directorySource.file.empty() ? source : s.directorySource;
    if (!check(s.root, directory)) return false;
    if (s.alias && !check(*s.alias, directory)) return false;
    if (!RewriteProgram::compile(s.rewrites, names, &users, error)) return false;
    for (const config::RewriteStep& step : s.rewrites) {  // the implicit locations of `if`
      if (step.ifSettings && !checkSettings(*step.ifSettings, step.source)) return false;
    }
    if (s.tryFiles) {
      for (const std::string& f : s.tryFiles->files) {
        if (!check(f, source)) return false;
      }
      if (!check(s.tryFiles->fallback, source)) return false;
    }
    for (const config::AddHeader& h : s.addHeaders) {
      if (!check(h.value, source)) return false;
    }
    for (const std::string& index : s.index) {
      if (!check(index, source)) return false;
    }
    for (const config::ErrorPage& p : s.errorPages) {
      if (!check(p.uri, source)) return false;
    }
    for (const config::AccessLogSpec& log : s.accessLogs) {
      if (log.pathVariables && !check(log.path, source)) return false;
      if (!log.condition.empty() && !check(log.condition, source)) return false;
    }
    if (s.access.authBasic && !check(*s.access.authBasic, source)) return false;
    if (s.access.authBasicUserFile && !check(*s.access.authBasicUserFile, source)) return false;
    return true;
  };
  for (const config::LimitZoneSpec& zone : site.limitZones) {
    if (!check(zone.key, zone.source)) return false;
  }
  for (const auto& [name, format] : site.logFormats) {
    if (!check(format.format, {})) {
      error += " in log_format \"" + name + "\"";
      return false;
    }
  }
  std::vector<const config::Location*> stack;
  for (const config::VirtualServer& server : site.servers) {
    if (!checkSettings(server.settings, server.source)) return false;
    for (const config::Location& l : server.locations) stack.push_back(&l);
  }
  while (!stack.empty()) {
    const config::Location* l = stack.back();
    stack.pop_back();
    if (!checkSettings(l->settings, l->source)) return false;
    for (const config::Location& child : l->children) stack.push_back(&child);
  }
  return true;
}

std::optional<std::string> validateHost(std::string_view host) {
  // Written by index into a buffer of the input's size (at most one byte per input byte):
  // push_back's capacity checks were most of the cost on every request.
  std::string out(host.size(), '\0');
  size_t n = 0;
  size_t dotPos = host.size();
  size_t hostLength = host.size();
  enum { kUsual, kLiteral, kRest } state = kUsual;
  for (size_t i = 0; i < host.size(); ++i) {
    char c = host[i];
    switch (c) {
      case '.':
        if (dotPos + 1 == i) return std::nullopt;
        dotPos = i;
        break;
      case ':':
        if (state == kUsual) {
          hostLength = i;
          state = kRest;
        }
        break;
      case '[':
        if (i == 0) state = kLiteral;
        break;
      case ']':
        if (state == kLiteral) {
          hostLength = i + 1;
          state = kRest;
        }
        break;
      case '\0':
        return std::nullopt;
      default:
        if (c == '/' || c == '\\') return std::nullopt;
        break;
    }
    if (state == kUsual || state == kLiteral) out[n++] = lower(c);
    if (state == kRest && i + 1 == hostLength) out[n++] = lower(c);  // the ']' itself
  }
  out.resize(std::min(n, hostLength));
  if (dotPos + 1 == hostLength && hostLength > 0 && !out.empty() && out.back() == '.') {
    out.pop_back();
  }
  if (out.empty()) return std::nullopt;
  return out;
}

const std::string& machineHostname() {
  static const std::string name = [] {
    char buffer[HOST_NAME_MAX + 1] = {};
    if (::gethostname(buffer, sizeof buffer - 1) != 0) return std::string("localhost");
    return std::string(buffer);
  }();
  return name;
}

bool Template::isBuiltin(std::string_view name) {
  std::string error;
  std::optional<Template> t = compile("${" + std::string(name) + "}", error);
  if (!t || t->parts_.size() != 1) return false;
  Kind kind = t->parts_[0].kind;
  return kind != Kind::kHttp && kind != Kind::kSentHttp && kind != Kind::kSentTrailer &&
         kind != Kind::kCookie &&
         kind != Kind::kArg && kind != Kind::kCapture;
}

std::optional<Template> Template::compile(std::string_view text, std::string& error,
                                          const std::vector<std::string>& captureNames,
                                          const VariableRegistry* users) {
  static const std::pair<std::string_view, Kind> kSimple[] = {
      {"uri", Kind::kUri},
      {"document_uri", Kind::kUri},
      {"request_uri", Kind::kRequestUri},
      {"args", Kind::kArgs},
      {"query_string", Kind::kArgs},
      {"is_args", Kind::kIsArgs},
      {"host", Kind::kHost},
      {"hostname", Kind::kHostname},
      {"pid", Kind::kPid},
      {"server_name", Kind::kServerName},
      {"server_port", Kind::kServerPort},
      {"server_addr", Kind::kServerAddr},
      {"server_protocol", Kind::kServerProtocol},
      {"scheme", Kind::kScheme},
      {"https", Kind::kHttps},
      {"remote_addr", Kind::kRemoteAddr},
      {"binary_remote_addr", Kind::kBinaryRemoteAddr},
      {"limit_req_status", Kind::kLimitReqStatus},
      {"limit_conn_status", Kind::kLimitConnStatus},
      {"remote_port", Kind::kRemotePort},
      {"remote_user", Kind::kRemoteUser},
      {"realip_remote_addr", Kind::kRealipRemoteAddr},
      {"realip_remote_port", Kind::kRealipRemotePort},
      {"proxy_protocol_addr", Kind::kProxyProtocolAddr},
      {"proxy_protocol_port", Kind::kProxyProtocolPort},
      {"proxy_protocol_server_addr", Kind::kProxyProtocolServerAddr},
      {"proxy_protocol_server_port", Kind::kProxyProtocolServerPort},
      {"connections_active", Kind::kConnectionsActive},
      {"connections_reading", Kind::kConnectionsReading},
      {"connections_writing", Kind::kConnectionsWriting},
      {"connections_waiting", Kind::kConnectionsWaiting},
      {"request_method", Kind::kRequestMethod},
      {"request", Kind::kRequest},
      {"document_root", Kind::kDocumentRoot},
      {"realpath_root", Kind::kRealpathRoot},
      {"request_filename", Kind::kRequestFilename},
      {"content_type", Kind::kContentType},
      {"content_length", Kind::kContentLength},
      {"status", Kind::kStatus},
      {"body_bytes_sent", Kind::kBodyBytesSent},
      {"bytes_sent", Kind::kBytesSent},
      {"request_time", Kind::kRequestTime},
      {"time_local", Kind::kTimeLocal},
      {"time_iso8601", Kind::kTimeIso8601},
      {"msec", Kind::kMsec},
      {"request_length", Kind::kRequestLength},
      {"pipe", Kind::kPipe},
      {"connection", Kind::kConnection},
      {"connection_requests", Kind::kConnectionRequests},
      {"connection_time", Kind::kConnectionTime},
      {"proxy_host", Kind::kProxyHost},
      {"proxy_port", Kind::kProxyPort},
      {"proxy_add_x_forwarded_for", Kind::kProxyAddXForwardedFor},
      {"upstream_addr", Kind::kUpstreamAddr},
      {"upstream_status", Kind::kUpstreamStatus},
      {"upstream_response_time", Kind::kUpstreamResponseTime},
      {"upstream_connect_time", Kind::kUpstreamConnectTime},
      {"upstream_header_time", Kind::kUpstreamHeaderTime},
      {"upstream_response_length", Kind::kUpstreamResponseLength},
      {"upstream_bytes_sent", Kind::kUpstreamBytesSent},
      {"upstream_bytes_received", Kind::kUpstreamBytesReceived},
      {"request_body", Kind::kRequestBody},
      {"request_body_file", Kind::kRequestBodyFile},
      {"limit_rate", Kind::kLimitRate},
  };
  static const std::pair<std::string_view, Kind> kPrefixed[] = {
      {"http_", Kind::kHttp},
      {"sent_http_", Kind::kSentHttp},
      {"sent_trailer_", Kind::kSentTrailer},
      {"cookie_", Kind::kCookie},
      {"arg_", Kind::kArg},
      {"upstream_http_", Kind::kUpstreamHttp},
      {"upstream_cookie_", Kind::kUpstreamCookie},
  };
  Template t;
  t.source_ = std::string(text);
  std::string literal;
  auto flush = [&] {
    if (!literal.empty()) t.parts_.push_back({Kind::kLiteral, std::move(literal), 0});
    literal.clear();
  };
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '$') {
      literal.push_back(text[i++]);
      continue;
    }
    ++i;
    std::string name;
    if (i < text.size() && text[i] == '{') {
      size_t close = text.find('}', i);
      if (close == std::string_view::npos) {
        error = "the closing bracket in \"" + std::string(text.substr(i + 1)) +
                "\" variable is missing";
        return std::nullopt;
      }
      name = std::string(text.substr(i + 1, close - i - 1));
      i = close + 1;
    } else if (i < text.size() && text[i] >= '1' && text[i] <= '9') {
      name = std::string(1, text[i++]);  // $1..$9: one digit, as nginx
    } else {
      while (i < text.size() && isNameChar(text[i])) name.push_back(text[i++]);
    }
    if (name.empty()) {
      error = "invalid variable name in \"" + std::string(text) + "\"";
      return std::nullopt;
    }
    flush();
    t.constant_ = false;
    if (name.size() == 1 && name[0] >= '0' && name[0] <= '9') {
      t.parts_.push_back({Kind::kCapture, {}, name[0] - '0'});
      continue;
    }
    std::string lowered;
    for (char c : name) lowered.push_back(lower(c));
    bool found = false;
    for (const auto& [n, kind] : kSimple) {
      if (lowered == n) {
        t.parts_.push_back({kind, {}, 0});
        found = true;
        break;
      }
    }
    if (!found && lowered.starts_with("ssl_") &&
        transport::isTlsVariable(std::string_view(lowered).substr(4))) {
      t.parts_.push_back({Kind::kSsl, lowered.substr(4), 0});
      found = true;
    }
    if (!found && users) {
      int index = users->find(name);
      if (index >= 0) {
        t.parts_.push_back({Kind::kUser, name, index});
        found = true;
      }
    }
    for (const auto& [prefix, kind] : kPrefixed) {
      if (found) break;
      if (lowered.size() >= prefix.size() && lowered.starts_with(prefix)) {
        t.parts_.push_back({kind, lowered.substr(prefix.size()), 0});
        found = true;
      }
    }
    for (const std::string& capture : captureNames) {
      if (found) break;
      if (capture == name) {
        t.parts_.push_back({Kind::kNamedCapture, name, 0});
        found = true;
      }
    }
    if (!found) {
      error = "unknown \"" + name + "\" variable";
      return std::nullopt;
    }
  }
  flush();
  return t;
}

std::string Template::expand(const VariableContext& c, VariableEscape escape) const {
  if (constant_) return parts_.empty() ? std::string() : parts_.front().text;
  std::string out;
  for (const Part& part : parts_) {
    if (part.kind == Kind::kLiteral) {
      out += part.text;
      continue;
    }
    const Request* r = c.request;
    const ConnectionInfo* conn = c.connection;
    std::optional<std::string> value;
    switch (part.kind) {
      case Kind::kLiteral:
        break;
      case Kind::kUri:
        value = std::string(c.uri);
        break;
      case Kind::kProxyHost:
        if (c.upstream) value = c.upstream->proxyHost;
        break;
      case Kind::kProxyPort:
        if (c.upstream) value = c.upstream->proxyPort;
        break;
      case Kind::kProxyAddXForwardedFor: {
        // The client's X-Forwarded-For lines, then its address (ngx_http_proxy_add_x_forwarded_for).
        std::string address;
        if (conn) address = conn->isUnix && conn->peerAddress.empty() ? "unix:" : conn->peerAddress;
        std::string joined;
        if (r) {
          for (const Header& h : r->headers) {
            if (!iequals(h.name, "X-Forwarded-For")) continue;
            if (!joined.empty()) joined += ", ";
            joined += h.value;
          }
        }
        value = joined.empty() ? address : joined + ", " + address;
        break;
      }
      case Kind::kUpstreamAddr:
        if (c.upstream && !c.upstream->addr.empty()) value = c.upstream->addr;
        break;
      case Kind::kUpstreamStatus:
        if (c.upstream && !c.upstream->status.empty()) value = c.upstream->status;
        break;
      case Kind::kUpstreamResponseTime:
        if (c.upstream && !c.upstream->responseTime.empty()) value = c.upstream->responseTime;
        break;
      case Kind::kUpstreamConnectTime:
        if (c.upstream && !c.upstream->connectTime.empty()) value = c.upstream->connectTime;
        break;
      case Kind::kUpstreamHeaderTime:
        if (c.upstream && !c.upstream->headerTime.empty()) value = c.upstream->headerTime;
        break;
      case Kind::kUpstreamResponseLength:
        if (c.upstream && !c.upstream->responseLength.empty()) value = c.upstream->responseLength;
        break;
      case Kind::kUpstreamBytesSent:
        if (c.upstream && !c.upstream->bytesSent.empty()) value = c.upstream->bytesSent;
        break;
      case Kind::kUpstreamBytesReceived:
        if (c.upstream && !c.upstream->bytesReceived.empty()) value = c.upstream->bytesReceived;
        break;
      case Kind::kRequestBody:
        if (c.upstream && c.upstream->requestBody) value = *c.upstream->requestBody;
        break;
      case Kind::kRequestBodyFile:
        if (c.upstream) value = c.upstream->requestBodyFile;
        break;
      case Kind::kLimitRate:
        value = std::to_string(c.limitRate);
        break;
      case Kind::kUpstreamCookie:
        // ngx_http_parse_set_cookie_lines: a Set-Cookie line that begins with NAME (caseless),
        // then '=' (spaces around it skipped), the value up to ';' less its trailing spaces;
        // the line's attributes are not cookies.
        if (c.upstream) {
          for (const Header& h : c.upstream->headers) {
            if (!iequals(h.name, "Set-Cookie")) continue;
            std::string_view line = h.value;
            while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
            if (line.size() < part.text.size() ||
                !iequals(line.substr(0, part.text.size()), part.text)) {
              continue;
            }
            line.remove_prefix(part.text.size());
            while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
            if (line.empty() || line.front() != '=') continue;
            line.remove_prefix(1);
            while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
            line = line.substr(0, line.find(';'));
            while (!line.empty() && line.back() == ' ') line.remove_suffix(1);
            value = std::string(line);
            break;
          }
        }
        break;
      case Kind::kUpstreamHttp:
        if (c.upstream) {
          for (const Header& h : c.upstream->headers) {
            if (headerNameMatches(h.name, part.text)) {
              value = h.value;
              break;
            }
          }
        }
        break;
      case Kind::kRequestUri:
        if (r) {
          // As received; an absolute-form target loses its scheme and authority.
          std::string_view target = r->target;
          if (!target.starts_with('/')) {
            size_t scheme = target.find("://");
            size_t slash = scheme == std::string_view::npos ? 0 : target.find('/', scheme + 3);
            target = slash == std::string_view::npos ? std::string_view("/")
                                                     : target.substr(slash);
          }
          value = std::string(target);
        }
        break;
      case Kind::kArgs:
        if (!c.args.empty()) value = std::string(c.args);
        break;
      case Kind::kIsArgs:
        value = c.args.empty() ? std::string() : std::string("?");
        break;
      case Kind::kArg:
        // $arg_ (no name) is known and always empty, as nginx's ngx_http_arg finds nothing.
        if (part.text.empty()) break;
        if (auto v = findArg(c.args, part.text)) value = std::string(*v);
        break;
      case Kind::kHost:
        value = std::string(c.host.empty() ? c.serverName : c.host);
        break;
      case Kind::kHostname:
        value = c.hostname.empty() ? machineHostname() : std::string(c.hostname);
        break;
      case Kind::kPid:  // the worker's, as nginx's ngx_pid
        value = std::to_string(::getpid());
        break;
      case Kind::kServerName:
        value = std::string(c.serverName);
        break;
      case Kind::kServerPort:
        if (conn && !conn->isUnix) value = std::to_string(conn->localPort);
        break;
      case Kind::kServerAddr:
        if (conn) value = conn->isUnix ? std::string("unix:") : conn->localAddress;
        break;
      case Kind::kServerProtocol:
        if (r) value = std::string(r->versionString());
        break;
      case Kind::kScheme:
        value = conn && !conn->scheme.empty() ? conn->scheme : std::string("http");
        break;
      case Kind::kSsl:
        if (conn) value = transport::tlsVariable(conn->tls, part.text);
        break;
      case Kind::kHttps:  // "on" over TLS, else empty (nginx)
        if (conn && conn->scheme == "https") value = "on";
        break;
      case Kind::kRemoteAddr:
        // A unix client has no address, unless realip gave it one.
        if (conn) value = conn->isUnix && conn->peerAddress.empty() ? std::string("unix:")
                                                                   : conn->peerAddress;
        break;
      case Kind::kBinaryRemoteAddr:
        // The address's 4 or 16 bytes (a unix peer: "unix:", unless realip or a uwsgi front
        // server named its client), as nginx's.
        if (conn) {
          unsigned char raw[16];
          if (conn->isUnix && conn->peerAddress.empty()) {
            value = std::string("unix:");
          } else if (::inet_pton(AF_INET, conn->peerAddress.c_str(), raw) == 1) {
            value = std::string(reinterpret_cast<char*>(raw), 4);
          } else if (::inet_pton(AF_INET6, conn->peerAddress.c_str(), raw) == 1) {
            value = std::string(reinterpret_cast<char*>(raw), 16);
          }
        }
        break;
      case Kind::kLimitReqStatus:
        if (!c.limitReqStatus.empty()) value = std::string(c.limitReqStatus);
        break;
      case Kind::kLimitConnStatus:
        if (!c.limitConnStatus.empty()) value = std::string(c.limitConnStatus);
        break;
      case Kind::kRemotePort:
        // Port 0: realip took an address without a port (nginx prints nothing).
        if (conn && conn->peerPort != 0) value = std::to_string(conn->peerPort);
        break;
      case Kind::kConnectionsActive:
      case Kind::kConnectionsReading:
      case Kind::kConnectionsWriting:
      case Kind::kConnectionsWaiting: {
        ConnectionCounters counters = readConnectionCounters();
        value = std::to_string(part.kind == Kind::kConnectionsActive    ? counters.active
                               : part.kind == Kind::kConnectionsReading ? counters.reading
                               : part.kind == Kind::kConnectionsWriting ? counters.writing
                                                                        : counters.waiting);
        break;
      }
      case Kind::kRealipRemoteAddr:
      case Kind::kRealipRemotePort: {
        const ConnectionInfo* original = c.realipConnection ? c.realipConnection : conn;
        if (!original) break;
        if (part.kind == Kind::kRealipRemoteAddr) {
          value = original->isUnix ? std::string("unix:") : original->peerAddress;
        } else if (!original->isUnix && original->peerPort != 0) {
          value = std::to_string(original->peerPort);
        }
        break;
      }
      case Kind::kProxyProtocolAddr:
        if (conn) value = conn->proxyProtocolAddress;
        break;
      case Kind::kProxyProtocolServerAddr:
        if (conn) value = conn->proxyProtocolServerAddress;
        break;
      case Kind::kProxyProtocolPort:
      case Kind::kProxyProtocolServerPort: {
        // nginx prints a port only when it is 1..65535.
        uint16_t port = !conn ? 0
                        : part.kind == Kind::kProxyProtocolPort ? conn->proxyProtocolPort
                                                                 : conn->proxyProtocolServerPort;
        if (port != 0) value = std::to_string(port);
        break;
      }
      case Kind::kRemoteUser:
        value = basicAuthUser(r);
        break;
      case Kind::kRequestMethod:
        if (r) value = r->method;
        break;
      case Kind::kRequest:
        if (r) value = r->method + " " + r->target + " " + std::string(r->versionString());
        break;
      case Kind::kDocumentRoot:
        value = std::string(c.documentRoot);
        break;
      case Kind::kRequestFilename:
        if (c.requestFilename) value = c.requestFilename(c.uri);
        break;
      case Kind::kRealpathRoot: {
        std::string root(c.documentRoot);
        char resolved[PATH_MAX];
        if (!root.empty() && ::realpath(root.c_str(), resolved) != nullptr) value = resolved;
        break;
      }
      case Kind::kHttp:
        if (r) {
          bool joined = part.text == "cookie" || part.text == "x_forwarded_for";
          for (const Header& h : r->headers) {
            if (!headerNameMatches(h.name, part.text)) continue;
            if (!value) {
              value = h.value;
              if (!joined) break;
            } else {
              *value += part.text == "cookie" ? "; " : ", ";
              *value += h.value;
            }
          }
        }
        break;
      case Kind::kSentTrailer:
        // nginx's ngx_http_variable_unknown_header over the trailers added so far.
        if (c.responseTrailers) {
          for (const Header& h : *c.responseTrailers) {
            if (headerNameMatches(h.name, part.text)) {
              value = h.value;
              break;
            }
          }
        }
        break;
      case Kind::kSentHttp:
        if (c.responseHeaders) {
          // nginx 1.22 joins the lines of Cache-Control and Link (", "); other names give
          // their first line.
          bool joined = headerNameMatches("cache-control", part.text) ||
                        headerNameMatches("link", part.text);
          for (const Header& h : *c.responseHeaders) {
            if (!headerNameMatches(h.name, part.text)) continue;
            if (!value) {
              value = h.value;
              if (!joined) break;
            } else {
              *value += ", ";
              *value += h.value;
            }
          }
        }
        // The session writes Connection itself; nginx's $sent_http_connection says "upgrade"
        // for a 101 (ngx_http_variable_sent_connection).
        if (!value && c.status == 101 && headerNameMatches("connection", part.text)) {
          value = "upgrade";
        }
        break;
      case Kind::kCookie:
        if (r) {
          if (auto v = findCookie(*r, part.text)) value = std::string(*v);
        }
        break;
      case Kind::kContentType:
        if (r) {
          if (const std::string* v = r->header("Content-Type")) value = *v;
        }
        break;
      case Kind::kContentLength:
        if (r) {
          if (const std::string* v = r->header("Content-Length")) value = *v;
        }
        if (!value && c.upstream && !c.upstream->requestBodyLength.empty()) {
          value = c.upstream->requestBodyLength;  // a chunked body, once read (nginx)
        }
        break;
      case Kind::kStatus: {
        char buffer[8];
        std::snprintf(buffer, sizeof buffer, "%03d", c.status);
        value = buffer;
        break;
      }
      case Kind::kBodyBytesSent:
        value = std::to_string(c.bodyBytesSent);
        break;
      case Kind::kBytesSent:
        value = std::to_string(c.bytesSent);
        break;
      case Kind::kRequestTime: {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%llu.%03llu",
                      static_cast<unsigned long long>(c.durationMicros / 1000000),
                      static_cast<unsigned long long>((c.durationMicros / 1000) % 1000));
        value = buffer;
        break;
      }
      case Kind::kTimeLocal:
        value = std::string(localTimeText(std::time(nullptr)));
        break;
      case Kind::kTimeIso8601: {
        std::time_t now = std::time(nullptr);
        std::tm tm{};
        localtime_r(&now, &tm);
        long offset = tm.tm_gmtoff / 60;
        char sign = offset < 0 ? '-' : '+';
        if (offset < 0) offset = -offset;
        char buffer[96];
        std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld",
                      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                      tm.tm_sec, sign, offset / 60, offset % 60);
        value = buffer;
        break;
      }
      case Kind::kMsec: {
        timeval tv{};
        ::gettimeofday(&tv, nullptr);
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%lld.%03ld", static_cast<long long>(tv.tv_sec),
                      static_cast<long>(tv.tv_usec / 1000));
        value = buffer;
        break;
      }
      case Kind::kRequestLength:
        if (conn) value = std::to_string(conn->requestLength);
        break;
      case Kind::kPipe:
        value = conn && conn->pipelined ? std::string("p") : std::string(".");
        break;
      case Kind::kConnection:
        if (conn) value = std::to_string(conn->number);
        break;
      case Kind::kConnectionRequests:
        if (conn) value = std::to_string(conn->requests);
        break;
      case Kind::kConnectionTime:
        if (conn) {
          timespec ts{};
          ::clock_gettime(CLOCK_MONOTONIC, &ts);
          uint64_t now =
              static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
          uint64_t age = now > conn->openedMicros ? now - conn->openedMicros : 0;
          char buffer[32];
          std::snprintf(buffer, sizeof buffer, "%llu.%03llu",
                        static_cast<unsigned long long>(age / 1000000),
                        static_cast<unsigned long long>((age / 1000) % 1000));
          value = buffer;
        }
        break;
      case Kind::kCapture:
        if (c.captures && part.index < static_cast<int>(c.captures->groups.size())) {
          value = c.captures->groups[static_cast<size_t>(part.index)];
        } else {
          value = std::string();
        }
        break;
      case Kind::kUser:
        if (c.users) value = c.users->get(part.index, c);
        break;
      case Kind::kNamedCapture:
        value = std::string();
        if (c.captures) {
          for (const auto& [n, v] : c.captures->named) {
            if (n == part.text) value = v;
          }
        }
        break;
    }
    if (escape == VariableEscape::kNone) {
      if (value) out += *value;
    } else if (!value) {
      if (escape == VariableEscape::kDefault) out.push_back('-');
    } else {
      appendEscaped(out, *value, escape);
    }
  }
  return out;
}

}  // namespace portico::http
