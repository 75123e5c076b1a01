#include "config/conf_parser.h"

namespace portico::config {
namespace {

// The name SourceRef carries for -g text; describeSource() turns it into "command line".
constexpr char kCommandLineName[] = "\x01command line";

// The outcome of reading one token sequence, as nginx's ngx_conf_read_token returns.
enum class Token { kDirective /* ; */, kBlockStart /* { */, kBlockDone /* } */, kEnd, kError };

// A faithful port of ngx_conf_read_token (nginx 1.22, src/core/ngx_conf_file.c): the same
// states (last_space, need_space, quotes, variables, comments) and the same error texts.
class Lexer {
 public:
  Lexer(std::string_view text, std::string file, ConfSourceKind kind)
      : text_(text), file_(std::move(file)), kind_(kind) {}

  // Reads the words of the next directive into `words` (with the line of the first word).
  Token next(std::vector<std::string>& words, int& line, std::string& error) {
    words.clear();
    bool lastSpace = true, needSpace = false, sharpComment = false, variable = false;
    bool quoted = false, sQuoted = false, dQuoted = false;
    size_t start = pos_;
    int startLine = line_;
    line = line_;
    for (;;) {
      if (pos_ >= text_.size()) {
        if (!words.empty() || !lastSpace) {
          error = kind_ == ConfSourceKind::kCommandLine
                      ? "unexpected end of parameter, expecting \";\""
                      : "unexpected end of file, expecting \";\" or \"}\"";
          return fail(error);
        }
        return Token::kEnd;
      }
      char ch = text_[pos_++];
      if (ch == '\n') ++line_;
      if (needSpace) {
        if (isSpace(ch)) {
          lastSpace = true;
          needSpace = false;
          continue;
        }
        if (ch == ';') return Token::kDirective;
        if (ch == '{') return Token::kBlockStart;
        if (ch == ')') {
          lastSpace = true;
          needSpace = false;
        } else {
          error = "unexpected \"" + std::string(1, ch) + "\"";
          return fail(error);
        }
      }
      if (lastSpace) {
        start = pos_ - 1;
        startLine = line_;
        if (isSpace(ch)) continue;
        if (words.empty()) line = startLine;
        switch (ch) {
          case ';':
          case '{':
            if (words.empty()) {
              error = "unexpected \"" + std::string(1, ch) + "\"";
              return fail(error);
            }
            return ch == '{' ? Token::kBlockStart : Token::kDirective;
          case '}':
            if (!words.empty()) {
              error = "unexpected \"}\"";
              return fail(error);
            }
            return Token::kBlockDone;
          case '#':
            sharpComment = true;
            lastSpace = true;
            break;
          case '\\':
            quoted = true;
            lastSpace = false;
            continue;
          case '"':
            ++start;
            dQuoted = true;
            lastSpace = false;
            continue;
          case '\'':
            ++start;
            sQuoted = true;
            lastSpace = false;
            continue;
          case '$':
            variable = true;
            lastSpace = false;
            continue;
          default:
            lastSpace = false;
        }
        if (sharpComment) {
          // Skip to the end of the line (nginx checks sharp_comment before last_space; the
          // effect is the same: the rest of the line is ignored).
          while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
          sharpComment = false;
          continue;
        }
      } else {
        if (quoted) {
          quoted = false;
          continue;
        }
        if (ch == '{' && variable) continue;  // ${name}
        variable = false;
        if (ch == '\\') {
          quoted = true;
          continue;
        }
        if (ch == '$') {
          variable = true;
          continue;
        }
        bool found = false;
        if (dQuoted) {
          if (ch == '"') {
            dQuoted = false;
            needSpace = true;
            found = true;
          }
        } else if (sQuoted) {
          if (ch == '\'') {
            sQuoted = false;
            needSpace = true;
            found = true;
          }
        } else if (isSpace(ch) || ch == ';' || ch == '{') {
          lastSpace = true;
          found = true;
        }
        if (found) {
          words.push_back(unescape(text_.substr(start, pos_ - 1 - start)));
          if (ch == ';') return Token::kDirective;
          if (ch == '{') return Token::kBlockStart;
        }
      }
    }
  }

