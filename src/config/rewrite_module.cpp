#include "config/rewrite_module.h"

#include <string>
#include <string_view>
#include <utility>

#include "config/conf_values.h"

namespace portico::config {
namespace {

// A replacement or a return text nginx takes for a redirect.
bool isRedirect(const std::string& value) {
  return value.starts_with("http://") || value.starts_with("https://") ||
         value.starts_with("$scheme");
}

RewriteStep stepOf(const DirectiveCall& call, RewriteStep::Kind kind) {
  RewriteStep step;
  step.kind = kind;
  step.source = call.directive().source;
  return step;
}

// `return CODE [TEXT]` or `return URL`; a second `return` of a level is just unreachable.
void returnStep(const DirectiveCall& call, RewritePartial& level) {
  RewriteStep step = stepOf(call, RewriteStep::Kind::kReturn);
  ReturnSpec& spec = step.returnSpec;
  const std::string& first = call.arg(0);
  auto code = parseNginxNumber(first);
  if (!code) {
    if (call.args().size() == 1 && isRedirect(first)) {
      spec.code = 302;
      spec.text = first;
      spec.hasText = true;
      level.steps.push_back(std::move(step));
      return;
    }
    call.emerg("invalid return code " + quote(first));
  }
  if (*code > 999) call.emerg("invalid return code " + quote(first));
  spec.code = static_cast<int>(*code);
  if (call.args().size() == 2) {
    spec.text = call.arg(1);
    spec.hasText = true;
  }
  level.steps.push_back(std::move(step));
}

void rewriteStep(const DirectiveCall& call, RewritePartial& level) {
  RewriteStep step = stepOf(call, RewriteStep::Kind::kRewrite);
  step.regex = call.arg(0);
  step.replacement = call.arg(1);
  if (step.replacement.empty()) call.emerg("empty replacement");
  call.checkRegex(step.regex, false);
  if (step.replacement.back() == '?') {  // the last "?" drops the original arguments
    step.replacement.pop_back();
    step.keepArgs = false;
  }
  step.redirect = isRedirect(step.replacement);
  if (call.args().size() == 3) {
    const std::string& flag = call.arg(2);
    if (flag == "last") {
      step.flag = RewriteStep::Flag::kLast;
    } else if (flag == "break") {
      step.flag = RewriteStep::Flag::kBreak;
    } else if (flag == "redirect") {
      step.flag = RewriteStep::Flag::kRedirect;
    } else if (flag == "permanent") {
      step.flag = RewriteStep::Flag::kPermanent;
    } else {
      call.emerg("invalid parameter " + quote(flag));
    }
  }
  level.steps.push_back(std::move(step));
}

void breakStep(const DirectiveCall& call, RewritePartial& level) {
  level.steps.push_back(stepOf(call, RewriteStep::Kind::kBreak));
}

void setStep(const DirectiveCall& call, RewritePartial& level) {
  const std::string& name = call.arg(0);
  if (name.empty() || name[0] != '$') call.emerg("invalid variable name " + quote(name));
  RewriteStep step = stepOf(call, RewriteStep::Kind::kSet);
  step.variable = name.substr(1);
  step.value = call.arg(1);
  level.steps.push_back(std::move(step));
}

void rewriteLog(const DirectiveCall& call, RewritePartial& level) { call.setFlag(level.log); }

void uninitializedVariableWarn(const DirectiveCall& call, RewritePartial& level) {
  call.setFlag(level.uninitializedVariableWarn);
}

// ngx_http_rewrite_if_condition: "(" and ")" may stand alone or stick to the first and last
// words; a variable alone, VAR =|!=|~|~*|!~|!~* VALUE, or -f|-d|-e|-x|!-f|... PATH.
void parseCondition(const DirectiveCall& call, RewriteStep& step) {
  using C = RewriteStep::Condition;
  std::vector<std::string> a = call.args();
  if (a[0].empty() || a[0][0] != '(') call.emerg("invalid condition " + quote(a[0]));
  size_t cur = 0;
  if (a[0].size() == 1) {
    cur = 1;
  } else {
    a[0].erase(0, 1);
  }
  size_t last = a.size() - 1;
  if (a[last].empty() || a[last].back() != ')') call.emerg("invalid condition " + quote(a[last]));
  if (a[last].size() == 1) {
    if (last == 0 || last - 1 < cur) call.emerg("invalid condition " + quote(a[last]));
    --last;
  } else {
    a[last].pop_back();
  }
  if (cur > last) call.emerg("invalid condition " + quote(a[last]));
  const std::string& p = a[cur];
  if (p.size() > 1 && p[0] == '$') {
    if (cur != last && cur + 2 != last) call.emerg("invalid condition " + quote(p));
    step.subject = p;
    if (cur == last) {
      step.condition = C::kVariable;
      return;
    }
    const std::string& op = a[cur + 1];
    step.operand = a[last];
    if (op == "=") {
      step.condition = C::kEqual;
    } else if (op == "!=") {
      step.condition = C::kNotEqual;
    } else if (op == "~" || op == "~*" || op == "!~" || op == "!~*") {
      step.condition = op[0] == '!' ? C::kNotMatch : C::kMatch;
      step.caseless = op.back() == '*';
      call.checkRegex(step.operand, step.caseless);
    } else {
      call.emerg("unexpected " + quote(op) + " in condition");
    }
    return;
  }
  if ((p.size() == 2 && p[0] == '-') || (p.size() == 3 && p[0] == '!' && p[1] == '-')) {
    if (cur + 1 != last) call.emerg("invalid condition " + quote(p));
    step.subject = a[last];
    bool negative = p[0] == '!';
    switch (p.back()) {
      case 'f': step.condition = negative ? C::kNotFile : C::kFile; return;
      case 'd': step.condition = negative ? C::kNotDirectory : C::kDirectory; return;
      case 'e': step.condition = negative ? C::kNotExists : C::kExists; return;
      case 'x': step.condition = negative ? C::kNotExecutable : C::kExecutable; return;
      default: break;
    }
  }
  call.emerg("invalid condition " + quote(p));
}

}  // namespace

const std::vector<ModuleDirective<RewritePartial>>& rewriteDirectives() {
  static const std::vector<ModuleDirective<RewritePartial>> kDirectives = {
      {"return", kRewriteCtx, Args::k12, &returnStep},
      {"rewrite", kRewriteCtx, Args::k23, &rewriteStep},
      {"break", kRewriteCtx, Args::kNone, &breakStep},
      {"set", kRewriteCtx, Args::k2, &setStep},
      {"rewrite_log", kHsl | kServerIf | kLocationIf, Args::k1, &rewriteLog},
      {"uninitialized_variable_warn", kHsl | kServerIf | kLocationIf, Args::k1,
       &uninitializedVariableWarn},
  };
  return kDirectives;
}

RewriteStep rewriteIf(const DirectiveCall& call) {
  RewriteStep step = stepOf(call, RewriteStep::Kind::kIf);
  parseCondition(call, step);
  return step;
}

void mergeRewrite(RewritePartial& child, const RewritePartial& parent) {
  inherit(child.log, parent.log);
  inherit(child.uninitializedVariableWarn, parent.uninitializedVariableWarn);
}

void finishRewrite(const RewritePartial& level, LocationSettings& settings) {
  settings.rewrites = level.steps;
  if (level.log) settings.rewriteLog = *level.log;
  if (level.uninitializedVariableWarn) {
    settings.uninitializedVariableWarn = *level.uninitializedVariableWarn;
  }
}

}  // namespace portico::config
