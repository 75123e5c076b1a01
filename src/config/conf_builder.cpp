#include "config/conf_builder.h"

#include <arpa/inet.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <sched.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "config/access_module.h"
#include "config/conf_module.h"
#include "config/conf_parser.h"
#include "config/conf_values.h"
#include "config/gzip_module.h"
#include "config/headers_module.h"
#include "config/http_core_module.h"
#include "config/index_module.h"
#include "config/limit_module.h"
#include "config/upstream_module.h"
#include "config/log_module.h"
#include "config/proxy_module.h"
#include "config/rewrite_module.h"
#include "config/ssl_module.h"
#include "config/wsgi_module.h"
#include "config/uwsgi_module.h"
#include "core/cpu_count.h"

namespace portico::config {
namespace {

// Everything one level (http, server, location) may set; unset fields inherit from the
// enclosing level when the tree is merged after parsing (nginx's merge_loc_conf).
struct Partial {
  HttpCorePartial core;  // ngx_http_core_module's location settings
  IndexPartial index;  // ngx_http_index_module
  RewritePartial rewrite;  // ngx_http_rewrite_module (its program is never inherited)
  HeadersPartial headers;  // ngx_http_headers_filter_module
  std::optional<std::map<std::string, std::string>> types;
  GzipPartial gzip;  // ngx_http_gzip_filter_module, gzip_static
  LogPartial log;  // ngx_http_log_module: access_log, open_log_file_cache
  std::optional<int64_t> typesHashMaxSize;
  std::optional<std::vector<ErrorLogSpec>> errorLogs;
  // http and server only
  SslPartial ssl;  // ngx_http_ssl_module (http, server)
  // location only, never inherited: the app and its companions
  WsgiPartial wsgi;  // portico's wsgi_* (location only, never inherited)
  AccessPartial access;  // allow/deny, auth_basic, realip, autoindex, stub_status
  LimitPartial limit;  // limit_req*, limit_conn* (their zones: limitLoad_)
  ProxyPartial proxy;  // proxy_pass (never inherited) and proxy_*
  ProxyPartial uwsgiEngine;  // uwsgi_pass (never inherited) and the uwsgi_* it shares with proxy_*
  UwsgiPartial uwsgi;        // uwsgi_param, uwsgi_modifier1/2
};

// nginx's merge: what the child did not set comes from the parent (already merged).
void mergeFrom(Partial& c, const Partial& p) {
  mergeHttpCore(c.core, p.core);
  mergeIndex(c.index, p.index);
  inherit(c.types, p.types);
  mergeRewrite(c.rewrite, p.rewrite);
  mergeLog(c.log, p.log);
  inherit(c.typesHashMaxSize, p.typesHashMaxSize);
  inherit(c.errorLogs, p.errorLogs);
  mergeSsl(c.ssl, p.ssl);
  mergeGzip(c.gzip, p.gzip);
  mergeHeaders(c.headers, p.headers);
  mergeAccess(c.access, p.access);
  mergeLimit(c.limit, p.limit);
  mergeProxy(c.proxy, p.proxy);
  mergeProxy(c.uwsgiEngine, p.uwsgiEngine);
  mergeUwsgi(c.uwsgi, p.uwsgi);
}

// One location as parsed, before merging.
struct LocationDraft {
  Location::Match match = Location::Match::kPrefix;
  std::string pattern;
  SourceRef source;
  Partial partial;
  std::vector<LocationDraft> children;
  // `limit_except METHOD... { }`: the block's own Partial and the methods it lets through.
  std::optional<Partial> limitExcept;
  std::vector<std::string> limitExceptAllowed;
};

// One server as parsed, before merging.
struct ServerDraft {
  VirtualServer server;
  bool namesSet = false;
  Partial partial;
  std::vector<LocationDraft> locations;
};

// Where the walk stands: the context and the level its directives fill.
struct Frame {
  Ctx ctx = kMain;
  Partial* level = nullptr;
  ServerDraft* server = nullptr;
  LocationDraft* location = nullptr;  // innermost enclosing location
  std::map<std::string, std::string>* types = nullptr;
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool startsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// The directives of nginx (and its common modules) that portico does not implement yet, and the
// prefixes of whole families of them.
constexpr std::string_view kUnsupportedPrefixes[] = {
    "proxy_",     "uwsgi_",       "fastcgi_",        "scgi_",    "grpc_",        "memcached_",
    "ssl",        "auth_request",    "auth_jwt", 
    "sub_filter", "open_file_cache", "ssi",
    "charset",    "secure_link",  "image_filter",    "xslt_",    "perl",         "mp4",
    "hls",        "userid",       "gunzip",          "geoip_",   "slice",        "mirror",
    "dav_",       "js_",          "quic_",           "http2_",   "http3_",       "lua",
    "more_set_",  "more_clear_",  "brotli",          "zstd",     "health_check", "sticky",
    "referer_hash_", "variables_hash_", "lingering_",
};
constexpr std::string_view kUnsupportedNames[] = {
    // http
    "http2", "http3", "geo", "split_clients",
    "aio", "aio_write", "directio",
    "directio_alignment", "output_buffers", "postpone_output",
    "reset_timedout_connection",
    "recursive_error_pages",
    "log_subrequest", "etag",
    "disable_symlinks", "msie_padding", "msie_refresh",
    "max_ranges", "server_names_hash_max_size", "types_hash_bucket_size", "sendfile_max_chunk",
    "send_lowat", "flv", "empty_gif",
    "random_index", "create_full_put_path", "min_delete_depth", "read_ahead",
    "subrequest_output_buffer_size", "ancient_browser", "ancient_browser_value",
    "modern_browser", "modern_browser_value", "valid_referers", "addition_types",
    "add_before_body", "add_after_body", "gzip_window", "gzip_hash", "gzip_no_buffer",
    "postpone_gzipping", "zone", "random",
    "stream", "mail",
    // main and events
    "worker_rlimit_nofile", "worker_rlimit_core", "worker_priority",
    "working_directory", "env", "load_module", "pcre_jit",
    "thread_pool", "timer_resolution", "lock_file", "master_process", "debug_points",
    "accept_mutex", "accept_mutex_delay", "debug_connection", "worker_aio_requests",
    "google_perftools_profiles",
};

// What portico offers instead of a refused directive that deployment guides use (by name, or
// by the prefix of a family): said in the refusal, so that the way forward is in the message.
struct Alternative {
  std::string_view name;
  bool prefix;
  std::string_view instead;
};
constexpr Alternative kAlternatives[] = {
    {"fastcgi_", true,
     "portico runs a WSGI app itself with wsgi_app, or reaches an app server with proxy_pass "
     "or uwsgi_pass"},
    {"scgi_", true,
     "portico runs a WSGI app itself with wsgi_app, or reaches an app server with proxy_pass "
     "or uwsgi_pass"},
    {"proxy_cache", true,
     "portico caches no responses: use Django's cache framework (e.g. Redis), or an nginx in "
     "front"},
    {"uwsgi_cache", true,
     "portico caches no responses: use Django's cache framework (e.g. Redis), or an nginx in "
     "front"},
    {"brotli", true, "gzip on, and gzip_static on for precompressed .gz files"},
    {"zstd", true, "gzip on, and gzip_static on for precompressed .gz files"},
    {"open_file_cache", true,
     "portico opens and stats each file per request, from the page cache: remove it"},
    {"env", false,
     "wsgi_env NAME VALUE in the app's location, or set it where portico starts (systemd's "
     "Environment=)"},
    {"worker_rlimit_nofile", false,
     "raise the limit where portico starts: LimitNOFILE= in its systemd unit, or ulimit -n"},
    {"master_process", false, "portico always runs a master process"},
    {"accept_mutex", false, "portico's workers balance accepted connections themselves"},
    {"load_module", false, "portico's modules are built in"},
    {"more_set_headers", false, "add_header NAME VALUE always"},
    {"more_clear_headers", false, "proxy_hide_header NAME, for an upstream's headers"},
    {"sticky", false, "ip_hash, or hash $cookie_NAME consistent, in the upstream block"},
    {"health_check", false,
     "passive health checks: server ... max_fails=N fail_timeout=T in the upstream block"},
    {"lua", true, "portico embeds no scripting: do it in the WSGI app"},
    {"js_", true, "portico embeds no scripting: do it in the WSGI app"},
    {"perl", true, "portico embeds no scripting: do it in the WSGI app"},
};

}  // namespace

std::string nginxDirectiveAlternative(const std::string& name) {
  for (const Alternative& a : kAlternatives) {
    if (a.prefix ? startsWith(name, a.name) : name == a.name) return std::string(a.instead);
  }
  return {};
}

bool isUnsupportedNginxDirective(const std::string& name) {
  for (std::string_view p : kUnsupportedPrefixes) {
    if (startsWith(name, p)) return true;
  }
  for (std::string_view n : kUnsupportedNames) {
    if (name == n) return true;
  }
  return false;
}

namespace {

// Walks the directive tree once, in file order (includes expanded where they stand), filling
// the drafts; the http block's end merges and finalizes the servers. One per load.
class Builder {
 public:
  Builder(const ConfLoadOptions& options, ConfLoader& loader, ConfLoadResult& result)
      : options_(options), loader_(loader), result_(result), config_(result.config) {
    std::string dir = options.confFile.substr(0, options.confFile.rfind('/') + 1);
    confPrefix_ = dir.empty() ? "/" : dir;
    config_.confFile = options.confFile;
    config_.prefix = options.prefix;
    upstreamLoad_.upstreams = &site_.upstreams;
  }