  int line() const { return line_; }

 private:
  static bool isSpace(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

  Token fail(std::string& error) {
    error += " in " + describeSource({file_, line_});
    return Token::kError;
  }

  // nginx copies a word dropping the backslash before " ' \ and turning \t \r \n into
  // control characters; any other backslash stays.
  static std::string unescape(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\' && i + 1 < raw.size()) {
        char next = raw[i + 1];
        if (next == '"' || next == '\'' || next == '\\') {
          out += next;
          ++i;
          continue;
        }
        if (next == 't' || next == 'r' || next == 'n') {
          out += next == 't' ? '\t' : next == 'r' ? '\r' : '\n';
          ++i;
          continue;
        }
      }
      out += raw[i];
    }
    return out;
  }

  std::string_view text_;
  std::string file_;
  ConfSourceKind kind_;
  size_t pos_ = 0;
  int line_ = 1;
};

// Recursive descent over the lexer: ngx_conf_parse's block structure.
class TreeBuilder {
 public:
  TreeBuilder(Lexer& lexer, std::string file, ConfSourceKind kind)
      : lexer_(lexer), file_(std::move(file)), kind_(kind) {}

  // Parses until the end of the text (depth 0) or the matching `}`; false after an error
  // (the marker node is already in `out`).
  bool parseBlock(std::vector<ConfDirective>& out, bool inBlock) {
    std::vector<std::string> words;
    for (;;) {
      int line = 0;
      std::string error;
      Token token = lexer_.next(words, line, error);
      switch (token) {
        case Token::kError:
          return addError(out, error);
        case Token::kEnd:
          if (inBlock) {
            return addError(out, "unexpected end of file, expecting \"}\" in " +
                                     describeSource({file_, lexer_.line()}));
          }
          return true;
        case Token::kBlockDone:
          if (!inBlock) {
            return addError(out,
                            "unexpected \"}\" in " + describeSource({file_, lexer_.line()}));
          }
          return true;
        case Token::kDirective:
        case Token::kBlockStart: {
          ConfDirective directive;
          directive.name = words.front();
          directive.args.assign(words.begin() + 1, words.end());
          // nginx reports a directive at the line of its `;` or `{` (where the lexer stands
          // when the handler runs), not where its name starts.
          directive.source = {file_, lexer_.line()};
          if (token == Token::kBlockStart) {
            if (kind_ == ConfSourceKind::kCommandLine) {
              return addError(out, "block directives are not supported in -g option in " +
                                       describeSource({file_, lexer_.line()}));
            }
            directive.hasBlock = true;
            bool ok = parseBlock(directive.children, true);
            directive.endLine = lexer_.line();
            out.push_back(std::move(directive));
            if (!ok) return false;
          } else {
            out.push_back(std::move(directive));
          }
          break;
        }
      }
    }
  }

 private:
  bool addError(std::vector<ConfDirective>& out, std::string message) {
    ConfDirective marker;
    marker.source = {file_, lexer_.line()};
    marker.error = std::move(message);
    out.push_back(std::move(marker));
    return false;
  }

  Lexer& lexer_;
  std::string file_;
  ConfSourceKind kind_;
};

}  // namespace

std::vector<ConfDirective> parseConf(std::string_view text, const std::string& file,
                                     ConfSourceKind kind) {
  std::string name = kind == ConfSourceKind::kCommandLine ? kCommandLineName : file;
  Lexer lexer(text, name, kind);
  TreeBuilder builder(lexer, name, kind);
  std::vector<ConfDirective> out;
  builder.parseBlock(out, false);
  return out;
}

std::string describeSource(const SourceRef& source) {
  if (source.file == kCommandLineName) return "command line";
  return source.file + ":" + std::to_string(source.line);
}

std::string confMessage(const char* level, const std::string& text, const SourceRef& source) {
  return std::string("[") + level + "] " + text + " in " + describeSource(source);
}

}  // namespace portico::config
