#pragma once

// The contract between the walker of the nginx-style file (conf_builder.cpp) and the modules
// that own directives, as in nginx: a module owns its directive table (name, contexts, argument
// count, the function that applies one), its per-level settings (a "partial": what one level
// wrote, unset fields inherit), their merge parent→child, and their finalization into the typed
// model (site.h). Adding a directive touches its module's file only. Pure: no I/O beyond what a
// module resolves at load, as nginx does.
//
// A module whose directives also keep state across levels (nginx's main conf: log_format's
// formats, the shared memory zones limit_*_zone declare and limit_req references) declares it
// as a load context L, one per load, which the walker holds and passes to each of its rows
// (ModuleLoadDirective<P, L>) besides the level's partial; the module then finishes it into
// the site. Block directives stay with the walker (the blocks are its frames); where a block
// is a module's (`if`), the module parses its arguments and the walker walks its children.

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/conf_parser.h"
#include "config/site.h"
#include "core/ascii.h"

namespace portico::config {

// The first error ends a load, as in nginx; it travels up to loadConf as this exception.
struct ConfFailure {
  std::string line;  // "[emerg] ... in FILE:LINE"
};

// A directive (or a parameter of one) portico knows and refuses: the load goes on to find the
// others, so that -t names every one in one run.
struct ConfRefusal : ConfFailure {};

// Contexts a directive may appear in (nginx's NGX_MAIN_CONF, NGX_EVENT_CONF, NGX_HTTP_*_CONF).
enum Ctx : unsigned {
  kMain = 1,
  kEvents = 2,
  kHttp = 4,
  kServer = 8,
  kLocation = 16,
  kTypes = 32,
  kServerIf = 64,     // NGX_HTTP_SIF_CONF: inside `if` at the server level
  kLocationIf = 128,  // NGX_HTTP_LIF_CONF: inside `if` in a location
  kUpstream = 256,    // NGX_HTTP_UPS_CONF: inside `upstream NAME { }`
  kLimitExcept = 512, // NGX_HTTP_LMT_CONF: inside `limit_except METHOD... { }` in a location
};
// The rewrite module's directives (rewrite, return, set, break) go wherever `if` may hold them.
constexpr unsigned kRewriteCtx = kServer | kServerIf | kLocation | kLocationIf;
constexpr unsigned kHsl = kHttp | kServer | kLocation;

// nginx's argument-count rules (NGX_CONF_NOARGS, TAKE1, ... 1MORE, 2MORE, FLAG).
enum class Args { kNone, k01, k1, k2, k12, k23, k1More, k2More };

bool argsOk(Args rule, size_t n);

// Words compared as nginx's ngx_strcasecmp does (ASCII, case-insensitive; core/ascii.h).
using portico::iequals;

// "\"TEXT\"", as nginx quotes names and values in its messages.
std::string quote(std::string_view s);

// One directive being applied, as a module sees it: its words, where it stands, and nginx's
// ways of reading values and of refusing them (each refusal throws ConfFailure with
// " in FILE:LINE"). Made by the walker per directive, on the loading thread.
class DirectiveCall {
 public:
  DirectiveCall(const ConfDirective& directive, unsigned ctx, const std::string& prefix,
                const std::string& confPrefix, std::vector<std::string>& messages)
      : directive_(directive), ctx_(ctx), prefix_(prefix), confPrefix_(confPrefix),
        messages_(messages) {}

  const ConfDirective& directive() const { return directive_; }
  const std::string& name() const { return directive_.name; }
  const std::vector<std::string>& args() const { return directive_.args; }
  const std::string& arg(size_t i) const { return directive_.args[i]; }
  unsigned ctx() const { return ctx_; }
  // The innermost location the directive stands in (the walker tells; null outside any), for
  // the few directives that depend on it (wsgi_app's SCRIPT_NAME, say).
  void setLocation(const Location::Match* match, const std::string* pattern) {
    locationMatch_ = match;
    locationPattern_ = pattern;
  }
  const Location::Match* locationMatch() const { return locationMatch_; }
  const std::string& locationPattern() const { return *locationPattern_; }

  // A path relative to nginx's prefix (-p), as most paths are.
  std::string fullName(const std::string& path) const;
  // A path relative to the configuration file's directory (nginx's conf prefix: ssl_*, include).
  std::string confName(const std::string& path) const;

  // ---- refusals and warnings ----
  [[noreturn]] void emerg(const std::string& text) const;
  // `"NAME" directive TEXT` (what an nginx handler returning a string produces).
  [[noreturn]] void directiveError(const std::string& text) const;
  [[noreturn]] void unsupported(const std::string& what) const;  // "... is not supported by portico yet"
  void warn(const std::string& text) const;
  void noVariables(const std::string& value) const;

  // ---- nginx's slot setters (ngx_conf_set_*_slot): a second one at the same level is duplicate ----
  template <class T>
  void checkUnset(const std::optional<T>& slot) const {
    if (slot) directiveError("is duplicate");
  }
  bool flag() const;  // "on" | "off" (first argument)
  void setFlag(std::optional<bool>& slot) const;
  void setMsec(std::optional<double>& slot) const;  // a time in seconds, ms precision
  void setSeconds(std::optional<int64_t>& slot) const;  // ngx_conf_set_sec_slot
  void setSize(std::optional<uint64_t>& slot, bool offset = false) const;
  void setString(std::optional<std::string>& slot) const;
  int64_t number(const std::string& text) const;  // "invalid number" otherwise
  // ngx_conf_set_enum_slot: the index of the first argument among `choices`.
  size_t enumValue(std::initializer_list<std::string_view> choices) const;
  // ngx_conf_set_bufs_slot: `NUMBER SIZE` (the first two arguments).
  std::pair<int, int64_t> bufs() const;
  // A regex nginx would compile at load: pcre2's refusal in nginx's words otherwise.
  void checkRegex(const std::string& pattern, bool caseless) const;

 private:
  const ConfDirective& directive_;
  unsigned ctx_;
  const std::string& prefix_;
  const std::string& confPrefix_;
  std::vector<std::string>& messages_;
  const Location::Match* locationMatch_ = nullptr;
  const std::string* locationPattern_ = nullptr;
};

// One row of a module's directive table: it applies to the module's partial (P) of the level
// (http, server or location) the directive appears in. Block directives stay with the walker.
template <class P>
struct ModuleDirective {
  std::string_view name;
  unsigned contexts;
  Args args;
  void (*apply)(const DirectiveCall& call, P& level);
};

// A row of a module with a load context (see the header comment): it applies to the load's L
// and to the level's P.
template <class P, class L>
struct ModuleLoadDirective {
  std::string_view name;
  unsigned contexts;
  Args args;
  void (*apply)(const DirectiveCall& call, L& load, P& level);
};

// A row of a module whose directives fill only its load context, never a level (the directives
// inside `upstream { }`, which describe the block the load is reading).
template <class L>
struct ModuleMainDirective {
  std::string_view name;
  unsigned contexts;
  Args args;
  void (*apply)(const DirectiveCall& call, L& load);
};

// PATH relative to nginx's prefix (-p), as most paths are; an absolute PATH as it is.
std::string prefixedPath(const std::string& prefix, const std::string& path);

}  // namespace portico::config
