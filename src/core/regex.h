#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portico {

// A compiled PCRE2 regular expression, as nginx uses for `location ~`, `server_name ~` and
// `gzip_disable`: Perl syntax, named groups, optional caseless matching. Immutable after
// compile(), so one instance may be matched from any thread (match data is per call).
class Regex {
 public:
  // The captures of one successful match: group 0 is the whole match; an unset group is empty.
  struct Match {
    std::vector<std::string> groups;
    std::vector<std::pair<std::string, std::string>> named;  // (name, value) of named groups
  };

  // Compiles `pattern`; nullopt with `error` ("missing ) at offset 7") when it is invalid.
  static std::optional<Regex> compile(std::string_view pattern, bool caseless, std::string& error);

  bool matches(std::string_view subject) const;
  // Like matches(), and fills `out` with the captures.
  bool match(std::string_view subject, Match& out) const;

  const std::string& pattern() const { return pattern_; }
  bool caseless() const { return caseless_; }
  int captureCount() const { return captureCount_; }

 private:
  struct Code;
  Regex(std::shared_ptr<const Code> code, std::string pattern, bool caseless, int captures)
      : code_(std::move(code)), pattern_(std::move(pattern)), caseless_(caseless),
        captureCount_(captures) {}
  std::shared_ptr<const Code> code_;
  std::string pattern_;
  bool caseless_ = false;
  int captureCount_ = 0;
};

}  // namespace portico