  void run() {
    Frame main;
    main.ctx = kMain;
    if (!options_.globalDirectives.empty()) {
      auto tree = parseConf(options_.globalDirectives, "", ConfSourceKind::kCommandLine);
      walk(tree, main);
    }
    std::string text, error;
    bool readFailed = false;
    if (!loader_.readFile(options_.confFile, text, error, &readFailed)) {
      throw ConfFailure{(readFailed ? "[crit] " : "[emerg] ") + error};
    }
    walk(parseConf(text, options_.confFile), main);
    if (!eventsSeen_) throw ConfFailure{"[emerg] no \"events\" section in configuration"};
    if (!errorLogSet_ && !options_.errorLog.empty()) config_.errorLogFile = options_.errorLog;
    finishLogLoad(logLoad_, config_.site);
    if (config_.cpuAffinityMasks.size() > 1) {
      long workers = config_.workers > 0 ? config_.workers : usableCpuCount();
      if (static_cast<size_t>(workers) != config_.cpuAffinityMasks.size()) {
        result_.messages.push_back("[warn] the number of \"worker_processes\" is not equal to the number of "
                                   "\"worker_cpu_affinity\" masks, using last mask for remaining worker processes");
      }
    }
  }

 private:
  using Handler = void (Builder::*)(const ConfDirective&, Frame&);

  // One row of the directive table.
  struct Command {
    std::string_view name;
    unsigned contexts;
    Args args;
    bool block;
    Handler handler;  // the walker's own directives (core, blocks) ...
    // ... or a module's: applies to the module's part of the level, and to its load context if
    // it has one (see conf_module.h)
    std::function<void(Builder&, const DirectiveCall&, Partial&)> moduleApply = {};
  };

  static const std::vector<Command>& commands();

  // Appends a module's directive table, each row applying to `member` of the level's Partial.
  template <class P>
  static void addModule(std::vector<Command>& table, P Partial::*member,
                        const std::vector<ModuleDirective<P>>& directives) {
    for (const ModuleDirective<P>& d : directives) {
      auto apply = d.apply;
      table.push_back({d.name, d.contexts, d.args, false, nullptr,
                       [member, apply](Builder&, const DirectiveCall& call, Partial& level) {
                         apply(call, level.*member);
                       }});
    }
  }
  // ... and a module's whose directives fill only its load context (see conf_module.h).
  template <class L>
  static void addModule(std::vector<Command>& table, L Builder::*load,
                        const std::vector<ModuleMainDirective<L>>& directives) {
    for (const ModuleMainDirective<L>& d : directives) {
      auto apply = d.apply;
      table.push_back({d.name, d.contexts, d.args, false, nullptr,
                       [load, apply](Builder& builder, const DirectiveCall& call, Partial&) {
                         apply(call, builder.*load);
                       }});
    }
  }
  // ... and a module's with a load context, which the walker holds as `load`.
  template <class P, class L>
  static void addModule(std::vector<Command>& table, P Partial::*member, L Builder::*load,
                        const std::vector<ModuleLoadDirective<P, L>>& directives) {
    for (const ModuleLoadDirective<P, L>& d : directives) {
      auto apply = d.apply;
      table.push_back(
          {d.name, d.contexts, d.args, false, nullptr,
           [member, load, apply](Builder& builder, const DirectiveCall& call, Partial& level) {
             apply(call, builder.*load, level.*member);
           }});
    }
  }

  // ---- messages ----

  [[noreturn]] void emerg(const ConfDirective& d, const std::string& text) {
    throw ConfFailure{confMessage("emerg", text, d.source)};
  }
  // nginx's `"NAME" directive TEXT` (what a handler returning a string produces).
  [[noreturn]] void directiveError(const ConfDirective& d, const std::string& text) {
    emerg(d, quote(d.name) + " directive " + text);
  }
  void warn(const ConfDirective& d, const std::string& text) {
    result_.messages.push_back(confMessage("warn", text, d.source));
  }
  [[noreturn]] void unsupported(const ConfDirective& d, const std::string& what) {
    refuse(d, what + " is not supported by portico yet");
  }
  [[noreturn]] void refuse(const ConfDirective& d, const std::string& text) {
    throw ConfRefusal{{confMessage("emerg", text, d.source)}};
  }

 public:
  // Every refusal met (each directive's first), in file order; the load fails with them all.
  const std::vector<std::string>& refusals() const { return refusals_; }

 private:

  // ---- the walk ----

  void walk(const std::vector<ConfDirective>& directives, Frame& frame) {
    for (const ConfDirective& d : directives) {
      if (d.error) throw ConfFailure{"[emerg] " + *d.error};
      try {
        dispatch(d, frame);
      } catch (const ConfRefusal& refusal) {
        // The walk goes on without it (and its block), to name the others too.
        refusals_.push_back(refusal.line);
      }
    }
  }

  void dispatch(const ConfDirective& d, Frame& frame) {
    if (frame.ctx == kTypes) return typeEntry(d, frame);
    bool found = false;
    for (const Command& cmd : commands()) {
      if (cmd.name != d.name) continue;
      found = true;
      if (!(cmd.contexts & frame.ctx)) continue;
      if (!cmd.block && d.hasBlock) {
        emerg(d, "directive " + quote(d.name) + " is not terminated by \";\"");
      }
      if (cmd.block && !d.hasBlock) emerg(d, "directive " + quote(d.name) + " has no opening \"{\"");
      if (!argsOk(cmd.args, d.args.size())) {
        emerg(d, "invalid number of arguments in " + quote(d.name) + " directive");
      }
      if (cmd.handler) {
        (this->*cmd.handler)(d, frame);
      } else {
        DirectiveCall moduleCall = call(d, frame.ctx);
        if (frame.location) {
          moduleCall.setLocation(&frame.location->match, &frame.location->pattern);
        }
        cmd.moduleApply(*this, moduleCall, *frame.level);
      }
      return;
    }
    if (found) emerg(d, quote(d.name) + " directive is not allowed here");
    if (isUnsupportedNginxDirective(d.name)) {
      std::string instead = nginxDirectiveAlternative(d.name);
      if (!instead.empty()) {
        refuse(d, quote(d.name) + " directive is not supported by portico (instead: " + instead +
                      ")");
      }
      unsupported(d, quote(d.name) + " directive");
    }
    emerg(d, "unknown directive " + quote(d.name));
  }

  // ---- value helpers ----

  std::string fullName(const std::string& path) const {
    return prefixedPath(options_.prefix, path);
  }

  template <class T>
  void checkUnset(const ConfDirective& d, const std::optional<T>& slot) {
    if (slot) directiveError(d, "is duplicate");
  }

