#include "http/access_log.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>

namespace portico::http {
namespace {

// What one segment of a compiled format prints.
enum class Atom : uint8_t {
  kLiteral,         // text as is
  kConstant,        // text, escaped (unknown atoms, '-', environment captured at startup)
  kRemoteAddr,      // h, $remote_addr
  kRemoteUser,      // u, $remote_user: the HTTP Basic user, else '-'
  kTimeBracketed,   // t: [22/Nov/2026:13:16:46 +0000]
  kTimeLocal,       // $time_local: 22/Nov/2026:13:16:46 +0000
  kRequestLine,     // r, $request
  kMethod,          // m
  kPath,            // U: the decoded path, without the query
  kQuery,           // q
  kProtocol,        // H
  kStatus,          // s, $status
  kBytes,           // B, b, $body_bytes_sent
  kSeconds,         // T
  kMillis,          // M
  kMicros,          // D
  kDecimalSeconds,  // L
  kPid,             // p: <1234>
  kRequestHeader,   // {name}i; text = the lower-case name
  kResponseHeader,  // {name}o
  kCgiVariable,     // {name}e for the WSGI/CGI variables gunicorn puts in its environ
};

enum class Escape : uint8_t {
  kNone,
  kNginx,     // nginx's log escaping: '"', '\' and bytes outside 0x20..0x7e as \xHH
  kGunicorn,  // gunicorn's '"' → \" plus control bytes as \xHH, so no value can end a line
  kJson,      // a JSON string's content: '"', '\', control bytes and bytes >= 0x7f as \u00XX
};

// One piece of the format: a literal or an atom with Python %-format width/precision.
struct Segment {
  Atom atom = Atom::kLiteral;
  Escape escape = Escape::kNone;
  std::string text;
  int width = 0;
  int precision = -1;  // %.Ns truncates strings
  bool leftAlign = false;
  bool zeroPad = false;
  bool repr = false;  // %r / %a: Python repr() of strings, in single quotes
};

constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr char kHex[] = "0123456789ABCDEF";

char asciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (asciiLower(a[i]) != asciiLower(b[i])) return false;
  }
  return true;
}

std::string lowerCase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = asciiLower(c);
  return out;
}

// gunicorn builds its atoms with a dict, so a repeated header reports its last value.
const std::string* lastHeader(const std::vector<Header>* headers, std::string_view name) {
  if (headers == nullptr) return nullptr;
  for (auto it = headers->rbegin(); it != headers->rend(); ++it) {
    if (equalsIgnoreCase(it->name, name)) return &it->value;
  }
  return nullptr;
}

// Per-byte lookup tables: the check runs over every logged byte.
struct EscapeTables {
  bool nginx[256] = {};
  bool gunicorn[256] = {};
  bool json[256] = {};
  constexpr EscapeTables() {
    for (int c = 0; c < 256; ++c) {
      nginx[c] = c == '"' || c == '\\' || c < 0x20 || c >= 0x7f;
      gunicorn[c] = c == '"' || c < 0x20 || c == 0x7f;
      json[c] = nginx[c];
    }
  }
};
constexpr EscapeTables kEscapeTables;

bool needsEscape(unsigned char c, Escape escape) {
  switch (escape) {
    case Escape::kNone:
      return false;
    case Escape::kNginx:
      return kEscapeTables.nginx[c];
    case Escape::kGunicorn:
      return kEscapeTables.gunicorn[c];
    case Escape::kJson:
      return kEscapeTables.json[c];
  }
  return false;
}

const bool* escapeTable(Escape escape) {
  switch (escape) {
    case Escape::kNginx: return kEscapeTables.nginx;
    case Escape::kJson: return kEscapeTables.json;
    default: return kEscapeTables.gunicorn;
  }
}

