#include "http/rewrite.h"

#include <sys/stat.h>

#include "config/conf_values.h"
#include "core/log.h"
#include "http/map.h"

namespace portico::http {

namespace {

using Kind = config::RewriteStep::Kind;
using Flag = config::RewriteStep::Flag;
using Condition = config::RewriteStep::Condition;

std::string where(const config::SourceRef& source) {
  return source.file.empty() ? std::string()
                             : " in " + source.file + ":" + std::to_string(source.line);
}

bool isNegated(Condition c) {
  switch (c) {
    case Condition::kNotEqual: case Condition::kNotMatch: case Condition::kNotFile:
    case Condition::kNotDirectory: case Condition::kNotExists: case Condition::kNotExecutable:
      return true;
    default:
      return false;
  }
}

// Every step of `steps` and of their if blocks, depth first.
template <class F>
void forEachStep(const std::vector<config::RewriteStep>& steps, F&& f) {
  for (const config::RewriteStep& step : steps) {
    f(step);
    forEachStep(step.body, f);
  }
}

// Every LocationSettings of the site: servers, locations (nested), and if blocks.
template <class F>
void forEachSettings(const config::HttpSite& site, F&& f) {
  std::vector<const config::Location*> stack;
  for (const config::VirtualServer& server : site.servers) {
    f(server.settings);
    for (const config::Location& l : server.locations) stack.push_back(&l);
  }
  while (!stack.empty()) {
    const config::Location* l = stack.back();
    stack.pop_back();
    f(l->settings);
    for (const config::Location& child : l->children) stack.push_back(&child);
  }
}

}  // namespace

std::string escapeArgs(std::string_view value) {
  // ngx_escape_uri's "args" table: a set bit escapes the byte.
  static constexpr uint32_t kArgs[] = {0xffffffff, 0xd800086d, 0x50000000, 0xb8000001,
                                       0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff};
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if (kArgs[c >> 5] & (1u << (c & 0x1f))) {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

std::string unescapeRedirect(std::string_view value) {
  // A port of ngx_unescape_uri's state machine for NGX_UNESCAPE_REDIRECT, quirks included (an
  // invalid escape loses its '%', a decoded '?' ends the decoding like a literal one).
  std::string out;
  out.reserve(value.size());
  enum { kUsual, kQuoted, kQuotedSecond } state = kUsual;
  unsigned char decoded = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    auto ch = static_cast<unsigned char>(value[i]);
    switch (state) {
      case kUsual:
        if (ch == '?') {
          out.append(value.substr(i));  // the arguments are left as they are
          return out;
        }
        if (ch == '%') {
          state = kQuoted;
        } else {
          out.push_back(static_cast<char>(ch));
        }
        break;
      case kQuoted: {
        unsigned char c = ch | 0x20;
        if (ch >= '0' && ch <= '9') {
          decoded = static_cast<unsigned char>(ch - '0');
          state = kQuotedSecond;
        } else if (c >= 'a' && c <= 'f') {
          decoded = static_cast<unsigned char>(c - 'a' + 10);
          state = kQuotedSecond;
        } else {
          state = kUsual;
          out.push_back(static_cast<char>(ch));
        }
        break;
      }
      case kQuotedSecond: {
        state = kUsual;
        unsigned char c = ch | 0x20;
        bool letter = c >= 'a' && c <= 'f';
        if (!(ch >= '0' && ch <= '9') && !letter) break;  // dropped, as nginx
        auto full = static_cast<unsigned char>((decoded << 4) + (letter ? c - 'a' + 10 : ch - '0'));
        if (letter && full == '?') {
          out.push_back('?');
          out.append(value.substr(i + 1));
          return out;
        }
        if (full > '%' && full < 0x7f) {
          out.push_back(static_cast<char>(full));
        } else {
          out.append(value.substr(i - 2, 3));
        }
        break;
      }
    }
  }
  return out;
}

std::optional<RewriteProgram::Step> RewriteProgram::compileStep(
    const config::RewriteStep& spec, const std::vector<std::string>& captureNames,
    const VariableRegistry* users, std::string& error) {
  Step step;
  step.kind = spec.kind;
  step.flag = spec.flag;
  step.condition = spec.condition;
  step.negate = isNegated(spec.condition);
  auto compile = [&](const std::string& text) -> std::optional<Template> {
    auto t = Template::compile(text, error, captureNames, users);
    if (!t) error += where(spec.source);
    return t;
  };
  auto regex = [&](const std::string& pattern, bool caseless) -> bool {
    std::string message;
    step.regex = Regex::compile(pattern, caseless, message);
    step.regexSource = pattern;
    if (!step.regex) error = "pcre2_compile() failed: " + message + where(spec.source);
    return step.regex.has_value();
  };
  switch (spec.kind) {
    case Kind::kRewrite: {
      if (!regex(spec.regex, false)) return std::nullopt;
      step.keepArgs = spec.keepArgs;
      step.redirect = spec.redirect || spec.flag == Flag::kRedirect ||
                      spec.flag == Flag::kPermanent;
      step.status = spec.flag == Flag::kPermanent ? 301 : step.redirect ? 302 : 0;
      step.literalQuestion = spec.replacement.find('?') != std::string::npos;
      auto whole = compile(spec.replacement);
      if (!whole) return std::nullopt;
      step.replacement = std::move(*whole);
      if (!step.redirect) {
        size_t q = spec.replacement.find('?');
        auto uri = compile(spec.replacement.substr(0, q));
        if (!uri) return std::nullopt;
        step.uriPart = std::move(*uri);
        if (q != std::string::npos) {
          step.argsPart = compile(spec.replacement.substr(q + 1));
          if (!step.argsPart) return std::nullopt;
        }
      }
      break;
    }
    case Kind::kReturn: {
      step.status = spec.returnSpec.code;
      step.hasText = spec.returnSpec.hasText;
      auto text = compile(spec.returnSpec.text);
      if (!text) return std::nullopt;
      step.replacement = std::move(*text);
      break;
    }
    case Kind::kSet: {
      auto value = compile(spec.value);
      if (!value) return std::nullopt;
      step.replacement = std::move(*value);
      // $args and $limit_rate are the request's own, changed in place (nginx's set_handler).
      step.variable = spec.variable == "args"         ? -1
                      : spec.variable == "limit_rate" ? -2
                      : (users ? users->find(spec.variable) : -1);
      if (step.variable == -1 && spec.variable != "args") {
        error = "unknown \"" + spec.variable + "\" variable" + where(spec.source);
        return std::nullopt;
      }
      break;
    }
    case Kind::kBreak:
      break;
    case Kind::kIf: {
      auto subject = compile(spec.subject);
      if (!subject) return std::nullopt;
      step.subject = std::move(*subject);
      if (spec.condition == Condition::kMatch || spec.condition == Condition::kNotMatch) {
        if (!regex(spec.operand, spec.caseless)) return std::nullopt;
      } else if (spec.condition == Condition::kEqual || spec.condition == Condition::kNotEqual) {
        auto operand = compile(spec.operand);
        if (!operand) return std::nullopt;
        step.operand = std::move(*operand);
      }
      step.ifSettings = spec.ifSettings.get();
      for (const config::RewriteStep& inner : spec.body) {
        auto compiled = compileStep(inner, captureNames, users, error);
        if (!compiled) return std::nullopt;
        step.body.push_back(std::move(*compiled));
      }
      break;
    }
  }
  return step;
}

std::optional<RewriteProgram> RewriteProgram::compile(const std::vector<config::RewriteStep>& steps,
                                                      const std::vector<std::string>& captureNames,
                                                      const VariableRegistry* users,
                                                      std::string& error) {
  RewriteProgram program;
  for (const config::RewriteStep& spec : steps) {
    auto step = compileStep(spec, captureNames, users, error);
    if (!step) return std::nullopt;
    program.steps_.push_back(std::move(*step));
  }
  return program;
}

namespace {

// Points the context at the state's current values (they change as the program runs).
void sync(VariableContext& context, const RewriteState& state) {
  context.uri = state.uri;
  context.args = state.args;
  context.captures = state.captures ? &*state.captures : nullptr;
}

// A match makes the captures this regex's (ngx_http_regex_exec: a regex without groups leaves
// $1..$9 empty); a failed match clears them (r->ncaptures = 0).
void updateCaptures(RewriteState& state, bool matched, Regex::Match& m) {
  state.captures = matched ? std::move(m) : Regex::Match{};
}

}  // namespace

bool RewriteProgram::condition(const Step& step, RewriteState& state, VariableContext& context,
                               bool log) const {
  switch (step.condition) {
    case Condition::kVariable: {
      std::string v = step.subject.expand(context);
      return !v.empty() && v != "0";
    }
    case Condition::kEqual:
    case Condition::kNotEqual:
      return (step.subject.expand(context) == step.operand.expand(context)) != step.negate;
    case Condition::kMatch:
    case Condition::kNotMatch: {
      std::string v = step.subject.expand(context);
      Regex::Match m;
      bool matched = step.regex->match(v, m);
      if (log) {
        logInfo("\"" + step.regexSource + (matched ? "\" matches \"" : "\" does not match \"") +
                v + "\"");
      }
      updateCaptures(state, matched, m);
      sync(context, state);
      return matched != step.negate;
    }
    default:
      break;
  }
  std::string path = step.subject.expand(context);
  struct stat st {};
  bool found = ::stat(path.c_str(), &st) == 0;
  bool holds = false;
  if (found) {
    switch (step.condition) {
      case Condition::kFile: case Condition::kNotFile: holds = S_ISREG(st.st_mode); break;
      case Condition::kDirectory: case Condition::kNotDirectory: holds = S_ISDIR(st.st_mode); break;
      case Condition::kExists: case Condition::kNotExists: holds = true; break;
      default: holds = (st.st_mode & S_IXUSR) != 0; break;
    }
  } else if (errno != ENOENT && errno != ENOTDIR && errno != ENAMETOOLONG) {
    logCritical("stat() \"" + path + "\" failed (" + std::to_string(errno) + ")");
  }
  return holds != step.negate;
}

bool RewriteProgram::runSteps(const std::vector<Step>& steps, RewriteState& state,
                              VariableContext& context, bool log, RewriteResult& result) const {
  for (const Step& step : steps) {
    switch (step.kind) {
      case Kind::kRewrite: {
        Regex::Match m;
        bool matched = step.regex->match(state.uri, m);
        if (log) {
          logInfo("\"" + step.regexSource + (matched ? "\" matches \"" : "\" does not match \"") +
                  state.uri + "\"");
        }
        updateCaptures(state, matched, m);
        sync(context, state);
        if (!matched) break;
        // Captures copied into new arguments (or a redirect) are escaped when the request's
        // URI was (nginx's quoted_uri / plus_in_uri).
        VariableContext escaped = context;
        Regex::Match escapedCaptures;
        if (state.quotedUri && state.captures) {
          escapedCaptures = *state.captures;
          for (std::string& g : escapedCaptures.groups) g = escapeArgs(g);
          for (auto& [name, value] : escapedCaptures.named) value = escapeArgs(value);
          escaped.captures = &escapedCaptures;
        }
        if (step.redirect) {
          std::string location = unescapeRedirect(step.replacement.expand(escaped));
          if (step.keepArgs && !state.args.empty()) {
            location += step.literalQuestion ? '&' : '?';
            location += state.args;
          }
          if (log) logInfo("rewritten redirect: \"" + location + "\"");
          result.action = RewriteResult::Action::kRedirect;
          result.status = step.status;
          result.text = std::move(location);
          return true;
        }
        std::string uri = step.uriPart.expand(context);
        std::string args;
        if (step.argsPart) {
          args = step.argsPart->expand(escaped);
          if (step.keepArgs && !state.args.empty()) args += "&" + state.args;
        } else if (step.keepArgs) {
          args = state.args;
        }
        if (log) logInfo("rewritten data: \"" + uri + "\", args: \"" + args + "\"");
        if (uri.empty()) {
          logError("the rewritten URI has a zero length");
          result.action = RewriteResult::Action::kError;
          return true;
        }
        state.uri = std::move(uri);
        state.args = std::move(args);
        sync(context, state);
        if (step.flag == Flag::kBreak) {
          state.uriChanged = false;
          result.action = RewriteResult::Action::kBreak;
          return true;
        }
        state.uriChanged = true;
        if (step.flag == Flag::kLast) {
          result.action = RewriteResult::Action::kLast;
          return true;
        }
        break;
      }
      case Kind::kReturn:
        result.action = RewriteResult::Action::kReturn;
        result.status = step.status;
        result.hasText = step.hasText;
        if (step.hasText) result.text = step.replacement.expand(context);
        return true;
      case Kind::kSet: {
        std::string value = step.replacement.expand(context);
        if (step.variable == -2) {
          // ngx_http_variable_request_set_size: an invalid size is logged and changes nothing.
          if (std::optional<int64_t> size = config::parseNginxSize(value)) {
            state.limitRate = static_cast<uint64_t>(*size);
            context.limitRate = *state.limitRate;
          } else {
            logError("invalid size \"" + value + "\"");
          }
        } else if (step.variable < 0) {
          state.args = std::move(value);
          sync(context, state);
        } else if (context.users) {
          context.users->set(step.variable, std::move(value));
        }
        break;
      }
      case Kind::kBreak:
        state.uriChanged = false;
        result.action = RewriteResult::Action::kBreak;
        return true;
      case Kind::kIf:
        if (!condition(step, state, context, log)) break;
        if (step.ifSettings) {
          state.ifSettings = step.ifSettings;
          if (step.ifSettings->ownContent) state.ifContent = step.ifSettings;
        }
        if (runSteps(step.body, state, context, log, result)) return true;
        break;
    }
  }
  return false;
}

RewriteResult RewriteProgram::run(RewriteState& state, VariableContext context, bool log) const {
  RewriteResult result;
  sync(context, state);
  runSteps(steps_, state, context, log, result);
  return result;
}

bool buildUserVariables(const config::HttpSite& site, const std::vector<std::string>& captureNames,
                        VariableRegistry& registry,
                        std::vector<std::unique_ptr<VariableProducer>>& maps, std::string& error) {
  bool ok = true;
  auto define = [&](const std::string& name, const config::SourceRef& source) {
    if (!ok) return;
    if (Template::isBuiltin(name) && name != "args" && name != "limit_rate") {
      error = "the duplicate \"" + name + "\" variable" + where(source);
      ok = false;
      return;
    }
    if (name != "args" && name != "limit_rate") registry.add(name);
  };
  for (const config::MapSpec& map : site.maps) define(map.variable, map.source);
  forEachSettings(site, [&](const config::LocationSettings& s) {
    forEachStep(s.rewrites, [&](const config::RewriteStep& step) {
      if (step.kind == Kind::kSet) define(step.variable, step.source);
    });
  });
  if (!ok) return false;
  for (const config::MapSpec& spec : site.maps) {
    std::unique_ptr<MapVariable> map = MapVariable::compile(spec, captureNames, &registry, error);
    if (!map) return false;
    registry.setProducer(registry.find(spec.variable), map.get());  // a later map wins
    maps.push_back(std::move(map));
  }
  return true;
}

}  // namespace portico::http
