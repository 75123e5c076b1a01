#pragma once

// nginx's ngx_http_rewrite_module: return, rewrite, set, break and if (server, location and
// inside `if`), rewrite_log and uninitialized_variable_warn (http, server, location, `if`). Its
// directives are the steps of a level's program, in file order; the program is never inherited.
// `if` is a block: the module parses its condition into a step (rewriteIf), the walker walks the
// block with the block's own level (the implicit location nginx makes of it) and moves that
// level's program into the step's body.

#include <optional>
#include <vector>

#include "config/conf_module.h"
#include "config/site.h"

namespace portico::config {

// What one level wrote.
struct RewritePartial {
  std::vector<RewriteStep> steps;  // never inherited
  std::optional<bool> log, uninitializedVariableWarn;
};

const std::vector<ModuleDirective<RewritePartial>>& rewriteDirectives();

// `if (COND)`: the step with nginx's reading of the condition (ngx_http_rewrite_if_condition),
// its body still empty.
RewriteStep rewriteIf(const DirectiveCall& call);

void mergeRewrite(RewritePartial& child, const RewritePartial& parent);

void finishRewrite(const RewritePartial& level, LocationSettings& settings);

}  // namespace portico::config