  bool parseFlag(const ConfDirective& d) {
    const std::string& v = d.args[0];
    if (iequals(v, "on")) return true;
    if (iequals(v, "off")) return false;
    emerg(d, "invalid value " + quote(v) + " in " + quote(d.name) +
                 " directive, it must be \"on\" or \"off\"");
  }
  void setFlag(const ConfDirective& d, std::optional<bool>& slot) {
    checkUnset(d, slot);
    slot = parseFlag(d);
  }
  void setMsec(const ConfDirective& d, std::optional<double>& slot) {
    checkUnset(d, slot);
    auto ms = parseNginxTime(d.args[0], false);
    if (!ms) directiveError(d, "invalid value");
    slot = static_cast<double>(*ms) / 1000.0;
  }
  void setSize(const ConfDirective& d, std::optional<uint64_t>& slot, bool offset) {
    checkUnset(d, slot);
    auto v = offset ? parseNginxOffset(d.args[0]) : parseNginxSize(d.args[0]);
    if (!v) directiveError(d, "invalid value");
    slot = static_cast<uint64_t>(*v);
  }
  int64_t number(const ConfDirective& d, const std::string& text) {
    auto v = parseNginxNumber(text);
    if (!v) directiveError(d, "invalid number");
    return *v;
  }
  // ngx_conf_set_enum_slot: one of `choices`, else "invalid value" (logged at warn, fatal).
  size_t enumValue(const ConfDirective& d, std::initializer_list<std::string_view> choices) {
    size_t i = 0;
    for (std::string_view c : choices) {
      if (iequals(d.args[0], c)) return i;
      ++i;
    }
    emerg(d, "invalid value " + quote(d.args[0]));
  }
  // A DirectiveCall for the walker's own directives, for the value readers modules use too.
  DirectiveCall call(const ConfDirective& d, unsigned ctx = kMain) {
    return DirectiveCall(d, ctx, options_.prefix, confPrefix_, result_.messages);
  }
  void compileRegex(const ConfDirective& d, const std::string& pattern, bool caseless) {
    call(d).checkRegex(pattern, caseless);
  }

  // ---- main context ----

  void user(const ConfDirective& d, Frame&) {
    if (userSet_) directiveError(d, "is duplicate");
    userSet_ = true;
    config_.user = d.args[0];
    config_.group = d.args.size() == 2 ? d.args[1] : d.args[0];
    if (::geteuid() != 0) {
      warn(d, "the \"user\" directive makes sense only if the master process runs with "
              "super-user privileges, ignored");
      config_.user.clear();
      config_.group.clear();
      return;
    }
    if (::getpwnam(config_.user.c_str()) == nullptr) {
      emerg(d, "getpwnam(" + quote(config_.user) + ") failed");
    }
    if (::getgrnam(config_.group.c_str()) == nullptr) {
      emerg(d, "getgrnam(" + quote(config_.group) + ") failed");
    }
  }

  void workerProcesses(const ConfDirective& d, Frame&) {
    if (workersSet_) directiveError(d, "is duplicate");
    workersSet_ = true;
    if (d.args[0] == "auto") {
      config_.workers = 0;
      return;
    }
    auto n = parseNginxNumber(d.args[0]);
    if (!n || *n > 1024) directiveError(d, "invalid value");
    config_.workers = static_cast<int>(*n);
  }

  // nginx's ngx_set_cpu_affinity: `auto [MASK]` or one MASK per worker; a mask is 0s and 1s,
  // the last character CPU 0 (spaces skipped), at most CPU_SETSIZE (1024) characters.
  void workerCpuAffinity(const ConfDirective& d, Frame&) {
    if (cpuAffinitySet_) directiveError(d, "is duplicate");
    cpuAffinitySet_ = true;
    size_t first = 0;
    if (d.args[0] == "auto") {
      if (d.args.size() > 2) emerg(d, "invalid number of arguments in \"worker_cpu_affinity\" directive");
      config_.cpuAffinityAuto = true;
      first = 1;
    }
    for (size_t n = first; n < d.args.size(); ++n) {
      const std::string& text = d.args[n];
      if (text.size() > kCpuSetSize) {
        emerg(d, "\"worker_cpu_affinity\" supports up to " + std::to_string(kCpuSetSize) + " CPUs only");
      }
      std::vector<int> cpus;
      int cpu = 0;
      for (auto it = text.rbegin(); it != text.rend(); ++it) {
        if (*it == ' ') continue;
        if (*it == '1') cpus.push_back(cpu);
        else if (*it != '0') emerg(d, "invalid character \"" + std::string(1, *it) + "\" in \"worker_cpu_affinity\"");
        ++cpu;
      }
      config_.cpuAffinityMasks.push_back(std::move(cpus));
    }
  }

  void pid(const ConfDirective& d, Frame&) {
    if (pidSet_) directiveError(d, "is duplicate");
    pidSet_ = true;
    config_.pidFile = fullName(d.args[0]);
  }

  void daemon(const ConfDirective& d, Frame&) {
    if (daemonSet_) directiveError(d, "is duplicate");
    daemonSet_ = true;
    if (parseFlag(d)) unsupported(d, "\"daemon on\" (portico stays in the foreground)");
  }

  // error_log FILE|stderr [LEVEL]: nginx's target and level (ngx_log_set_log, _set_levels).
  ErrorLogSpec parseErrorLog(const ConfDirective& d) {
    const std::string& target = d.args[0];
    if (startsWith(target, "syslog:") || startsWith(target, "memory:")) {
      unsupported(d, "the " + quote(target.substr(0, target.find(':') + 1)) + " log target");
    }
    ErrorLogSpec spec;
    spec.path = target == "stderr" ? "-" : fullName(target);
    spec.level = LogLevel::kError;  // nginx's default level
    // portico has five levels: notice counts as info, alert and emerg as crit.
    static const std::pair<std::string_view, LogLevel> kLevels[] = {
        {"debug", LogLevel::kDebug},   {"info", LogLevel::kInfo},
        {"notice", LogLevel::kNotice}, {"warn", LogLevel::kWarning},
        {"error", LogLevel::kError},   {"crit", LogLevel::kCritical},
        {"alert", LogLevel::kAlert},   {"emerg", LogLevel::kEmerg},
    };
    for (size_t i = 1; i < d.args.size(); ++i) {
      bool ok = false;
      for (const auto& [name, level] : kLevels) {
        if (d.args[i] == name) {
          if (i > 1) emerg(d, "duplicate log level " + quote(d.args[i]));
          spec.level = level;
          ok = true;
        }
      }
      if (!ok) emerg(d, "invalid log level " + quote(d.args[i]));
    }
    return spec;
  }

  void errorLog(const ConfDirective& d, Frame& frame) {
    if (frame.ctx != kMain) {
      // http, server, location: the requests of that level log here instead (all of the
      // level's error_logs, each with its level).
      ErrorLogSpec spec = parseErrorLog(d);
      if (!frame.level->errorLogs) frame.level->errorLogs.emplace();
      frame.level->errorLogs->push_back(spec);
      return;
    }
    if (errorLogSet_) unsupported(d, "more than one " + quote(d.name) + " directive");
    errorLogSet_ = true;
    ErrorLogSpec spec = parseErrorLog(d);
    config_.errorLogFile = spec.path;
    config_.logLevel = spec.level;
  }

  void include(const ConfDirective& d, Frame& frame) {
    if (includeDepth_ >= ConfLoader::kMaxIncludeDepth) {
      emerg(d, "include nesting deeper than " + std::to_string(ConfLoader::kMaxIncludeDepth) +
                   " levels (an include loop?)");
    }
    std::vector<std::string> paths;
    std::string error;
    if (!loader_.expandInclude(d.args[0], confPrefix_, paths, error)) emerg(d, error);
    for (const std::string& path : paths) {
      std::string text;
      bool readFailed = false;
      if (!loader_.readFile(path, text, error, &readFailed)) {
        if (readFailed) throw ConfFailure{"[crit] " + error};
        emerg(d, error);
      }
      ++includeDepth_;
      walk(parseConf(text, path), frame);
      --includeDepth_;
    }
  }

  void events(const ConfDirective& d, Frame&) {
    if (eventsSeen_) directiveError(d, "is duplicate");
    eventsSeen_ = true;
    Frame inner;
    inner.ctx = kEvents;
    walk(d.children, inner);
  }

