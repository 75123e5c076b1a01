#pragma once

// User variables: the names `set` and `map` define (nginx's ngx_http_add_variable). A registry
// built once per site gives each name an index; a per-request store holds the values (set by
// `set`, or computed once by a map's producer and kept across internal redirects, as nginx's
// r->variables). Templates reach the store through VariableContext::users.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portico::http {

struct VariableContext;

// Computes a user variable's value on demand (a map). Immutable after startup; any thread.
class VariableProducer {
 public:
  virtual ~VariableProducer() = default;
  virtual std::string evaluate(const VariableContext& context) const = 0;
  // `volatile` maps are evaluated at every use, never cached.
  virtual bool isVolatile() const = 0;
};

// The user variables of a site: name → index, plus the producer of each map variable.
// Filled at startup (SiteHandler::build, validateTemplates), then read-only; any thread.
class VariableRegistry {
 public:
  // The index of `name`, added when new (nginx: `set` and `map` may name a variable twice).
  int add(std::string_view name);
  // -1 when `name` is not a user variable (names are case-insensitive, as nginx's).
  int find(std::string_view name) const;
  void setProducer(int index, const VariableProducer* producer) {
    producers_[static_cast<size_t>(index)] = producer;
  }
  const VariableProducer* producer(int index) const {
    return producers_[static_cast<size_t>(index)];
  }
  const std::string& name(int index) const { return names_[static_cast<size_t>(index)]; }
  size_t size() const { return names_.size(); }

 private:
  std::vector<std::string> names_;
  std::vector<const VariableProducer*> producers_;
};

// One request's user variable values. Owned by the request (SiteRequest); loop thread.
class UserVariableStore {
 public:
  explicit UserVariableStore(const VariableRegistry& registry)
      : registry_(registry), values_(registry.size()), depth_(0) {}

  // The value of variable `index`: the one `set` stored, else the map's (cached unless
  // volatile), else "" with nginx's "using uninitialized" warning when `context` asks for it.
  // nullopt when a map refers back to itself (nginx: "cycle while evaluating variable").
  std::optional<std::string> get(int index, const VariableContext& context);
  void set(int index, std::string value) { values_[static_cast<size_t>(index)] = std::move(value); }
  const VariableRegistry& registry() const { return registry_; }

 private:
  const VariableRegistry& registry_;
  std::vector<std::optional<std::string>> values_;
  int depth_;
};

}  // namespace portico::http
