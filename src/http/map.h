#pragma once

// nginx's map module at run time: `map $source $variable { ... }` compiled into a lookup
// (exact keys, hostnames wildcards, regexes in order) whose value may hold variables and the
// regex's captures. The conf builder has checked the keys (duplicates, bad wildcards, regexes).

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/site.h"
#include "core/regex.h"
#include "http/user_variables.h"
#include "http/variables.h"

namespace portico::http {

// One compiled map; the producer of its variable. Immutable after compile(); any thread.
class MapVariable : public VariableProducer {
 public:
  // nullopt with `unknown "x" variable` (the source or a value names an unknown variable).
  static std::unique_ptr<MapVariable> compile(const config::MapSpec& spec,
                                              const std::vector<std::string>& captureNames,
                                              const VariableRegistry* users, std::string& error);

  std::string evaluate(const VariableContext& context) const override;
  bool isVolatile() const override { return volatile_; }

  // The value template for `key` (the source's value), with the captures of a regex key in
  // `captures`; the default (or "" when none) when nothing matches. Pure.
  const Template& lookup(std::string_view key, Regex::Match& captures, bool& fromRegex) const;

 private:
  struct Wildcard {
    // "example.com" for "*.example.com" and ".example.com"; "www.example." for "www.example.*"
    std::string base;
    bool alsoExact = false;  // ".example.com" also matches "example.com"
    size_t value = 0;
  };
  Template source_;
  std::vector<Template> values_;
  std::unordered_map<std::string, size_t> exact_;  // lower-cased key → value
  std::vector<Wildcard> head_;  // longest base first
  std::vector<Wildcard> tail_;  // longest base first
  std::vector<std::pair<Regex, size_t>> regexes_;  // in file order
  Template default_;
  bool hostnames_ = false;
  bool volatile_ = false;
};

}  // namespace portico::http
