#include "config/index_module.h"

#include "config/conf_values.h"

namespace portico::config {
namespace {

void index(const DirectiveCall& call, IndexPartial& level) {
  if (!level.files) level.files.emplace();
  const std::vector<std::string>& args = call.args();
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& v = args[i];
    if (v.empty()) call.emerg("index \"\" in \"index\" directive is invalid");
    if (v[0] == '/' && i != args.size() - 1) {
      call.emerg("only the last index in \"index\" directive should be absolute");
    }
    level.files->push_back(v);
  }
}

}  // namespace

const std::vector<ModuleDirective<IndexPartial>>& indexDirectives() {
  static const std::vector<ModuleDirective<IndexPartial>> kDirectives = {
      {"index", kHsl, Args::k1More, &index},
  };
  return kDirectives;
}

void mergeIndex(IndexPartial& child, const IndexPartial& parent) {
  inherit(child.files, parent.files);
}

void finishIndex(const IndexPartial& level, LocationSettings& settings) {
  if (level.files) settings.index = *level.files;
}

}  // namespace portico::config
