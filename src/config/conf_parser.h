#pragma once

// The nginx configuration lexer and parser: text in, a tree of directives out. Pure (no I/O):
// `include` is just a directive here; conf_builder asks conf_loader to expand it.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/site.h"

namespace portico::config {

// One directive as written: `name arg...;` or `name arg... { children }`. Arguments are the
// words after nginx's unquoting and escapes (\" \' \\ \t \r \n); `$variables` are kept as text.
// A node with `error` set is where the lexer stopped: the builder reports it when its walk
// reaches that point, so errors come out in the order nginx (which parses and applies in one
// pass) would report them.
struct ConfDirective {
  std::string name;
  std::vector<std::string> args;
  SourceRef source;            // file and the line of its `;` or `{` (as nginx reports it)
  bool hasBlock = false;       // ended with `{ ... }` rather than `;`
  int endLine = 0;             // a block's closing `}` line (nginx's merge-time messages)
  std::vector<ConfDirective> children;
  std::optional<std::string> error;  // "unexpected \"}\" in FILE:LINE" (lexer stop marker)
};

// Where the text comes from: a file, or nginx's -g parameter string ("in command line",
// blocks not allowed, the end of the text reported as "unexpected end of parameter").
enum class ConfSourceKind { kFile, kCommandLine };

// Parses `text` (the contents of `file`). Never throws; a syntax error becomes a marker node
// (see ConfDirective::error) after the directives that precede it, at the nesting depth where
// it occurred. Returns the top-level directives.
std::vector<ConfDirective> parseConf(std::string_view text, const std::string& file,
                                     ConfSourceKind kind = ConfSourceKind::kFile);

// "FILE:LINE", or "command line" for -g: what nginx appends after " in ".
std::string describeSource(const SourceRef& source);
// nginx's line for a message about a directive: "[LEVEL] TEXT in FILE:LINE" (LEVEL emerg, warn).
std::string confMessage(const char* level, const std::string& text, const SourceRef& source);

}  // namespace portico::config