void appendEscaped(std::string& out, std::string_view value, Escape escape) {
  if (escape == Escape::kNone) {
    out += value;
    return;
  }
  size_t start = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    auto c = static_cast<unsigned char>(value[i]);
    if (!needsEscape(c, escape)) continue;
    out.append(value.data() + start, i - start);
    start = i + 1;
    if (escape == Escape::kGunicorn && c == '"') {
      out += "\\\"";
    } else if (escape == Escape::kJson) {
      // Bytes >= 0x80 are not vouched-for UTF-8: each is its Latin-1 code point.
      char buf[7] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else {
        out.append(buf, 6);
      }
    } else {
      char buf[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
      out.append(buf, 4);
    }
  }
  out.append(value.data() + start, value.size() - start);
}

int decodeBase64Char(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

// The user name of an `Authorization: Basic` header, as nginx's $remote_user and gunicorn's
// %(u)s report it (neither checks the password); nullopt when absent or malformed.
std::optional<std::string> basicAuthUser(const Request* request) {
  if (request == nullptr) return std::nullopt;
  const std::string* header = lastHeader(&request->headers, "authorization");
  if (header == nullptr) return std::nullopt;
  std::string_view value = *header;
  if (value.size() < 6 || !equalsIgnoreCase(value.substr(0, 5), "basic") || value[5] != ' ') {
    return std::nullopt;
  }
  value.remove_prefix(6);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  std::string decoded;
  uint32_t bits = 0;
  int bitCount = 0;
  size_t padding = 0;
  for (char c : value) {
    if (c == '=') {
      ++padding;
      continue;
    }
    int v = decodeBase64Char(c);
    if (v < 0 || padding > 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    bitCount += 6;
    if (bitCount >= 8) {
      bitCount -= 8;
      decoded += static_cast<char>((bits >> bitCount) & 0xff);
    }
  }
  if ((value.size() % 4) != 0 || padding > 2) return std::nullopt;
  size_t colon = decoded.find(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  decoded.resize(colon);
  return decoded;
}

// "22/Nov/2026:13:16:46 +0000" in local time, as nginx's $time_local and gunicorn's %(t)s.
// Cached per thread for the last second, since a busy server logs many lines per second.
std::string_view localTimeText(std::time_t t) {
  thread_local std::time_t cachedTime = -1;
  thread_local char cached[32];
  thread_local size_t cachedSize = 0;
  if (t != cachedTime || cachedSize == 0) {
    std::tm tm{};
    if (localtime_r(&t, &tm) == nullptr) return "01/Jan/1970:00:00:00 +0000";
    long offset = tm.tm_gmtoff / 60;
    char sign = offset < 0 ? '-' : '+';
    if (offset < 0) offset = -offset;
    int n = std::snprintf(cached, sizeof cached, "%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld",
                          tm.tm_mday, kMonths[tm.tm_mon % 12].data(), tm.tm_year + 1900, tm.tm_hour,
                          tm.tm_min, tm.tm_sec, sign, offset / 60, offset % 60);
    cachedSize = n > 0 ? static_cast<size_t>(n) : 0;
    cachedTime = t;
  }
  return {cached, cachedSize};
}

namespace {

void appendNumber(std::string& out, uint64_t value) {
  char buf[24];
  auto result = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, result.ptr);
}

// The WSGI environ variable `name` (lower case) that gunicorn would log for {name}e.
std::optional<std::string> cgiVariable(std::string_view name, const AccessLogEntry& entry) {
  const Request* request = entry.request;
  const ConnectionInfo* connection = entry.connection;
  if (connection != nullptr) {
    // A unix client has no address, unless a front server named one (uwsgi, realip).
    if (name == "remote_addr") return connection->peerAddress;
    if (name == "remote_port") return std::to_string(connection->peerPort);
    if (name == "server_port") return std::to_string(connection->localPort);
    if (name == "wsgi.url_scheme") return connection->scheme;
  }
  if (request == nullptr) return std::nullopt;
  if (name == "request_method") return request->method;
  if (name == "raw_uri") return request->target;
  if (name == "path_info") return request->path;
  if (name == "query_string") return request->query;
  if (name == "script_name") return std::string();
  if (name == "server_protocol") return std::string(request->versionString());
  if (name == "server_name") {
    std::string_view host = request->host;
    if (!host.empty() && host.front() != '[') host = host.substr(0, host.find(':'));
    return std::string(host);
  }
  const std::string* header = nullptr;
  if (name == "content_type") header = lastHeader(&request->headers, "content-type");
  if (name == "content_length") header = lastHeader(&request->headers, "content-length");
  if (name.starts_with("http_")) {
    std::string headerName(name.substr(5));
    for (char& c : headerName) c = c == '_' ? '-' : c;
    header = lastHeader(&request->headers, headerName);
  }
  if (header != nullptr) return *header;
  return std::nullopt;
}

bool isCgiName(std::string_view name) {
  constexpr std::string_view kNames[] = {
      "remote_addr", "remote_port",  "server_port",   "wsgi.url_scheme", "request_method",
      "raw_uri",     "path_info",    "query_string",  "script_name",     "server_protocol",
      "server_name", "content_type", "content_length"};
  for (auto known : kNames) {
    if (name == known) return true;
  }
  return name.starts_with("http_");
}

// Maps a %(key)s key to its segment, as gunicorn's SafeAtoms does: plain keys are case
// sensitive, {…} keys are not, and anything unknown prints '-'.
Segment atomSegment(std::string_view key) {
  Segment seg;
  seg.escape = Escape::kGunicorn;
  if (key.size() == 1) {
    switch (key[0]) {
      case 'h':
        seg.atom = Atom::kRemoteAddr;
        return seg;
      case 'l':
        seg.atom = Atom::kConstant;
        seg.text = "-";
        return seg;
      case 'u':
        seg.atom = Atom::kRemoteUser;
        return seg;
      case 't':
        seg.atom = Atom::kTimeBracketed;
        return seg;
      case 'r':
        seg.atom = Atom::kRequestLine;
        return seg;
      case 'm':
        seg.atom = Atom::kMethod;
        return seg;
      case 'U':
        seg.atom = Atom::kPath;
        return seg;
      case 'q':
        seg.atom = Atom::kQuery;
        return seg;
      case 'H':
        seg.atom = Atom::kProtocol;
        return seg;
      case 's':
        seg.atom = Atom::kStatus;
        return seg;
      case 'B':
        seg.atom = Atom::kBytes;
        return seg;
      // gunicorn's b is "-" only when nothing was ever counted; its counter starts at 0, so in
      // practice it prints the number, 0 included.
      case 'b':
        seg.atom = Atom::kBytes;
        return seg;
      case 'f':
        seg.atom = Atom::kRequestHeader;
        seg.text = "referer";
        return seg;
      case 'a':
        seg.atom = Atom::kRequestHeader;
        seg.text = "user-agent";
        return seg;
      case 'T':
        seg.atom = Atom::kSeconds;
        return seg;
      case 'M':
        seg.atom = Atom::kMillis;
        return seg;
      case 'D':
        seg.atom = Atom::kMicros;
        return seg;
      case 'L':
        seg.atom = Atom::kDecimalSeconds;
        return seg;
      case 'p':
        seg.atom = Atom::kPid;
        return seg;
      default:
        break;
    }
  }
  if (key.size() >= 3 && key.front() == '{') {
    size_t close = key.find('}');
    if (close != std::string_view::npos && close + 2 == key.size()) {
      std::string name = lowerCase(key.substr(1, close - 1));
      switch (asciiLower(key.back())) {
        case 'i':
          seg.atom = Atom::kRequestHeader;
          seg.text = std::move(name);
          return seg;
        case 'o':
          seg.atom = Atom::kResponseHeader;
          seg.text = std::move(name);
          return seg;
        case 'e':
          if (isCgiName(name)) {
            seg.atom = Atom::kCgiVariable;
            seg.text = std::move(name);
            return seg;
          }
          // Otherwise the process environment, read once here: it does not change per request
          // and getenv is not safe against a concurrent setenv.
          {
            std::string original(key.substr(1, close - 1));
            const char* value = std::getenv(original.c_str());
            if (value == nullptr) value = std::getenv(lowerCase(original).c_str());
            if (value == nullptr) {
              std::string upper = original;
              for (char& c : upper) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
              value = std::getenv(upper.c_str());
            }
            seg.atom = Atom::kConstant;
            seg.text = value != nullptr ? value : "-";
            return seg;
          }
        default:
          break;
      }
    }
  }
  seg.atom = Atom::kConstant;
  seg.text = "-";
  return seg;
}

}  // namespace

struct AccessLogFormatter::Compiled {
  std::vector<Segment> segments;
  size_t literalBytes = 0;  // for reserve()
};

namespace {

// nginx's predefined `combined` format.
std::vector<Segment> combinedSegments() {
  std::vector<Segment> segs;
  auto literal = [&](std::string_view text) {
    segs.push_back({Atom::kLiteral, Escape::kNone, std::string(text)});
  };
  auto atom = [&](Atom a, std::string_view text = {}) {
    segs.push_back({a, Escape::kNginx, std::string(text)});
  };
  atom(Atom::kRemoteAddr);
  literal(" - ");
  atom(Atom::kRemoteUser);
  literal(" [");
  atom(Atom::kTimeLocal);
  literal("] \"");
  atom(Atom::kRequestLine);
  literal("\" ");
  atom(Atom::kStatus);
  literal(" ");
  atom(Atom::kBytes);
  literal(" \"");
  atom(Atom::kRequestHeader, "referer");
  literal("\" \"");
  atom(Atom::kRequestHeader, "user-agent");
  literal("\"");
  return segs;
}

// portico's JSON access log (--log-format json): one object per line, the combined format's
// fields plus the method, path, query, protocol and request time; strings escaped for JSON.
std::vector<Segment> jsonSegments() {
  std::vector<Segment> segs;
  auto literal = [&](std::string_view text) {
    segs.push_back({Atom::kLiteral, Escape::kNone, std::string(text)});
  };
  auto field = [&](std::string_view key, Atom a, bool quoted, std::string_view text = {}) {
    literal(std::string(segs.empty() ? "{\"" : ",\"") + std::string(key) + (quoted ? "\":\"" : "\":"));
    segs.push_back({a, quoted ? Escape::kJson : Escape::kNone, std::string(text)});
    if (quoted) literal("\"");
  };
  field("time_local", Atom::kTimeLocal, true);
  field("remote_addr", Atom::kRemoteAddr, true);
  field("remote_user", Atom::kRemoteUser, true);
  field("request", Atom::kRequestLine, true);
  field("method", Atom::kMethod, true);
  field("path", Atom::kPath, true);
  field("query", Atom::kQuery, true);
  field("protocol", Atom::kProtocol, true);
  field("status", Atom::kStatus, false);
  field("body_bytes_sent", Atom::kBytes, false);
  field("request_time", Atom::kDecimalSeconds, false);
  field("referer", Atom::kRequestHeader, true, "referer");
  field("user_agent", Atom::kRequestHeader, true, "user-agent");
  literal("}");
  return segs;
}

// Python's `format % mapping` grammar: %(key)[flags][width][.precision][length]conversion.
// Returns an error message, or empty on success.
std::string compileGunicorn(std::string_view format, std::vector<Segment>& segs) {
  std::string literal;
  auto flushLiteral = [&] {
    if (!literal.empty()) {
      segs.push_back({Atom::kLiteral, Escape::kNone, std::move(literal)});
      literal.clear();
    }
  };
  size_t i = 0;
  while (i < format.size()) {
    char c = format[i];
    if (c != '%') {
      literal += c;
      ++i;
      continue;
    }
    size_t at = i;
    ++i;
    if (i >= format.size()) return "incomplete format: a lone '%' at the end (write %% for '%')";
    if (format[i] == '%') {
      literal += '%';
      ++i;
      continue;
    }
    if (format[i] != '(') {
      return "format requires a mapping key at offset " + std::to_string(at) +
             ": write atoms as %(h)s, and '%' as %%";
    }
    // Python matches nested parentheses inside the key.
    int depth = 1;
    size_t keyStart = ++i;
    while (i < format.size() && depth > 0) {
      if (format[i] == '(') ++depth;
      if (format[i] == ')') --depth;
      ++i;
    }
    if (depth != 0) return "incomplete format key at offset " + std::to_string(at);
    std::string_view key = format.substr(keyStart, i - 1 - keyStart);
    Segment seg = atomSegment(key);
    while (i < format.size() &&
           std::string_view("#0- +").find(format[i]) != std::string_view::npos) {
      if (format[i] == '-') seg.leftAlign = true;
      if (format[i] == '0') seg.zeroPad = true;
      ++i;
    }
    auto readNumber = [&](int& out) {
      out = 0;
      while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
        out = std::min(out * 10 + (format[i] - '0'), 4096);
        ++i;
      }
    };
    if (i < format.size() && format[i] == '*') return "'*' width cannot be used with %(key)";
    readNumber(seg.width);
    if (i < format.size() && format[i] == '.') {
      ++i;
      if (i < format.size() && format[i] == '*') return "'*' precision cannot be used with %(key)";
      readNumber(seg.precision);
    }
    while (i < format.size() && (format[i] == 'h' || format[i] == 'l' || format[i] == 'L')) ++i;
    if (i >= format.size()) return "incomplete format at offset " + std::to_string(at);
    char conversion = format[i++];
    switch (conversion) {
      case 's':
        break;
      case 'r':
      case 'a':
        seg.repr = true;
        break;
      case 'd':
      case 'i':
      case 'u':
        seg.precision = -1;  // Python's %.Nd pads with zeros; portico's values need no such thing
        break;
      default:
        return std::string("unsupported format character '") + conversion + "' at offset " +
               std::to_string(i - 1) + " (portico supports %(key)s, %(key)d and %(key)r)";
    }
    flushLiteral();
    segs.push_back(std::move(seg));
  }
  flushLiteral();
  return {};
}

bool isNumericAtom(Atom atom) {
  switch (atom) {
    case Atom::kStatus:
    case Atom::kBytes:
    case Atom::kSeconds:
    case Atom::kMillis:
    case Atom::kMicros:
      return true;
    default:
      return false;
  }
}

// Appends the raw (unescaped) value of an atom.
void appendAtomValue(std::string& out, const Segment& seg, const AccessLogEntry& entry) {
  const Request* request = entry.request;
  const ConnectionInfo* connection = entry.connection;
  switch (seg.atom) {
    case Atom::kLiteral:
    case Atom::kConstant:
      out += seg.text;
      return;
    case Atom::kRemoteAddr:
      if (connection == nullptr) {
        out += '-';
      } else if (connection->isUnix && connection->peerAddress.empty()) {
        out += "unix:";  // unless a front server named its client (uwsgi, realip)
      } else {
        out += connection->peerAddress.empty() ? std::string_view("-") : connection->peerAddress;
      }
      return;
    case Atom::kRemoteUser: {
      auto user = basicAuthUser(request);
      out += user ? std::string_view(*user) : std::string_view("-");
      return;
    }
    case Atom::kTimeBracketed:
      out += '[';
      out += localTimeText(entry.startTime);
      out += ']';
      return;
    case Atom::kTimeLocal:
      out += localTimeText(entry.startTime);
      return;
    case Atom::kRequestLine:
      if (request == nullptr) {
        out += '-';
        return;
      }
      out += request->method;
      out += ' ';
      out += request->target;
      out += ' ';
      [[fallthrough]];
    case Atom::kProtocol:
      if (request == nullptr) {
        out += '-';
      } else {
        out += "HTTP/";
        appendNumber(out, static_cast<uint64_t>(request->versionMajor));
        out += '.';
        appendNumber(out, static_cast<uint64_t>(request->versionMinor));
      }
      return;
    case Atom::kMethod:
      out += request ? std::string_view(request->method) : std::string_view("-");
      return;
    case Atom::kPath:
      out += request ? std::string_view(request->path) : std::string_view("-");
      return;
    case Atom::kQuery:
      out += request ? std::string_view(request->query) : std::string_view("-");
      return;
    case Atom::kStatus:
      appendNumber(out, static_cast<uint64_t>(entry.status < 0 ? 0 : entry.status));
      return;
    case Atom::kBytes:
      appendNumber(out, entry.bodyBytesSent);
      return;
    case Atom::kSeconds:
      appendNumber(out, entry.durationMicros / 1000000);
      return;
    case Atom::kMillis:
      appendNumber(out, entry.durationMicros / 1000);
      return;
    case Atom::kMicros:
      appendNumber(out, entry.durationMicros);
      return;
    case Atom::kDecimalSeconds: {
      appendNumber(out, entry.durationMicros / 1000000);
      char frac[7] = {'.'};
      uint64_t micros = entry.durationMicros % 1000000;
      for (int i = 6; i >= 1; --i, micros /= 10) frac[i] = static_cast<char>('0' + micros % 10);
      out.append(frac, sizeof frac);
      return;
    }
    case Atom::kPid:
      out += '<';
      appendNumber(out, static_cast<uint64_t>(::getpid()));
      out += '>';
      return;
    case Atom::kRequestHeader: {
      const std::string* value = request ? lastHeader(&request->headers, seg.text) : nullptr;
      out += value ? std::string_view(*value) : std::string_view("-");
      return;
    }
    case Atom::kResponseHeader: {
      const std::string* value = lastHeader(entry.responseHeaders, seg.text);
      out += value ? std::string_view(*value) : std::string_view("-");
      return;
    }
    case Atom::kCgiVariable: {
      auto value = cgiVariable(seg.text, entry);
      out += value ? std::string_view(*value) : std::string_view("-");
      return;
    }
  }
}

void appendSegment(std::string& out, const Segment& seg, const AccessLogEntry& entry) {
  if (seg.atom == Atom::kLiteral) {
    out += seg.text;
    return;
  }
  bool plain = seg.width == 0 && seg.precision < 0 && !seg.repr;
  if (plain) {
    // Write in place; only a value that needs escaping (rare) is copied and rewritten.
    size_t start = out.size();
    appendAtomValue(out, seg, entry);
    if (seg.escape == Escape::kNone) return;
    const bool* table = escapeTable(seg.escape);
    for (size_t i = start; i < out.size(); ++i) {
      if (table[static_cast<unsigned char>(out[i])]) {
        std::string raw = out.substr(i);
        out.resize(i);
        appendEscaped(out, raw, seg.escape);
        return;
      }
    }
    return;
  }
  // Escape first, then pad, like gunicorn (SafeAtoms escapes before % formats).
  std::string raw;
  appendAtomValue(raw, seg, entry);
  std::string value;
  bool quote = seg.repr && !isNumericAtom(seg.atom);
  if (quote) value += '\'';
  appendEscaped(value, raw, seg.escape);
  if (quote) value += '\'';
  if (seg.precision >= 0 && static_cast<size_t>(seg.precision) < value.size()) {
    value.resize(static_cast<size_t>(seg.precision));
  }
  size_t pad = static_cast<size_t>(seg.width) > value.size() ? seg.width - value.size() : 0;
  if (seg.leftAlign) {
    out += value;
    out.append(pad, ' ');
  } else if (seg.zeroPad && isNumericAtom(seg.atom)) {
    out.append(pad, '0');
    out += value;
  } else {
    out.append(pad, ' ');
    out += value;
  }
}

}  // namespace

AccessLogFormatter::AccessLogFormatter(std::string format, bool json)
    : format_(std::move(format)) {
  auto compiled = std::make_shared<Compiled>();
  if (json) {
    compiled->segments = jsonSegments();
  } else if (format_.empty()) {
    compiled->segments = combinedSegments();
  } else {
    std::string problem = compileGunicorn(format_, compiled->segments);
    if (!problem.empty()) {
      error_ = "invalid access log format: " + problem;
      compiled->segments.clear();
    }
  }
  for (const auto& seg : compiled->segments) {
    compiled->literalBytes += seg.atom == Atom::kLiteral ? seg.text.size() : 0;
  }
  compiled_ = std::move(compiled);
}

std::string AccessLogFormatter::format(const AccessLogEntry& entry) const {
  std::string out;
  if (!compiled_) return out;
  size_t hint = compiled_->literalBytes + 256;  // room for typical addresses, dates and agents
  if (entry.request != nullptr) hint += entry.request->target.size();
  out.reserve(hint);
  for (const auto& seg : compiled_->segments) appendSegment(out, seg, entry);
  return out;
}

}  // namespace portico::http
