#include "http/map.h"

#include <algorithm>

namespace portico::http {

namespace {

std::string lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

std::unique_ptr<MapVariable> MapVariable::compile(const config::MapSpec& spec,
                                                  const std::vector<std::string>& captureNames,
                                                  const VariableRegistry* users,
                                                  std::string& error) {
  auto where = [](const config::SourceRef& source) {
    return source.file.empty() ? std::string()
                               : " in " + source.file + ":" + std::to_string(source.line);
  };
  auto map = std::unique_ptr<MapVariable>(new MapVariable());
  map->hostnames_ = spec.hostnames;
  map->volatile_ = spec.isVolatile;
  auto source = Template::compile(spec.sourceValue, error, captureNames, users);
  if (!source) {
    error += where(spec.source);
    return nullptr;
  }
  map->source_ = std::move(*source);
  if (spec.defaultValue) {
    auto value = Template::compile(*spec.defaultValue, error, captureNames, users);
    if (!value) {
      error += where(spec.source);
      return nullptr;
    }
    map->default_ = std::move(*value);
  }
  for (const config::MapSpec::Entry& entry : spec.entries) {
    auto value = Template::compile(entry.value, error, captureNames, users);
    if (!value) {
      error += where(entry.source);
      return nullptr;
    }
    size_t index = map->values_.size();
    map->values_.push_back(std::move(*value));
    if (entry.regex) {
      std::string message;
      auto regex = Regex::compile(entry.key, entry.caseless, message);
      if (!regex) {  // the builder compiled it already; kept for hand-built models
        error = "pcre2_compile() failed: " + message + where(entry.source);
        return nullptr;
      }
      map->regexes_.emplace_back(std::move(*regex), index);
      continue;
    }
    std::string key = lowered(entry.key);
    if (spec.hostnames && key.size() > 1 && key[0] == '.') {
      map->head_.push_back({key.substr(1), true, index});
    } else if (spec.hostnames && key.size() > 2 && key.starts_with("*.")) {
      map->head_.push_back({key.substr(2), false, index});
    } else if (spec.hostnames && key.size() > 2 && key.ends_with(".*")) {
      map->tail_.push_back({key.substr(0, key.size() - 1), false, index});
    } else {
      map->exact_.emplace(key, index);  // the first one wins (the builder refuses repeats)
    }
  }
  auto longestFirst = [](const Wildcard& a, const Wildcard& b) {
    return a.base.size() > b.base.size();
  };
  std::stable_sort(map->head_.begin(), map->head_.end(), longestFirst);
  std::stable_sort(map->tail_.begin(), map->tail_.end(), longestFirst);
  return map;
}

const Template& MapVariable::lookup(std::string_view key, Regex::Match& captures,
                                    bool& fromRegex) const {
  fromRegex = false;
  if (hostnames_ && !key.empty() && key.back() == '.') key.remove_suffix(1);
  std::string lower = lowered(key);
  if (auto it = exact_.find(lower); it != exact_.end()) return values_[it->second];
  if (hostnames_) {
    // ngx_hash_find_combined: leading wildcards, then trailing ones; the most specific wins.
    for (const Wildcard& w : head_) {
      if (w.alsoExact && lower == w.base) return values_[w.value];
      if (lower.size() > w.base.size() + 1 && lower.ends_with(w.base) &&
          lower[lower.size() - w.base.size() - 1] == '.') {
        return values_[w.value];
      }
    }
    for (const Wildcard& w : tail_) {
      if (lower.size() > w.base.size() && lower.starts_with(w.base)) return values_[w.value];
    }
  }
  for (const auto& [regex, index] : regexes_) {
    if (regex.match(key, captures)) {
      fromRegex = true;
      return values_[index];
    }
  }
  return default_;
}

std::string MapVariable::evaluate(const VariableContext& context) const {
  std::string key = source_.expand(context);
  Regex::Match captures;
  bool fromRegex = false;
  const Template& value = lookup(key, captures, fromRegex);
  if (value.constant()) return value.expand(context);
  if (!fromRegex) return value.expand(context);
  // The value sees the captures of the regex key (nginx sets the request's captures).
  VariableContext withCaptures = context;
  withCaptures.captures = &captures;
  return value.expand(withCaptures);
}

}  // namespace portico::http
