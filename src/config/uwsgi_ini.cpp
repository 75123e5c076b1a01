#include "config/uwsgi_ini.h"

#include <grp.h>
#include <pwd.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "config/version.h"
#include "core/cpu_count.h"

extern char** environ;

namespace portico::config {
namespace {

// What an option of the ini file does here.
enum class Kind {
  kModule,        // module, wsgi, w: MODULE[:CALLABLE]
  kCallable,      // callable: the app's name in the module (uWSGI's default: application)
  kWsgiFile,      // wsgi-file, file: a Python file imported as a module from its directory
  kWord,          // a portico flag taking the value as is
  kNumber,        // a portico flag taking a whole number
  kUwsgiSocket,   // socket: the uwsgi protocol (nginx's uwsgi_pass in front)
  kHttpSocket,    // http-socket, http, http11-socket: HTTP
  kChmodSocket,   // chmod-socket: octal, 666 when empty
  kBufferSize,    // buffer-size: the request head's bounds
  kLog,           // logto: every log line and the app's output into the file
  kDaemonize,     // daemonize: the same, and detach
  kDisableLogging,
  kEnv,           // env: KEY=VALUE
  kStaticMap,     // static-map: /PREFIX=DIR
  kPlugins,       // plugins, plugin: python3 and http are built in
  kPrint,         // print: said when read
  kPlaceholder,   // set-placeholder, set-ph: NAME=VALUE
  kLazyApps,      // lazy-apps, lazy: what portico does (each worker imports the app)
  kAlways,        // a flag naming what portico always does (true: fine; false: a note)
  kAccepted,      // an option whose value changes nothing here (the reason is the note)
};

// One option uWSGI documents that portico reads, with its aliases (uWSGI's short ones too).
struct IniOption {
  std::string_view name;
  std::string_view alias1;
  std::string_view alias2;
  std::string_view alias3;
  Kind kind;
  std::string_view flag;  // kWord/kNumber: the portico flag; kAlways/kAccepted: the note
};

constexpr IniOption kIniOptions[] = {
    {"module", "wsgi", "w", "", Kind::kModule, ""},
    {"callable", "", "", "", Kind::kCallable, ""},
    {"wsgi-file", "file", "", "", Kind::kWsgiFile, ""},
    {"chdir", "", "", "", Kind::kWord, "--chdir"},
    {"home", "virtualenv", "venv", "pyhome", Kind::kWord, "--virtualenv"},
    {"pythonpath", "python-path", "pp", "", Kind::kWord, "--pythonpath"},
    {"processes", "workers", "p", "", Kind::kNumber, "--workers"},
    {"threads", "", "", "", Kind::kNumber, "--threads"},
    {"harakiri", "", "", "", Kind::kNumber, "--timeout"},
    {"max-requests", "", "", "", Kind::kNumber, "--max-requests"},
    {"reload-on-rss", "", "", "", Kind::kNumber, "--max-worker-memory"},
    {"limit-post", "", "", "", Kind::kNumber, "--limit-request-body"},
    {"listen", "l", "", "", Kind::kNumber, "--backlog"},
    {"worker-reload-mercy", "reload-mercy", "", "", Kind::kNumber, "--graceful-timeout"},
    {"pidfile", "pidfile2", "", "", Kind::kWord, "--pid"},
    {"uid", "", "", "", Kind::kWord, "--user"},
    {"gid", "", "", "", Kind::kWord, "--group"},
    {"touch-reload", "", "", "", Kind::kWord, "--touch-reload"},
    {"socket", "uwsgi-socket", "s", "", Kind::kUwsgiSocket, ""},
    {"http-socket", "http", "http11-socket", "", Kind::kHttpSocket, ""},
    {"chmod-socket", "", "", "", Kind::kChmodSocket, ""},
    {"buffer-size", "b", "", "", Kind::kBufferSize, ""},
    {"logto", "", "", "", Kind::kLog, ""},
    {"daemonize", "", "", "", Kind::kDaemonize, ""},
    {"disable-logging", "L", "", "", Kind::kDisableLogging, ""},
    {"env", "", "", "", Kind::kEnv, ""},
    {"static-map", "", "", "", Kind::kStaticMap, ""},
    {"plugins", "plugin", "", "", Kind::kPlugins, ""},
    {"print", "", "", "", Kind::kPrint, ""},
    {"set-placeholder", "set-ph", "", "", Kind::kPlaceholder, ""},
    {"lazy-apps", "lazy", "", "", Kind::kLazyApps, ""},
    {"master", "M", "", "", Kind::kAlways, "portico always runs a master process"},
    {"enable-threads", "T", "", "", Kind::kAlways,
     "portico's workers always run Python threads (--threads)"},
    {"die-on-term", "", "", "", Kind::kAlways,
     "portico stops gracefully on SIGTERM (reload with SIGHUP or touch-reload)"},
    {"vacuum", "", "", "", Kind::kAlways,
     "portico always removes its unix sockets and pid file when it stops"},
    {"need-app", "", "", "", Kind::kAlways, "portico never starts without its app"},
    {"strict", "", "", "", Kind::kAlways,
     "portico always refuses an unknown option"},
    {"single-interpreter", "i", "", "", Kind::kAlways,
     "each portico worker runs its app in one interpreter"},
    {"no-orphans", "", "", "", Kind::kAlways,
     "portico's workers always stop when their master dies"},
    {"thunder-lock", "", "", "", Kind::kAlways,
     "portico's workers share the accepted connections themselves"},
    {"auto-procname", "", "", "", Kind::kAlways,
     "portico always names its processes (portico: master, portico: worker)"},
    {"post-buffering", "", "", "", Kind::kAccepted,
     "portico always reads a request body before the app runs (to a temp file past 1 MB)"},
    {"harakiri-verbose", "", "", "", Kind::kAccepted,
     "portico logs every worker it kills for --timeout"},
    {"offload-threads", "", "", "", Kind::kAccepted,
     "portico's event loop sends static files and responses without Python threads"},
};

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view strip(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

// uWSGI's names: '_' is '-'.
std::string canonicalName(std::string_view key) {
  std::string out(key);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

const IniOption* findOption(const std::string& name) {
  for (const IniOption& o : kIniOptions) {
    if (name == o.name || (!o.alias1.empty() && name == o.alias1) ||
        (!o.alias2.empty() && name == o.alias2) || (!o.alias3.empty() && name == o.alias3)) {
      return &o;
    }
  }
  return nullptr;
}

// uWSGI's uwsgi_opt_true: false, off, no and 0 say no; anything else (empty too) yes.
bool truthy(std::string_view value) {
  std::string v = lower(strip(value));
  return !(v == "false" || v == "off" || v == "no" || v == "0");
}

// One `key = value` line of the section read.
struct Entry {
  std::string key;  // canonical (dashes)
  std::string raw;  // the value as written (stripped)
  int line = 0;
  std::string value;  // raw with magic variables and placeholders resolved
};

// Resolves magic variables, placeholders and $(ENV) in values.
class Expander {
 public:
  Expander(const UwsgiIniPlace& place, const std::vector<Entry>& entries)
      : place_(place), entries_(entries) {
    namespace fs = std::filesystem;
    fs::path file(place.absolute);
    dir_ = file.parent_path().string();
    if (dir_.empty() || dir_.back() != '/') dir_ += '/';
    name_ = file.filename().string();
    stem_ = file.stem().string();
    extension_ = file.extension().string();
    if (!extension_.empty()) extension_.erase(0, 1);
    dirName_ = file.parent_path().filename().string();
    for (const auto& part : file.parent_path()) {
      std::string p = part.string();
      if (p != "/" && !p.empty()) components_.push_back(p);
    }
  }

  // False (with `error`) only for placeholders that refer to themselves.
  bool expand(std::string_view value, int depth, std::string& out, std::string& error) const {
    if (depth > 16) {
      error = "placeholders refer to each other without end";
      return false;
    }
    for (size_t i = 0; i < value.size(); ++i) {
      char c = value[i];
      if (c == '%' && i + 1 < value.size()) {
        char m = value[i + 1];
        if (m == '(') {
          size_t close = value.find(')', i + 2);
          if (close != std::string_view::npos) {
            std::string name(value.substr(i + 2, close - i - 2));
            std::string resolved;
            if (!placeholder(name, depth, resolved, error)) {
              if (!error.empty()) return false;
              out.append(value.substr(i, close - i + 1));  // unknown: kept, as uWSGI
            } else {
              out += resolved;
            }
            i = close;
            continue;
          }
        }
        out += magic(m);
        ++i;
        continue;
      }
      if (c == '$' && i + 1 < value.size() && value[i + 1] == '(') {
        size_t close = value.find(')', i + 2);
        if (close != std::string_view::npos) {
          std::string name(value.substr(i + 2, close - i - 2));
          auto it = place_.environment.find(name);
          if (it != place_.environment.end()) {
            out += it->second;
          } else {
            out.append(value.substr(i, close - i + 1));
          }
          i = close;
          continue;
        }
      }
      out += c;
    }
    return true;
  }

 private:
  // %(name): the first key of that name (an option or a placeholder; set-placeholder's NAME
  // too), else $UWSGI_NAME. False with `error` empty when there is none.
  bool placeholder(const std::string& name, int depth, std::string& out,
                   std::string& error) const {
    std::string key = canonicalName(name);
    for (const Entry& e : entries_) {
      if (e.key == key) return expand(e.raw, depth + 1, out, error);
      if (e.key == "set-placeholder" || e.key == "set-ph") {
        size_t eq = e.raw.find('=');
        if (eq != std::string::npos && canonicalName(strip(e.raw.substr(0, eq))) == key) {
          return expand(strip(std::string_view(e.raw).substr(eq + 1)), depth + 1, out, error);
        }
      }
    }
    std::string variable = "UWSGI_";
    for (char c : name) {
      variable += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    auto it = place_.environment.find(variable);
    if (it == place_.environment.end()) return false;
    out = it->second;
    return true;
  }

  // uWSGI's magic table (core/utils.c); an unknown letter stands for nothing, as there.
  std::string magic(char m) const {
    switch (m) {
      case '%': return "%";
      case 'v': return place_.startDir;
      case 'V': return kPorticoVersion;
      case 'h': return place_.hostname;
      case 'o': case 'O': return place_.given;
      case 'p': case 'P': return place_.absolute;
      case 's': case 'S': return name_;
      case 'd': case 'D': return dir_;
      case 'e': case 'E': return extension_;
      case 'n': case 'N': return stem_;
      case 'c': case 'C': return dirName_;
      case 'x': case 'X': return place_.given + ":" + place_.section;
      case 't': return std::to_string(place_.startTime);
      case 'T': return std::to_string(place_.startTime * 1000000LL);
      case 'k': return std::to_string(place_.cpus);
      case 'u': return std::to_string(place_.uid);
      case 'U': return place_.userName.empty() ? std::to_string(place_.uid) : place_.userName;
      case 'g': return std::to_string(place_.gid);
      case 'G': return place_.groupName.empty() ? std::to_string(place_.gid) : place_.groupName;
      default:
        if (m >= '0' && m <= '9') {
          size_t index = static_cast<size_t>(m - '0');
          return index < components_.size() ? components_[index] : std::string();
        }
        return {};
    }
  }

  const UwsgiIniPlace& place_;
  const std::vector<Entry>& entries_;
  std::string dir_, name_, stem_, extension_, dirName_;
  std::vector<std::string> components_;
};

bool isWholeNumber(std::string_view value) {
  if (value.empty()) return false;
  return std::all_of(value.begin(), value.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

bool isModuleName(std::string_view name) {
  if (name.empty()) return false;
  bool start = true;
  for (unsigned char c : name) {
    if (c == '.') {
      if (start) return false;
      start = true;
      continue;
    }
    bool ok = std::isalpha(c) || c == '_' || c >= 0x80 || (!start && std::isdigit(c));
    if (!ok) return false;
    start = false;
  }
  return !start;
}

// uWSGI's socket addresses as portico's: "/path" or "name.sock" (no ':') a unix socket,
// ":PORT" every IPv4 interface, "HOST:PORT" as is.
std::optional<std::string> socketAddress(std::string_view value, std::string& problem) {
  if (value.empty()) {
    problem = "an address is needed";
    return std::nullopt;
  }
  if (value.front() == '@') {
    problem = "abstract unix sockets (@NAME) are not supported; give a path";
    return std::nullopt;
  }
  if (value.front() == '=') {
    problem = "inherited sockets (=FD) are not supported; systemd's socket activation is";
    return std::nullopt;
  }
  if (value.find(',') != std::string_view::npos) {
    problem = "socket options after ',' are not supported";
    return std::nullopt;
  }
  if (value.find(':') == std::string_view::npos) return "unix:" + std::string(value);
  if (value.front() == ':') return "0.0.0.0" + std::string(value);
  if (value.starts_with("*:")) return "0.0.0.0" + std::string(value.substr(1));
  return std::string(value);
}

}  // namespace

bool translateUwsgiIni(std::string_view text, const UwsgiIniPlace& place, UwsgiIni& out,
                       std::string& error) {
  out = UwsgiIni{};
  auto at = [&](int line) { return place.given + ":" + std::to_string(line) + ": "; };

  // 1. The section's lines, as uWSGI's ini reader takes them: no inline comments, no quotes.
  std::vector<Entry> entries;
  std::string current;
  bool sectionSeen = false;
  int lineNumber = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = strip(text.substr(pos, end - pos));
    pos = end + 1;
    ++lineNumber;
    if (line.empty() || line.front() == ';' || line.front() == '#') continue;
    if (line.front() == '[') {
      size_t close = line.find(']');
      if (close == std::string_view::npos) {
        error = at(lineNumber) + "a section header without ']'";
        return false;
      }
      current = std::string(strip(line.substr(1, close - 1)));
      sectionSeen |= current == place.section;
      continue;
    }
    if (current != place.section) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      // uWSGI skips such a line without a word; a typo must not go unseen.
      error = at(lineNumber) + "expected KEY = VALUE, found " + std::string(line);
      return false;
    }
    Entry e;
    e.key = canonicalName(strip(line.substr(0, eq)));
    e.raw = std::string(strip(line.substr(eq + 1)));
    e.line = lineNumber;
    if (e.key.empty()) {
      error = at(lineNumber) + "an option name is missing before '='";
      return false;
    }
    entries.push_back(std::move(e));
  }
  if (!sectionSeen) {
    error = place.given + ": no [" + place.section + "] section";
    return false;
  }

  // 2. Values resolved once the whole section is known (a placeholder may be set after its use,
  // as in uWSGI), and the names used as placeholders.
  Expander expander(place, entries);
  std::vector<std::string> referenced;
  for (Entry& e : entries) {
    std::string problem;
    if (!expander.expand(e.raw, 0, e.value, problem)) {
      error = at(e.line) + e.key + ": " + problem;
      return false;
    }
    for (size_t i = e.raw.find("%("); i != std::string::npos; i = e.raw.find("%(", i + 2)) {
      size_t close = e.raw.find(')', i);
      if (close == std::string::npos) break;
      referenced.push_back(canonicalName(e.raw.substr(i + 2, close - i - 2)));
    }
  }

  // 3. Each option as portico words.
  auto word = [&](std::string text, int line) { out.words.push_back(ConfigWord{std::move(text), line}); };
  std::string module, callable = "application", wsgiFile;
  int appLine = 0;
  bool disableLogging = false;
  std::string logFile;  // logto/daemonize: the access log goes there too
  int logLine = 0;
  for (const Entry& e : entries) {
    const IniOption* option = findOption(e.key);
    const std::string& v = e.value;
    std::string where = at(e.line) + e.key + ": ";
    if (option == nullptr) {
      if (std::find(referenced.begin(), referenced.end(), e.key) != referenced.end()) continue;
      error = where + "unknown uWSGI option (portico reads the options docs/uwsgi-ini.md lists; "
                      "a key used as %(" + e.key + ") elsewhere is a placeholder)";
      return false;
    }
    switch (option->kind) {
      case Kind::kModule:
        module = v;
        appLine = e.line;
        break;
      case Kind::kCallable:
        if (v.empty()) {
          error = where + "a callable's name is needed";
          return false;
        }
        callable = v;
        break;
      case Kind::kWsgiFile:
        wsgiFile = v;
        appLine = e.line;
        break;
      case Kind::kWord:
        if (v.empty()) {
          error = where + "a value is needed";
          return false;
        }
        word(std::string(option->flag) + "=" + v, e.line);
        break;
      case Kind::kNumber:
        if (!isWholeNumber(v)) {
          error = where + "invalid value \"" + v + "\" (a whole number)";
          return false;
        }
        word(std::string(option->flag) + "=" + v, e.line);
        break;
      case Kind::kUwsgiSocket:
      case Kind::kHttpSocket: {
        std::string problem;
        auto address = socketAddress(v, problem);
        if (!address) {
          error = where + problem;
          return false;
        }
        word((option->kind == Kind::kUwsgiSocket ? "--uwsgi-socket=" : "--bind=") + *address,
             e.line);
        break;
      }
      case Kind::kChmodSocket: {
        std::string mode = v.empty() || lower(v) == "true" ? "666" : v;
        word("--chmod-socket=" + mode, e.line);
        break;
      }
      case Kind::kBufferSize:
        if (!isWholeNumber(v) || v == "0") {
          error = where + "invalid value \"" + v + "\" (a size in bytes)";
          return false;
        }
        // uWSGI's bound on a request's head: here on its line (at most 8190, gunicorn's
        // ceiling) and on each header field.
        word("--limit-request-line=" + v, e.line);
        word("--limit-request-field_size=" + v, e.line);
        break;
      case Kind::kDaemonize:
      case Kind::kLog:
        if (v.empty()) {
          error = where + "a log file is needed";
          return false;
        }
        if (option->kind == Kind::kDaemonize) word("--daemon", e.line);
        word("--error-logfile=" + v, e.line);
        word("--capture-output", e.line);
        logFile = v;
        logLine = e.line;
        break;
      case Kind::kDisableLogging:
        disableLogging = truthy(v);
        break;
      case Kind::kEnv:
        if (v.find('=') == std::string::npos || v.front() == '=') {
          error = where + "expected KEY=VALUE";
          return false;
        }
        word("--env=" + v, e.line);
        break;
      case Kind::kStaticMap:
        if (v.find('=') == std::string::npos || v.front() != '/') {
          error = where + "expected /PREFIX=DIRECTORY";
          return false;
        }
        word("--static=" + v, e.line);
        break;
      case Kind::kPlugins: {
        std::stringstream list(v);
        std::string plugin;
        while (std::getline(list, plugin, ',')) {
          std::string name = lower(strip(plugin));
          if (name.empty() || name == "http" || name.starts_with("python")) continue;
          error = where + "the \"" + name + "\" plugin is not available: portico has Python 3 "
                          "(WSGI) and HTTP built in";
          return false;
        }
        break;
      }
      case Kind::kPrint:
        out.notes.push_back(v);
        break;
      case Kind::kPlaceholder:
        if (v.find('=') == std::string::npos) {
          error = where + "expected NAME=VALUE";
          return false;
        }
        break;
      case Kind::kLazyApps:
        if (!truthy(v)) {
          out.notes.push_back(where + "portico imports the app in each worker (lazy-apps), "
                              "so a reload brings new code; --preload imports it once in the "
                              "master");
        }
        break;
      case Kind::kAlways:
        if (!truthy(v)) out.notes.push_back(where + "set to false, but " + std::string(option->flag));
        break;
      case Kind::kAccepted:
        break;
    }
  }
  if (!wsgiFile.empty()) {
    std::filesystem::path file(wsgiFile);
    if (file.extension() != ".py" || !isModuleName(file.stem().string())) {
      error = at(appLine) + "wsgi-file: portico imports the file as a Python module: it must be "
                            "NAME.py with NAME a Python identifier (or give module =)";
      return false;
    }
    if (!module.empty()) {
      error = at(appLine) + "both module and wsgi-file name an app; give one";
      return false;
    }
    std::string dir = file.parent_path().string();
    word("--pythonpath=" + (dir.empty() ? std::string(".") : dir), appLine);
    module = file.stem().string();
  }
  if (!module.empty()) {
    word(module.find(':') == std::string::npos ? module + ":" + callable : module, appLine);
  }
  // uWSGI logs every request where it logs (stderr, logto's file) unless disable-logging.
  if (!disableLogging) {
    word("--access-logfile=" + (logFile.empty() ? std::string("-") : logFile), logLine);
  }
  return true;
}

bool readUwsgiIni(const std::string& spec, const std::string& startDir, UwsgiIni& out,
                  std::string& error) {
  namespace fs = std::filesystem;
  UwsgiIniPlace place;
  std::string file = spec;
  place.section = "uwsgi";
  // FILE:SECTION, as uWSGI's --ini (a colon after the .ini name).
  if (size_t colon = spec.rfind(':'); colon != std::string::npos && colon > 0 &&
                                      spec.substr(0, colon).ends_with(".ini")) {
    file = spec.substr(0, colon);
    place.section = spec.substr(colon + 1);
  }
  place.given = file;
  fs::path path = fs::path(file).is_absolute() ? fs::path(file) : fs::path(startDir) / file;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read the ini file " + file + ": " + std::strerror(errno);
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  std::error_code ec;
  fs::path absolute = fs::weakly_canonical(path, ec);
  place.absolute = (ec ? path : absolute).string();
  place.startDir = startDir;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) place.hostname = host;
  place.startTime = static_cast<long long>(std::time(nullptr));
  place.cpus = std::max(1, usableCpuCount());
  place.uid = ::getuid();
  place.gid = ::getgid();
  if (const passwd* pw = ::getpwuid(place.uid)) place.userName = pw->pw_name;
  if (const group* gr = ::getgrgid(place.gid)) place.groupName = gr->gr_name;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    place.environment.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  if (!translateUwsgiIni(text.str(), place, out, error)) return false;
  out.file = file;
  return true;
}

}  // namespace portico::config
