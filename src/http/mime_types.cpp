#include "http/mime_types.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace portico::http {

namespace {

struct BuiltinType {
  const char* extension;
  const char* type;
};

// Generated from nginx 1.22's conf/mime.types (Debian's /etc/nginx/mime.types), in file order so
// that a repeated extension would resolve as nginx does (the later one wins).
constexpr BuiltinType kBuiltinTypes[] = {
    {"html", "text/html"},
    {"htm", "text/html"},
    {"shtml", "text/html"},
    {"css", "text/css"},
    {"xml", "text/xml"},
    {"gif", "image/gif"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "application/javascript"},
    {"atom", "application/atom+xml"},
    {"rss", "application/rss+xml"},
    {"mml", "text/mathml"},
    {"txt", "text/plain"},
    {"jad", "text/vnd.sun.j2me.app-descriptor"},
    {"wml", "text/vnd.wap.wml"},
    {"htc", "text/x-component"},
    {"avif", "image/avif"},
    {"png", "image/png"},
    {"svg", "image/svg+xml"},
    {"svgz", "image/svg+xml"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"wbmp", "image/vnd.wap.wbmp"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"jng", "image/x-jng"},
    {"bmp", "image/x-ms-bmp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"jar", "application/java-archive"},
    {"war", "application/java-archive"},
    {"ear", "application/java-archive"},
    {"json", "application/json"},
    {"hqx", "application/mac-binhex40"},
    {"doc", "application/msword"},
    {"pdf", "application/pdf"},
    {"ps", "application/postscript"},
    {"eps", "application/postscript"},
    {"ai", "application/postscript"},
    {"rtf", "application/rtf"},
    {"m3u8", "application/vnd.apple.mpegurl"},
    {"kml", "application/vnd.google-earth.kml+xml"},
    {"kmz", "application/vnd.google-earth.kmz"},
    {"xls", "application/vnd.ms-excel"},
    {"eot", "application/vnd.ms-fontobject"},
    {"ppt", "application/vnd.ms-powerpoint"},
    {"odg", "application/vnd.oasis.opendocument.graphics"},
    {"odp", "application/vnd.oasis.opendocument.presentation"},
    {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"wmlc", "application/vnd.wap.wmlc"},
    {"wasm", "application/wasm"},
    {"7z", "application/x-7z-compressed"},
    {"cco", "application/x-cocoa"},
    {"jardiff", "application/x-java-archive-diff"},
    {"jnlp", "application/x-java-jnlp-file"},
    {"run", "application/x-makeself"},
    {"pl", "application/x-perl"},
    {"pm", "application/x-perl"},
    {"prc", "application/x-pilot"},
    {"pdb", "application/x-pilot"},
    {"rar", "application/x-rar-compressed"},
    {"rpm", "application/x-redhat-package-manager"},
    {"sea", "application/x-sea"},
    {"swf", "application/x-shockwave-flash"},
    {"sit", "application/x-stuffit"},
    {"tcl", "application/x-tcl"},
    {"tk", "application/x-tcl"},
    {"der", "application/x-x509-ca-cert"},
    {"pem", "application/x-x509-ca-cert"},
    {"crt", "application/x-x509-ca-cert"},
    {"xpi", "application/x-xpinstall"},
    {"xhtml", "application/xhtml+xml"},
    {"xspf", "application/xspf+xml"},
    {"zip", "application/zip"},
    {"bin", "application/octet-stream"},
    {"exe", "application/octet-stream"},
    {"dll", "application/octet-stream"},
    {"deb", "application/octet-stream"},
    {"dmg", "application/octet-stream"},
    {"iso", "application/octet-stream"},
    {"img", "application/octet-stream"},
    {"msi", "application/octet-stream"},
    {"msp", "application/octet-stream"},
    {"msm", "application/octet-stream"},
    {"mid", "audio/midi"},
    {"midi", "audio/midi"},
    {"kar", "audio/midi"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"m4a", "audio/x-m4a"},
    {"ra", "audio/x-realaudio"},
    {"3gpp", "video/3gpp"},
    {"3gp", "video/3gpp"},
    {"ts", "video/mp2t"},
    {"mp4", "video/mp4"},
    {"mpeg", "video/mpeg"},
    {"mpg", "video/mpeg"},
    {"mov", "video/quicktime"},
    {"webm", "video/webm"},
    {"flv", "video/x-flv"},
    {"m4v", "video/x-m4v"},
    {"mng", "video/x-mng"},
    {"asx", "video/x-ms-asf"},
    {"asf", "video/x-ms-asf"},
    {"wmv", "video/x-ms-wmv"},
    {"avi", "video/x-msvideo"},
};

char lowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// One token of nginx configuration syntax.
struct Token {
  enum class Kind { kWord, kSemicolon, kOpen, kClose, kEnd, kError };
  Kind kind = Kind::kEnd;
  std::string text;  // the word, or the error message for kError
  int line = 1;
};

// Splits nginx-syntax text into words, quoted strings, ';', '{' and '}', skipping '#' comments.
class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  Token next() {
    skipSpaceAndComments();
    Token token;
    token.line = line_;
    if (pos_ >= text_.size()) return token;
    char c = text_[pos_];
    if (c == ';' || c == '{' || c == '}') {
      ++pos_;
      token.kind = c == ';' ? Token::Kind::kSemicolon
                   : c == '{' ? Token::Kind::kOpen
                              : Token::Kind::kClose;
      return token;
    }
    if (c == '"' || c == '\'') return quoted(c);
    token.kind = Token::Kind::kWord;
    while (pos_ < text_.size()) {
      c = text_[pos_];
      if (isSpace(c) || c == ';' || c == '{' || c == '}') break;
      token.text.push_back(c);
      ++pos_;
    }
    return token;
  }

 private:
  static bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

  void skipSpaceAndComments() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '\n') {
        ++line_;
        ++pos_;
      } else if (isSpace(c)) {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  Token quoted(char quote) {
    Token token;
    token.line = line_;
    token.kind = Token::Kind::kWord;
    ++pos_;
    while (pos_ < text_.size()) {
      char c = text_[pos_++];
      if (c == quote) {
        // nginx requires a separator after a closing quote.
        if (pos_ < text_.size() && !isSpace(text_[pos_]) && text_[pos_] != ';' &&
            text_[pos_] != '{' && text_[pos_] != '}') {
          token.kind = Token::Kind::kError;
          token.text = std::string("unexpected \"") + text_[pos_] + "\" after quoted string";
        }
        return token;
      }
      if (c == '\n') ++line_;
      if (c == '\\' && pos_ < text_.size()) {
        char e = text_[pos_++];
        c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
      }
      token.text.push_back(c);
    }
    token.kind = Token::Kind::kError;
    token.text = "unterminated quoted string";
    return token;
  }

  std::string_view text_;
  size_t pos_ = 0;
  int line_ = 1;
};

std::string describe(const Token& token) {
  switch (token.kind) {
    case Token::Kind::kWord: return "\"" + token.text + "\"";
    case Token::Kind::kSemicolon: return "\";\"";
    case Token::Kind::kOpen: return "\"{\"";
    case Token::Kind::kClose: return "\"}\"";
    default: return "end of file";
  }
}

}  // namespace