  void workerConnections(const ConfDirective& d, Frame&) {
    if (workerConnectionsSet_) directiveError(d, "is duplicate");
    workerConnectionsSet_ = true;
    auto n = parseNginxNumber(d.args[0]);
    if (!n || *n > 1 << 24) emerg(d, "invalid number " + quote(d.args[0]));
    config_.workerConnections = static_cast<int>(*n);
  }

  void multiAccept(const ConfDirective& d, Frame&) {
    if (multiAcceptSet_) directiveError(d, "is duplicate");
    multiAcceptSet_ = true;
    config_.multiAccept = parseFlag(d);
  }

  void use(const ConfDirective& d, Frame&) {
    static const std::set<std::string> kKnown = {"select", "poll", "kqueue", "devpoll",
                                                 "eventport", "epoll"};
    if (d.args[0] == "epoll") return;
    if (kKnown.count(d.args[0])) unsupported(d, "\"use " + d.args[0] + "\"");
    emerg(d, "invalid event type " + quote(d.args[0]));
  }

  // ---- http ----

  void http(const ConfDirective& d, Frame&) {
    if (httpSeen_) directiveError(d, "is duplicate");
    httpSeen_ = true;
    httpSource_ = d.source;
    httpSource_.line = d.endLine;  // where nginx stands when it merges the servers
    Frame inner;
    inner.ctx = kHttp;
    inner.level = &http_;
    walk(d.children, inner);
    finishHttp();
  }

  void server(const ConfDirective& d, Frame& frame) {
    ServerDraft& draft = servers_.emplace_back();
    draft.server.source = d.source;
    Frame inner;
    inner.ctx = kServer;
    inner.level = &draft.partial;
    inner.server = &draft;
    walk(d.children, inner);
    if (draft.server.listens.empty()) {
      // nginx: `listen *:80` when started as root, *:8000 otherwise.
      ListenSpec spec;
      spec.port = ::getuid() == 0 ? 80 : 8000;
      spec.spec = "*:" + std::to_string(spec.port);
      spec.source = d.source;
      registerListen(d, draft, spec);
    }
  }

  // `upstream NAME { ... }`: a frame whose directives are the upstream module's.
  void upstream(const ConfDirective& d, Frame& frame) {
    DirectiveCall blockCall = call(d, kHttp);
    beginUpstreamBlock(blockCall, upstreamLoad_);
    Frame inner;
    inner.ctx = kUpstream;
    inner.level = frame.level;  // unused by the upstream module's rows
    walk(d.children, inner);
    endUpstreamBlock(blockCall, upstreamLoad_);
  }

  void serverNamesHashBucketSize(const ConfDirective& d, Frame&) {
    if (serverNamesHashSet_) directiveError(d, "is duplicate");
    serverNamesHashSet_ = true;
    auto v = parseNginxSize(d.args[0]);
    if (!v) directiveError(d, "invalid value");
    site_.serverNamesHashBucketSize = static_cast<size_t>(*v);
  }

  // ---- http_core: types ----

  void typesHashMaxSize(const ConfDirective& d, Frame& f) {
    checkUnset(d, f.level->typesHashMaxSize);
    f.level->typesHashMaxSize = number(d, d.args[0]);
    if (f.ctx == kHttp) site_.typesHashMaxSize = static_cast<size_t>(*f.level->typesHashMaxSize);
  }

  void types(const ConfDirective& d, Frame& f) {
    if (!f.level->types) f.level->types.emplace();
    Frame inner;
    inner.ctx = kTypes;
    inner.types = &*f.level->types;
    walk(d.children, inner);
  }

  // A line inside `types { }`: TYPE EXTENSION...; (or `include FILE;`).
  void typeEntry(const ConfDirective& d, Frame& f) {
    if (d.hasBlock) emerg(d, "unexpected \"{\"");
    if (d.name == "include") {
      if (d.args.size() != 1) emerg(d, "invalid number of arguments in \"include\" directive");
      return include(d, f);
    }
    for (const std::string& raw : d.args) {
      std::string ext = lower(raw);
      auto it = f.types->find(ext);
      if (it != f.types->end()) {
        warn(d, "duplicate extension " + quote(ext) + ", content type: " + quote(d.name) +
                    ", previous content type: " + quote(it->second));
      }
      (*f.types)[ext] = d.name;
    }
  }

  // error_log_format text|json (portico's): the error log's lines as nginx writes them, or one
  // JSON object each (time, level, pid, message) for log collectors.
  void errorLogFormat(const ConfDirective& d, Frame&) {
    if (errorLogFormatSet_) directiveError(d, "is duplicate");
    errorLogFormatSet_ = true;
    if (d.args[0] == "json") {
      config_.jsonLogs = true;
    } else if (d.args[0] != "text") {
      directiveError(d, "invalid value " + quote(d.args[0]) + " (text or json)");
    }
  }

  void workerShutdownTimeout(const ConfDirective& d, Frame&) {
    if (shutdownTimeoutSet_) directiveError(d, "is duplicate");
    shutdownTimeoutSet_ = true;
    auto ms = parseNginxTime(d.args[0], false);
    if (!ms) directiveError(d, "invalid value");
    config_.workerShutdownTimeoutSeconds = static_cast<double>(*ms) / 1000.0;
    // The graceful stop (SIGQUIT, reload's old workers) closes what is still open after it.
    if (*ms > 0) config_.gracefulTimeoutSeconds = config_.workerShutdownTimeoutSeconds;
  }

  // ---- the rewrite module's `if` block ----

  // `if (COND) { ... }` (the rewrite module parses COND): a step of the level's program whose
  // body is the program the block writes; in a location the block is also an implicit location
  // (add_header, root, ... apply when COND held).
  void ifDirective(const ConfDirective& d, Frame& f) {
    RewriteStep step = rewriteIf(call(d, f.ctx));
    Frame inner;
    inner.server = f.server;
    inner.location = f.location;
    if (f.ctx == kServer) {
      inner.ctx = kServerIf;
      inner.level = &serverIfPartials_.emplace_back();
    } else {
      inner.ctx = kLocationIf;
      step.ifSettings = std::make_shared<LocationSettings>();
      inner.level = &ifPartials_[step.ifSettings.get()];
    }
    walk(d.children, inner);
    step.body = std::move(inner.level->rewrite.steps);
    inner.level->rewrite.steps.clear();
    f.level->rewrite.steps.push_back(std::move(step));
  }

  // The merged settings of each `if` of a level: the level's (merged) Partial with what the
  // block set, as nginx merges the implicit location under its location.
  void finishIfBlocks(LocationSettings& settings, const Partial& merged) {
    for (RewriteStep& step : settings.rewrites) {
      if (step.kind != RewriteStep::Kind::kIf || !step.ifSettings) continue;
      Partial p = ifPartials_[step.ifSettings.get()];
      mergeFrom(p, merged);
      *step.ifSettings = finalize(p);
      inheritContent(*step.ifSettings, settings);
    }
  }

  // An implicit location (`if`, `limit_except`) with a proxy_pass or uwsgi_pass of its own
  // serves with it (nginx sets the block's handler); otherwise the enclosing location's content
  // stays (nginx keeps r->content_handler, and the upstream modules' merge hands a noname
  // location its parent's pass). *_pass is never merged, so what `block` holds is its own.
  static void inheritContent(LocationSettings& block, const LocationSettings& enclosing) {
    if (block.proxy.pass || block.uwsgi.pass) {
      block.ownContent = true;
      block.wsgi.reset();
      return;
    }
    block.wsgi = enclosing.wsgi;
    block.proxy.pass = enclosing.proxy.pass;
    block.uwsgi.pass = enclosing.uwsgi.pass;
  }

  // ---- limit_except ----

