#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace portico::http {

// Maps file-name extensions to media types like nginx's `types {}` (case-insensitive, last
// mapping of an extension wins). Built once at startup, then read-only and safe from any thread.
class MimeTypes {
 public:
  static constexpr std::string_view kDefaultType = "application/octet-stream";

  // An empty table: every lookup yields the default type.
  MimeTypes() = default;

  // nginx 1.22's full conf/mime.types (the same data as conf/mime.types in this repository).
  static const MimeTypes& builtin();

  // The type for the extension of the last segment of `path` ("css/site.CSS" → "text/css").
  // As nginx, a dot that starts the segment (".bashrc") is no extension. The view stays valid
  // as long as this table is not modified.
  std::string_view lookup(std::string_view path) const;

  // Replaces the table with the `types { type ext ...; }` blocks of an nginx-syntax file.
  // On failure the table is unchanged and `error` reads "file:line: message".
  bool loadFile(const std::string& path, std::string& error);
  // The same for text already in memory; `source` names it in messages.
  bool loadString(std::string_view text, std::string_view source, std::string& error);

  // Maps one extension (stored lower-cased) to `type`, replacing an earlier mapping.
  void add(std::string_view type, std::string_view extension);
  void clear() { types_.clear(); }
  size_t size() const { return types_.size(); }

  // nginx's `default_type`; application/octet-stream unless changed.
  void setDefaultType(std::string type) { defaultType_ = std::move(type); }
  const std::string& defaultType() const { return defaultType_; }

 private:
  // Lets find() take a string_view without building a std::string.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::unordered_map<std::string, std::string, Hash, std::equal_to<>> types_;
  std::string defaultType_{kDefaultType};
};

}  // namespace portico::http