const MimeTypes& MimeTypes::builtin() {
  static const MimeTypes table = [] {
    MimeTypes t;
    for (const BuiltinType& entry : kBuiltinTypes) t.add(entry.type, entry.extension);
    return t;
  }();
  return table;
}

std::string_view MimeTypes::lookup(std::string_view path) const {
  size_t slash = path.rfind('/');
  std::string_view segment = slash == std::string_view::npos ? path : path.substr(slash + 1);
  size_t dot = segment.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == segment.size()) return defaultType_;
  std::string_view extension = segment.substr(dot + 1);

  // Lower-case into a stack buffer: this runs for every static response.
  char buffer[32];
  std::string heap;
  char* out = buffer;
  if (extension.size() > sizeof(buffer)) {
    heap.resize(extension.size());
    out = heap.data();
  }
  for (size_t i = 0; i < extension.size(); ++i) out[i] = lowerAscii(extension[i]);
  auto it = types_.find(std::string_view(out, extension.size()));
  if (it == types_.end()) return defaultType_;
  return it->second;
}

void MimeTypes::add(std::string_view type, std::string_view extension) {
  std::string key(extension);
  for (char& c : key) c = lowerAscii(c);
  types_.insert_or_assign(std::move(key), std::string(type));
}

bool MimeTypes::loadFile(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    error = path + ": read error";
    return false;
  }
  return loadString(contents.str(), path, error);
}

bool MimeTypes::loadString(std::string_view text, std::string_view source, std::string& error) {
  auto fail = [&](int line, const std::string& message) {
    error = std::string(source) + ":" + std::to_string(line) + ": " + message;
    return false;
  };

  MimeTypes parsed;
  parsed.defaultType_ = defaultType_;
  Lexer lexer(text);
  bool sawTypes = false;
  for (;;) {
    Token token = lexer.next();
    if (token.kind == Token::Kind::kError) return fail(token.line, token.text);
    if (token.kind == Token::Kind::kEnd) break;
    if (token.kind != Token::Kind::kWord) return fail(token.line, "unexpected " + describe(token));
    if (token.text != "types") {
      return fail(token.line, "unknown directive \"" + token.text + "\", expecting \"types\"");
    }
    Token open = lexer.next();
    if (open.kind == Token::Kind::kError) return fail(open.line, open.text);
    if (open.kind != Token::Kind::kOpen) {
      return fail(open.line, "expecting \"{\" after \"types\", got " + describe(open));
    }
    sawTypes = true;

    // Statements "type ext ...;" until the closing brace.
    for (;;) {
      Token first = lexer.next();
      if (first.kind == Token::Kind::kError) return fail(first.line, first.text);
      if (first.kind == Token::Kind::kClose) break;
      if (first.kind == Token::Kind::kEnd) {
        return fail(first.line, "unexpected end of file, expecting \"}\"");
      }
      if (first.kind != Token::Kind::kWord || first.text.empty()) {
        return fail(first.line, "unexpected " + describe(first));
      }
      size_t extensions = 0;
      for (;;) {
        Token word = lexer.next();
        if (word.kind == Token::Kind::kError) return fail(word.line, word.text);
        if (word.kind == Token::Kind::kSemicolon) break;
        if (word.kind != Token::Kind::kWord) {
          return fail(word.line, "unexpected " + describe(word) + ", expecting \";\"");
        }
        if (word.text.empty() || word.text.find('/') != std::string::npos) {
          return fail(word.line, "invalid extension \"" + word.text + "\"");
        }
        parsed.add(first.text, word.text);
        ++extensions;
      }
      if (extensions == 0) {
        return fail(first.line, "type \"" + first.text + "\" lists no extensions");
      }
    }
  }
  if (!sawTypes) return fail(1, "no \"types\" block found");
  types_ = std::move(parsed.types_);
  return true;
}

}  // namespace portico::http