  // `limit_except METHOD... { }` (ngx_http_core_limit_except): the methods named (GET brings
  // HEAD) are served by the location; any other is served by the block, an implicit location
  // merged under it, which holds access rules (allow, deny, auth_basic), access_log or a
  // proxy_pass.
  void limitExcept(const ConfDirective& d, Frame& f) {
    static constexpr std::string_view kMethods[] = {
        "GET", "HEAD", "POST", "PUT", "DELETE", "MKCOL", "COPY", "MOVE", "OPTIONS",
        "PROPFIND", "PROPPATCH", "LOCK", "UNLOCK", "PATCH"};
    LocationDraft& loc = *f.location;
    if (loc.limitExcept) directiveError(d, "is duplicate");
    std::vector<std::string> allowed;
    for (const std::string& arg : d.args) {
      auto it = std::find_if(std::begin(kMethods), std::end(kMethods),
                             [&](std::string_view m) { return iequals(m, arg); });
      if (it == std::end(kMethods)) emerg(d, "invalid method " + quote(arg));
      allowed.emplace_back(*it);
    }
    if (std::find(allowed.begin(), allowed.end(), "GET") != allowed.end()) {
      allowed.emplace_back("HEAD");
    }
    loc.limitExcept.emplace();
    loc.limitExceptAllowed = std::move(allowed);
    Frame inner;
    inner.ctx = kLimitExcept;
    inner.level = &*loc.limitExcept;
    inner.server = f.server;
    inner.location = f.location;
    walk(d.children, inner);
  }

  // ---- the map module ----

  // The keys a map has so far, for nginx's conflict checks (ngx_hash_add_key).
  struct MapKeys {
    std::set<std::string> exact, head, tail;
  };

  void map(const ConfDirective& d, Frame&) {
    MapSpec spec;
    spec.source = d.source;
    spec.sourceValue = d.args[0];
    if (d.args[1].empty() || d.args[1][0] != '$') {
      emerg(d, "invalid variable name " + quote(d.args[1]));
    }
    spec.variable = d.args[1].substr(1);
    MapKeys keys;
    mapEntries(d.children, spec, keys);
    checkMapHash(keys);
    site_.maps.push_back(std::move(spec));
  }

  void mapEntries(const std::vector<ConfDirective>& entries, MapSpec& spec, MapKeys& keys) {
    for (const ConfDirective& e : entries) {
      if (e.error) throw ConfFailure{"[emerg] " + *e.error};
      if (e.hasBlock) emerg(e, "unexpected \"{\"");
      if (e.args.empty() && e.name == "hostnames") {
        spec.hostnames = true;
        continue;
      }
      if (e.args.empty() && e.name == "volatile") {
        spec.isVolatile = true;
        continue;
      }
      if (e.args.size() != 1) emerg(e, "invalid number of the map parameters");
      if (e.name == "include") {
        mapInclude(e, spec, keys);
        continue;
      }
      if (e.name == "default") {
        if (spec.defaultValue) emerg(e, "duplicate default map parameter");
        spec.defaultValue = e.args[0];
        continue;
      }
      MapSpec::Entry entry;
      entry.key = e.name;
      entry.value = e.args[0];
      entry.source = e.source;
      if (!entry.key.empty() && entry.key[0] == '~') {
        entry.key.erase(0, 1);
        if (!entry.key.empty() && entry.key[0] == '*') {
          entry.key.erase(0, 1);
          entry.caseless = true;
        }
        entry.regex = true;
        compileRegex(e, entry.key, entry.caseless);
      } else {
        if (!entry.key.empty() && entry.key[0] == '\\') entry.key.erase(0, 1);
        addMapKey(e, spec.hostnames, entry.key, keys);
      }
      spec.entries.push_back(std::move(entry));
    }
  }

  void mapInclude(const ConfDirective& d, MapSpec& spec, MapKeys& keys) {
    std::vector<std::string> paths;
    std::string error;
    if (!loader_.expandInclude(d.args[0], confPrefix_, paths, error)) emerg(d, error);
    for (const std::string& path : paths) {
      std::string text;
      bool readFailed = false;
      if (!loader_.readFile(path, text, error, &readFailed)) {
        if (readFailed) throw ConfFailure{"[crit] " + error};
        emerg(d, error);
      }
      if (includeDepth_ >= ConfLoader::kMaxIncludeDepth) {
        emerg(d, "include nesting deeper than " + std::to_string(ConfLoader::kMaxIncludeDepth) +
                     " levels (an include loop?)");
      }
      ++includeDepth_;
      mapEntries(parseConf(text, path), spec, keys);
      --includeDepth_;
    }
  }

  // ngx_hash_add_key: exact keys (case-insensitive), and with `hostnames` the wildcards
  // "*.example.com", ".example.com" (also example.com itself) and "www.example.*".
  void addMapKey(const ConfDirective& d, bool hostnames, const std::string& raw, MapKeys& keys) {
    std::string key = lower(raw);
    auto conflict = [&] { emerg(d, "conflicting parameter " + quote(key)); };
    if (hostnames) {
      int stars = 0;
      for (size_t i = 0; i < key.size(); ++i) {
        if ((key[i] == '*' && ++stars > 1) || key[i] == '\0' ||
            (key[i] == '.' && i + 1 < key.size() && key[i + 1] == '.')) {
          emerg(d, "invalid hostname or wildcard " + quote(raw));
        }
      }
      if (key.size() > 1 && key[0] == '.') {
        std::string base = key.substr(1);
        if (keys.exact.count(base) || keys.head.count(base)) conflict();
        keys.exact.insert(base);
        keys.head.insert(base);
        return;
      }
      if (key.size() > 2 && startsWith(key, "*.")) {
        if (!keys.head.insert(key.substr(2)).second) conflict();
        return;
      }
      if (key.size() > 2 && key.compare(key.size() - 2, 2, ".*") == 0) {
        if (!keys.tail.insert(key.substr(0, key.size() - 2)).second) conflict();
        return;
      }
      if (stars) emerg(d, "invalid hostname or wildcard " + quote(raw));
    }
    if (!keys.exact.insert(key).second) conflict();
  }

  void mapHashMaxSize(const ConfDirective& d, Frame&) {
    if (mapHashMaxSize_) directiveError(d, "is duplicate");
    mapHashMaxSize_ = static_cast<uint64_t>(number(d, d.args[0]));
  }

  void mapHashBucketSize(const ConfDirective& d, Frame&) {
    if (mapHashBucketSize_) directiveError(d, "is duplicate");
    auto v = parseNginxSize(d.args[0]);
    if (!v) directiveError(d, "invalid value");
    mapHashBucketSize_ = static_cast<uint64_t>(*v);
  }

  // ngx_hash_init's checks on a map's exact keys with map_hash_bucket_size (rounded up to
  // the cache line, 64) and map_hash_max_size, as nginx reports them (through the cycle's
  // log: no "in FILE:LINE").
  void checkMapHash(const MapKeys& keys) {
    auto fail = [](const std::string& text) { throw ConfFailure{"[emerg] " + text}; };
    constexpr uint64_t kCacheLine = 64;
    uint64_t maxSize = mapHashMaxSize_.value_or(2048);
    uint64_t bucket = mapHashBucketSize_ ? (*mapHashBucketSize_ + kCacheLine - 1) / kCacheLine *
                                               kCacheLine
                                         : kCacheLine;
    if (keys.exact.empty()) return;
    if (maxSize == 0) {
      fail("could not build map_hash, you should increase map_hash_max_size: 0");
    }
    auto eltSize = [](size_t len) -> uint64_t { return (sizeof(void*) + len + 2 + 7) / 8 * 8; };
    if (bucket > 65536 - kCacheLine) {
      fail("could not build map_hash, too large map_hash_bucket_size: " + std::to_string(bucket));
    }
    std::vector<std::pair<uint64_t, uint64_t>> elts;  // (hash, element size)
    for (const std::string& key : keys.exact) {
      if (bucket < eltSize(key.size()) + sizeof(void*)) {
        fail("could not build map_hash, you should increase map_hash_bucket_size: " +
             std::to_string(bucket));
      }
      uint64_t hash = 0;
      for (char c : key) hash = hash * 31 + static_cast<unsigned char>(c);
      elts.emplace_back(hash, eltSize(key.size()));
    }
    uint64_t usable = bucket - sizeof(void*);
    uint64_t start = elts.size() / (usable / (2 * sizeof(void*)));
    if (start == 0) start = 1;
    if (maxSize > 10000 && maxSize / elts.size() < 100) start = maxSize - 1000;
    for (uint64_t size = start; size <= maxSize; ++size) {
      std::vector<uint64_t> test(size, 0);
      bool fits = true;
      for (const auto& [hash, len] : elts) {
        uint64_t& slot = test[hash % size];
        if (slot + len > usable) {
          fits = false;
          break;
        }
        slot += len;
      }
      if (fits) return;
    }
    result_.messages.push_back(
        "[warn] could not build optimal map_hash, you should increase either "
        "map_hash_max_size: " + std::to_string(maxSize) + " or map_hash_bucket_size: " +
        std::to_string(bucket) + "; ignoring map_hash_bucket_size");
  }

