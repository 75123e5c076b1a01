#pragma once

// nginx's rewrite module at run time: a level's `rewrite`, `return`, `set`, `break` and `if`
// directives compiled into a program that runs in file order over the request's URI, args and
// captures (ngx_http_script codes). Pure but for the file tests of `if (-f ...)` (stat) and
// rewrite_log's notices; the site handler runs it and acts on the result.

#include <optional>
#include <string>
#include <vector>

#include "config/site.h"
#include "core/regex.h"
#include "http/user_variables.h"
#include "http/variables.h"

namespace portico::http {

// What a program did, beyond changing the RewriteState.
struct RewriteResult {
  enum class Action {
    kDone,      // ran to its end (RewriteState::uriChanged says whether to match again)
    kBreak,     // `break` or `rewrite ... break`: no more rewrite directives, no new match
    kLast,      // `rewrite ... last`: stop here and match the locations again
    kReturn,    // `return CODE [TEXT|URL]`
    kRedirect,  // `rewrite ... redirect|permanent` or an absolute replacement
    kError,     // 500 (nginx: "the rewritten URI has a zero length", a variable cycle)
  };
  Action action = Action::kDone;
  int status = 0;        // kReturn, kRedirect
  bool hasText = false;  // kReturn: whether a text/URL was given
  std::string text;      // kReturn: the expanded text or URL; kRedirect: the Location
};

// The request state a program reads and changes (the runner copies it in and back).
struct RewriteState {
  std::string uri;  // decoded and normalized, as the locations match it
  std::string args;
  std::optional<Regex::Match> captures;  // of the last regex that matched ($1..$9)
  bool uriChanged = false;  // a rewrite without flag (or last) changed the URI
  // nginx's quoted_uri / plus_in_uri: the request's path held "%XX" or '+'; captures copied
  // into new arguments or a redirect are then escaped.
  bool quotedUri = false;
  // The implicit location of the last `if` whose condition held (null: none), and of the last
  // such `if` with a proxy_pass or uwsgi_pass of its own (nginx's content handler).
  const config::LocationSettings* ifSettings = nullptr;
  const config::LocationSettings* ifContent = nullptr;
  // `set $limit_rate`: the response's rate (nginx's r->limit_rate with limit_rate_set).
  std::optional<uint64_t> limitRate;
};

// One level's compiled rewrite directives. Immutable after compile(); any thread.
class RewriteProgram {
 public:
  // nullopt with `unknown "x" variable in FILE:LINE` (or a regex error) for the first bad step.
  static std::optional<RewriteProgram> compile(const std::vector<config::RewriteStep>& steps,
                                               const std::vector<std::string>& captureNames,
                                               const VariableRegistry* users,
                                               std::string& error);

  bool empty() const { return steps_.empty(); }

  // Runs the program over `state`. `context` is the request's; while running, its uri, args
  // and captures are those of `state`. `log`: rewrite_log's notices (error log, info level).
  RewriteResult run(RewriteState& state, VariableContext context, bool log) const;

 private:
  struct Step {
    config::RewriteStep::Kind kind = config::RewriteStep::Kind::kBreak;
    config::RewriteStep::Flag flag = config::RewriteStep::Flag::kNone;
    config::RewriteStep::Condition condition = config::RewriteStep::Condition::kVariable;
    bool keepArgs = true;
    bool redirect = false;
    bool literalQuestion = false;   // the replacement's text holds a '?' (args follow)
    bool negate = false;
    std::optional<Regex> regex;     // rewrite, if (~ ~* !~ !~*)
    std::string regexSource;        // for rewrite_log
    Template replacement;           // rewrite (whole, for redirects); return text; set value
    Template uriPart;               // rewrite without redirect: before the first '?'
    std::optional<Template> argsPart;  // ... after it
    Template subject;               // if: the variable or file path
    Template operand;               // if: the compared value
    int status = 0;                 // return / redirect status
    bool hasText = false;           // return
    int variable = -1;              // set: the user variable (-1: $args)
    const config::LocationSettings* ifSettings = nullptr;
    std::vector<Step> body;         // if
  };

  // Runs `steps`; true when the program must stop (the result says why).
  bool runSteps(const std::vector<Step>& steps, RewriteState& state, VariableContext& context,
                bool log, RewriteResult& result) const;
  bool condition(const Step& step, RewriteState& state, VariableContext& context,
                 bool log) const;
  static std::optional<Step> compileStep(const config::RewriteStep& spec,
                                         const std::vector<std::string>& captureNames,
                                         const VariableRegistry* users, std::string& error);

  std::vector<Step> steps_;
};

// nginx's ngx_escape_uri(NGX_ESCAPE_ARGS): what a capture becomes in new arguments. Pure.
std::string escapeArgs(std::string_view value);
// nginx's ngx_unescape_uri(NGX_UNESCAPE_REDIRECT): a redirect's %XX decoded up to the first
// literal '?', except the bytes up to '%' and DEL (kept encoded). Pure.
std::string unescapeRedirect(std::string_view value);

// The user variables of `site`: every `set` name and `map` variable (each map compiled into
// `maps` and registered as its variable's producer). False with nginx's message (`the
// duplicate "uri" variable`, `unknown "x" variable in FILE:LINE`). Startup and -t.
bool buildUserVariables(const config::HttpSite& site, const std::vector<std::string>& captureNames,
                        VariableRegistry& registry,
                        std::vector<std::unique_ptr<VariableProducer>>& maps, std::string& error);

}  // namespace portico::http