  // ---- server ----

  // nginx's address text for an address:port ("0.0.0.0:80", "[::]:8080", "unix:/run/x").
  static std::string addressText(const ListenSpec& spec) {
    if (spec.isUnix) return "unix:" + spec.path;
    std::string host = spec.host.empty() ? "0.0.0.0" : spec.host;
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    return host + ":" + std::to_string(spec.port);
  }

  // A listen port or port range ("8080", "8182-8183"), as ngx_parse_inet_url: the range's
  // ends are ports, the first not above the last; nullopt when the text is not numeric at all.
  struct PortRange {
    uint16_t first = 0;
    uint16_t last = 0;
    const char* error = nullptr;
  };
  static std::optional<PortRange> parsePortRange(std::string_view text) {
    size_t dash = text.find('-');
    auto first = parseNginxNumber(text.substr(0, dash));
    std::optional<int64_t> last = first;
    if (dash != std::string_view::npos) last = parseNginxNumber(text.substr(dash + 1));
    if (!first || !last) return std::nullopt;
    PortRange r;
    if (*first < 1 || *first > 65535 || *last < 1 || *last > 65535) {
      r.error = "invalid port";
    } else if (*first > *last) {
      r.error = "invalid port range";
    } else {
      r.first = static_cast<uint16_t>(*first);
      r.last = static_cast<uint16_t>(*last);
    }
    return r;
  }

  // ngx_parse_url for `listen`: fills host/port/path (and the last port of a range) or returns
  // nginx's error word.
  std::optional<std::string> parseListenAddress(const std::string& text, ListenSpec& spec,
                                                uint16_t& lastPort) {
    if (startsWith(text, "unix:")) {
      spec.isUnix = true;
      spec.path = text.substr(5);
      if (spec.path.empty()) return "no path in the unix domain socket";
      if (spec.path.size() >= sizeof(sockaddr_un::sun_path)) return "too long path in the unix domain socket";
      return std::nullopt;
    }
    std::string host;
    std::string port;
    bool hasPort = false;
    if (startsWith(text, "[")) {
      size_t close = text.find(']');
      if (close == std::string::npos) return "invalid host";
      host = text.substr(1, close - 1);
      std::string rest = text.substr(close + 1);
      if (!rest.empty()) {
        if (rest[0] != ':') return "invalid host";
        port = rest.substr(1);
        hasPort = true;
      }
      in6_addr a6{};
      if (::inet_pton(AF_INET6, host.c_str(), &a6) != 1) return "invalid IPv6 address";
      char buf[INET6_ADDRSTRLEN];
      ::inet_ntop(AF_INET6, &a6, buf, sizeof buf);
      spec.host = buf;
    } else {
      size_t colon = text.rfind(':');
      if (colon != std::string::npos) {
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        hasPort = true;
      } else if (parsePortRange(text)) {
        port = text;
        hasPort = true;
      } else {
        host = text;
      }
      if (host.empty() && colon != std::string::npos) return "no host";
      if (host.empty() || host == "*") {
        spec.host.clear();
      } else {
        in_addr a4{};
        if (::inet_pton(AF_INET, host.c_str(), &a4) == 1) {
          char buf[INET_ADDRSTRLEN];
          ::inet_ntop(AF_INET, &a4, buf, sizeof buf);
          spec.host = buf;
        } else {
          addrinfo hints{};
          hints.ai_family = AF_INET;
          hints.ai_socktype = SOCK_STREAM;
          addrinfo* res = nullptr;
          if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) {
            return "host not found";
          }
          char buf[INET_ADDRSTRLEN];
          ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, buf,
                      sizeof buf);
          ::freeaddrinfo(res);
          spec.host = buf;
        }
        if (spec.host == "0.0.0.0") spec.host.clear();
      }
    }
    if (hasPort) {
      auto range = parsePortRange(port);
      if (!range) return "invalid port";
      if (range->error) return range->error;
      spec.port = range->first;
      lastPort = range->last;
    } else {
      spec.port = lastPort = 80;
    }
    return std::nullopt;
  }

  void listen(const ConfDirective& d, Frame& f) {
    ListenSpec spec;
    spec.spec = d.args[0];
    spec.source = d.source;
    uint16_t lastPort = 0;
    if (auto err = parseListenAddress(d.args[0], spec, lastPort)) {
      emerg(d, *err + " in " + quote(d.args[0]) + " of the \"listen\" directive");
    }
    bool optionsSet = false;
    static const std::set<std::string> kNotYet = {
        "http2", "quic", "spdy", "deferred", "accept_filter",
        "fastopen", "ipv6only", "so_keepalive", "setfib"};
    for (size_t i = 1; i < d.args.size(); ++i) {
      const std::string& p = d.args[i];
      if (p == "default_server" || p == "default") {
        spec.defaultServer = true;
      } else if (p == "reuseport") {
        spec.reuseport = true;
        optionsSet = true;
      } else if (p == "bind") {
        optionsSet = true;
      } else if (p == "ssl") {
        spec.ssl = true;
      } else if (p == "proxy_protocol") {
        spec.proxyProtocol = true;  // not a socket option: it does not bind (nginx)
      } else if (p == "uwsgi") {
        spec.uwsgi = true;  // portico's own: the address speaks uwsgi to a front server
      } else if (startsWith(p, "backlog=")) {
        auto n = parseNginxNumber(std::string_view(p).substr(8));
        if (!n || *n == 0 || *n > 65535) emerg(d, "invalid backlog " + quote(p));
        spec.backlog = static_cast<int>(*n);
        optionsSet = true;
      } else if (startsWith(p, "rcvbuf=") || startsWith(p, "sndbuf=")) {
        // ngx_http_core_listen: a size (k, m), and a socket option, so it binds.
        auto n = parseNginxSize(std::string_view(p).substr(7));
        if (!n || *n > INT32_MAX) emerg(d, "invalid " + p.substr(0, 6) + " " + quote(p));
        (p[0] == 'r' ? spec.rcvbuf : spec.sndbuf) = *n;
        optionsSet = true;
      } else if (kNotYet.count(p.substr(0, p.find('=')))) {
        unsupported(d, "the " + quote(p.substr(0, p.find('='))) +
                           " parameter of the \"listen\" directive");
      } else {
        emerg(d, "invalid parameter " + quote(p));
      }
    }
    if (spec.isUnix && spec.reuseport) {
      // nginx accepts it and ignores it for unix sockets on Linux; portico says so.
      warn(d, "reuseport is ignored for unix sockets");
      spec.reuseport = false;
    }
    spec.bind = optionsSet;  // as ngx_http_core_listen: every option but default_server binds
    if (spec.isUnix) {
      spec.port = 0;
      registerListen(d, *f.server, spec, optionsSet);
      return;
    }
    // A port range is one listen per port, each checked as if written on its own (nginx 1.22).
    for (uint32_t port = spec.port; port <= lastPort; ++port) {
      ListenSpec one = spec;
      one.port = static_cast<uint16_t>(port);
      if (lastPort != spec.port) one.spec = addressText(one);  // messages name the one port
      registerListen(d, *f.server, one, optionsSet);
    }
  }

  // Checks one address across servers (nginx's ngx_http_add_listen/add_server) and records it.
  void registerListen(const ConfDirective& d, ServerDraft& draft, ListenSpec spec,
                      bool optionsSet = false) {
    std::string addr = addressText(spec);
    AddressState& state = addresses_[addr];
    for (ServerDraft* s : state.servers) {
      if (s == &draft) emerg(d, "a duplicate listen " + addr);
    }
    if (optionsSet && state.optionsSet) emerg(d, "duplicate listen options for " + addr);
    if (spec.defaultServer && state.hasDefault) emerg(d, "a duplicate default server for " + addr);
    state.ssl |= spec.ssl;
    state.uwsgi |= spec.uwsgi;
    if (state.ssl && state.uwsgi) {
      // The front server terminates TLS; what reaches a uwsgi address is plain uwsgi.
      emerg(d, "the \"uwsgi\" and \"ssl\" parameters of the \"listen\" directive cannot "
               "both apply to " + addr);
    }
    state.optionsSet |= optionsSet;
    state.hasDefault |= spec.defaultServer;
    state.servers.push_back(&draft);
    draft.server.listens.push_back(spec);
  }

  void serverName(const ConfDirective& d, Frame& f) {
    ServerDraft& draft = *f.server;
    if (!draft.namesSet) draft.server.serverNames.clear();
    draft.namesSet = true;
    for (const std::string& name : d.args) {
      char ch = name.empty() ? '\0' : name[0];
      if ((ch == '*' && (name.size() < 3 || name[1] != '.')) || (ch == '.' && name.size() < 2)) {
        emerg(d, "server name " + quote(name) + " is invalid");
      }
      if (name.find('/') != std::string::npos) {
        warn(d, "server name " + quote(name) + " has suspicious symbols");
      }
      if (ch == '~') {
        compileRegex(d, name.substr(1), true);
        draft.server.serverNames.push_back(name);
      } else {
        if (ch == '$') unsupported(d, "a variable in the \"server_name\" directive");
        draft.server.serverNames.push_back(lower(name));
      }
    }
  }

  void location(const ConfDirective& d, Frame& f) {
    LocationDraft loc;
    loc.source = d.source;
    std::string name;
    using Match = Location::Match;
    if (d.args.size() == 2) {
      const std::string& mod = d.args[0];
      name = d.args[1];
      if (mod == "=") {
        loc.match = Match::kExact;
      } else if (mod == "^~") {
        loc.match = Match::kPrefixNoRegex;
      } else if (mod == "~") {
        loc.match = Match::kRegex;
      } else if (mod == "~*") {
        loc.match = Match::kRegexCaseless;
      } else {
        emerg(d, "invalid location modifier " + quote(mod));
      }
    } else {
      name = d.args[0];
      if (startsWith(name, "=")) {
        loc.match = Match::kExact;
        name = name.substr(1);
      } else if (startsWith(name, "^~")) {
        loc.match = Match::kPrefixNoRegex;
        name = name.substr(2);
      } else if (startsWith(name, "~")) {
        name = name.substr(1);
        loc.match = Match::kRegex;
        if (startsWith(name, "*")) {
          name = name.substr(1);
          loc.match = Match::kRegexCaseless;
        }
      } else if (startsWith(name, "@")) {
        loc.match = Match::kNamed;
      }
    }
    loc.pattern = name;
    bool regex = loc.match == Match::kRegex || loc.match == Match::kRegexCaseless;
    if (regex) compileRegex(d, name, loc.match == Match::kRegexCaseless);
    std::vector<LocationDraft>* siblings = &f.server->locations;
    if (f.location) {
      const LocationDraft& parent = *f.location;
      const std::string& parentName = parent.pattern;
      if (parent.match == Match::kExact) {
        emerg(d, "location " + quote(name) + " cannot be inside the exact location " +
                     quote(parentName));
      }
      if (parent.match == Match::kNamed) {
        emerg(d, "location " + quote(name) + " cannot be inside the named location " +
                     quote(parentName));
      }
      if (loc.match == Match::kNamed) {
        emerg(d, "named location " + quote(name) + " can be on the server level only");
      }
      if (!regex && name.compare(0, parentName.size(), parentName) != 0) {
        emerg(d, "location " + quote(name) + " is outside location " + quote(parentName));
      }
      siblings = &f.location->children;
    }
    LocationDraft& placed = siblings->emplace_back(std::move(loc));
    Frame inner;
    inner.ctx = kLocation;
    inner.level = &placed.partial;
    inner.server = f.server;
    inner.location = &placed;
    walk(d.children, inner);
    finishLocation(placed);
  }

  void finishLocation(LocationDraft& loc) { checkWsgi(loc.partial.wsgi); }

  // ---- the end of http: nginx's location checks, then the merge ----

  // Two locations of one level with the same prefix (or the same exact URI) are an error,
  // reported at the later one, as ngx_http_join_exact_locations does.
  void checkDuplicates(const std::vector<LocationDraft>& locations) {
    using Match = Location::Match;
    // Named locations may repeat (nginx accepts it; the first one is used).
    std::map<std::string, const LocationDraft*> exact, inclusive;
    for (const LocationDraft& loc : locations) {
      std::map<std::string, const LocationDraft*>* seen = nullptr;
      if (loc.match == Match::kExact) seen = &exact;
      if (loc.match == Match::kPrefix || loc.match == Match::kPrefixNoRegex) seen = &inclusive;
      if (seen) {
        if (seen->count(loc.pattern)) {
          throw ConfFailure{"[emerg] duplicate location " + quote(loc.pattern) + " in " +
                            describeSource(loc.source)};
        }
        (*seen)[loc.pattern] = &loc;
      }
      checkDuplicates(loc.children);
    }
  }

  LocationSettings finalize(const Partial& p) const {
    LocationSettings s;
    finishHttpCore(p.core, options_.prefix, s);
    finishIndex(p.index, s);
    finishRewrite(p.rewrite, s);
    finishHeaders(p.headers, s);
    // Without a `types` block anywhere above, nginx's own three (ngx_http_core_default_types);
    // the full table is only for the command-line site (site_from_flags).
    s.types = p.types ? *p.types
                      : std::map<std::string, std::string>{
                            {"html", "text/html"}, {"gif", "image/gif"}, {"jpg", "image/jpeg"}};
    finishGzip(p.gzip, s.gzip);
    finishLog(p.log, options_.prefix, s);
    if (p.errorLogs) s.errorLogs = *p.errorLogs;
    finishWsgi(p.wsgi, s.clientBodyTempPath, s);  // the bodies the app reads are spilled there
    s.access = finalizeAccess(p.access, confPrefix_);
    s.limit = finalizeLimit(p.limit);
    finishProxy(p.proxy, s.proxy);
    checkProxyBuffers(s.proxy, httpSource_);  // nginx's merge checks, at the http block's end
    finishUwsgi(p.uwsgiEngine, p.uwsgi, s.uwsgi);
    checkProxyBuffers(s.uwsgi, httpSource_, "uwsgi");
    checkProxySsl(s.uwsgi, httpSource_, "uwsgi");  // suwsgi://'s uwsgi_ssl_* checks
    return s;
  }

  Location finishLocationTree(LocationDraft& draft, const Partial& parent) {
    mergeFrom(draft.partial, parent);
    Location loc;
    loc.match = draft.match;
    loc.pattern = draft.pattern;
    loc.source = draft.source;
    loc.settings = finalize(draft.partial);
    finishIfBlocks(loc.settings, draft.partial);
    if (draft.limitExcept) {
      Partial p = *draft.limitExcept;
      mergeFrom(p, draft.partial);
      auto block = std::make_shared<LocationSettings>(finalize(p));
      inheritContent(*block, loc.settings);
      loc.settings.limitExcept = std::move(block);
      loc.settings.limitExceptAllowed = draft.limitExceptAllowed;
    }
    for (LocationDraft& child : draft.children) {
      loc.children.push_back(finishLocationTree(child, draft.partial));
    }
    return loc;
  }

  // nginx's ngx_http_server_names: the same name twice on one address is a warning, and the
  // first server keeps it.
  void warnConflictingNames() {
    for (const auto& [addr, state] : addresses_) {
      std::set<std::string> seen;
      std::set<const ServerDraft*> visited;
      for (const ServerDraft* draft : state.servers) {
        if (!visited.insert(draft).second) continue;
        for (const std::string& name : draft->server.serverNames) {
          if (!name.empty() && name[0] == '~') continue;
          if (!seen.insert(name).second) {
            result_.messages.push_back("[warn] conflicting server name " + quote(name) + " on " +
                                       addr + ", ignored");
          }
        }
      }
    }
  }

  void finishHttp() {
    finishLimitLoad(limitLoad_, site_);
    finishHttpCoreLoad(httpCoreLoad_, site_);
    for (ServerDraft& draft : servers_) checkDuplicates(draft.locations);
    warnConflictingNames();
    for (ServerDraft& draft : servers_) {
      mergeFrom(draft.partial, http_);
      VirtualServer vs = std::move(draft.server);
      vs.settings = finalize(draft.partial);
      finishIfBlocks(vs.settings, draft.partial);
      finishHttpCoreServer(draft.partial.core, vs);
      finishSsl(draft.partial.ssl, vs);
      // ngx_http_core_merge_srv_conf (reported at the http block's closing brace).
      if (vs.largeHeaderBuffersSize < vs.connectionPoolSize) {
        throw ConfFailure{"[emerg] the \"large_client_header_buffers\" size must be equal to or "
                          "greater than \"connection_pool_size\" in " + describeSource(httpSource_)};
      }
      for (LocationDraft& loc : draft.locations) {
        vs.locations.push_back(finishLocationTree(loc, draft.partial));
      }
      site_.servers.push_back(std::move(vs));
    }
    checkSslAddresses(site_.servers);
    // ngx_http_upstream_init_main_conf: the implicit upstreams the *_pass directives made are
    // resolved now, when every upstream block of the file is known.
    finishUpstreams(site_.upstreams);
    config_.site = std::move(site_);
  }

  // nginx's address bookkeeping for listen checks.
  struct AddressState {
    bool hasDefault = false;
    bool ssl = false;    // `ssl` or `uwsgi` on any listen of the address (ORed, as nginx's ssl)
    bool uwsgi = false;
    bool optionsSet = false;
    std::vector<ServerDraft*> servers;
  };

  const ConfLoadOptions& options_;
  ConfLoader& loader_;
  ConfLoadResult& result_;
  std::vector<std::string> refusals_;  // see refusals()
  Config& config_;
  std::string confPrefix_;
  int includeDepth_ = 0;
  bool userSet_ = false, workersSet_ = false, pidSet_ = false, daemonSet_ = false;
  bool errorLogFormatSet_ = false;
  bool cpuAffinitySet_ = false;
  static constexpr size_t kCpuSetSize = CPU_SETSIZE;
  bool errorLogSet_ = false, eventsSeen_ = false, httpSeen_ = false;
  bool workerConnectionsSet_ = false, multiAcceptSet_ = false, serverNamesHashSet_ = false;
  Partial http_;
  std::deque<ServerDraft> servers_;  // a deque: AddressState keeps pointers to drafts
  HttpSite site_;
  std::map<std::string, AddressState> addresses_;
  LogLoad logLoad_;  // log_format's formats, access_log's buffers
  SourceRef httpSource_;
  bool shutdownTimeoutSet_ = false;
  // The Partial of each `if` block's implicit location, merged at the end of http.
  std::map<const LocationSettings*, Partial> ifPartials_;
  std::deque<Partial> serverIfPartials_;  // what a server-level if sets (nothing that is used)
  std::optional<uint64_t> mapHashMaxSize_, mapHashBucketSize_;
  LimitLoad limitLoad_;  // the limit_* shared memory zones
  HttpCoreLoad httpCoreLoad_;  // the *_temp_path directories
  UpstreamLoad upstreamLoad_;  // the upstream blocks (into site_.upstreams)
};

const std::vector<Builder::Command>& Builder::commands() {
  static const std::vector<Command> kCommands = [] {
    constexpr unsigned kAny = kMain | kEvents | kHttp | kServer | kLocation | kUpstream;
    std::vector<Command> table = {
        {"user", kMain, Args::k12, false, &Builder::user},
        {"worker_processes", kMain, Args::k1, false, &Builder::workerProcesses},
        {"worker_cpu_affinity", kMain, Args::k1More, false, &Builder::workerCpuAffinity},
        {"pid", kMain, Args::k1, false, &Builder::pid},
        {"daemon", kMain, Args::k1, false, &Builder::daemon},
        {"error_log", kMain | kHsl, Args::k1More, false, &Builder::errorLog},
        {"error_log_format", kMain, Args::k1, false, &Builder::errorLogFormat},
        {"include", kAny | kServerIf | kLocationIf | kLimitExcept, Args::k1, false,
         &Builder::include},
        {"limit_except", kLocation, Args::k1More, true, &Builder::limitExcept},
        {"events", kMain, Args::kNone, true, &Builder::events},
        {"worker_connections", kEvents, Args::k1, false, &Builder::workerConnections},
        {"multi_accept", kEvents, Args::k1, false, &Builder::multiAccept},
        {"use", kEvents, Args::k1, false, &Builder::use},
        {"http", kMain, Args::kNone, true, &Builder::http},
        {"server", kHttp, Args::kNone, true, &Builder::server},
        {"upstream", kHttp, Args::k1, true, &Builder::upstream},
        {"server_names_hash_bucket_size", kHttp, Args::k1, false,
         &Builder::serverNamesHashBucketSize},
        {"types_hash_max_size", kHsl, Args::k1, false, &Builder::typesHashMaxSize},
        {"types", kHsl, Args::kNone, true, &Builder::types},
        {"worker_shutdown_timeout", kMain, Args::k1, false, &Builder::workerShutdownTimeout},
        {"listen", kServer, Args::k1More, false, &Builder::listen},
        {"server_name", kServer, Args::k1More, false, &Builder::serverName},
        {"location", kServer | kLocation, Args::k12, true, &Builder::location},
        {"if", kServer | kLocation, Args::k1More, true, &Builder::ifDirective},
        {"map", kHttp, Args::k2, true, &Builder::map},
        {"map_hash_max_size", kHttp, Args::k1, false, &Builder::mapHashMaxSize},
        {"map_hash_bucket_size", kHttp, Args::k1, false, &Builder::mapHashBucketSize},
    };
    addModule(table, &Partial::core, &Builder::httpCoreLoad_, httpCoreDirectives());
    addModule(table, &Partial::rewrite, rewriteDirectives());
    addModule(table, &Partial::ssl, sslDirectives());
    addModule(table, &Partial::gzip, gzipDirectives());
    addModule(table, &Partial::headers, headersDirectives());
    addModule(table, &Partial::wsgi, wsgiDirectives());
    addModule(table, &Partial::access, accessDirectives());
    addModule(table, &Partial::limit, &Builder::limitLoad_, limitDirectives());
    addModule(table, &Partial::proxy, proxyDirectives());
    addModule(table, &Partial::proxy, &Builder::upstreamLoad_, proxyPassDirectives());
    addModule(table, &Partial::uwsgi, uwsgiDirectives());
    addModule(table, &Partial::uwsgiEngine, uwsgiEngineDirectives());
    addModule(table, &Partial::uwsgiEngine, &Builder::upstreamLoad_, uwsgiPassDirectives());
    addModule(table, &Partial::index, indexDirectives());
    addModule(table, &Partial::log, &Builder::logLoad_, logDirectives());
    addModule(table, &Builder::upstreamLoad_, upstreamDirectives());
    return table;
  }();
  return kCommands;
}

}  // namespace

ConfLoadResult loadConf(const ConfLoadOptions& options, ConfLoader& loader) {
  ConfLoadResult result;
  std::vector<std::string> refusals;
  try {
    Builder builder(options, loader, result);
    try {
      builder.run();
      result.ok = true;
    } catch (const ConfFailure&) {
      refusals = builder.refusals();
      if (refusals.empty()) throw;
      // An error after a refusal may come of it (a directive that needed the refused one):
      // the refusals are what to fix first.
    }
    if (result.ok) refusals = builder.refusals();
  } catch (const ConfFailure& failure) {
    result.messages.push_back(failure.line);
    result.ok = false;
  }
  if (!refusals.empty()) {
    result.messages.insert(result.messages.end(), refusals.begin(), refusals.end());
    result.ok = false;
  }
  return result;
}

}  // namespace portico::config
