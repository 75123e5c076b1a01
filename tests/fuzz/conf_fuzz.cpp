// libFuzzer driver for the nginx-style configuration parser: any bytes parse into a tree whose
// error marker, if any, is the last node of its block, and a node without a block has no
// children. (The builder is exercised by the unit tests' mutation loop: it resolves listen
// host names, which a fuzzer would turn into DNS lookups.)
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "config/conf_parser.h"

namespace {

using portico::config::ConfDirective;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant failed: %s\n", what);
    std::abort();
  }
}

void walk(const std::vector<ConfDirective>& nodes) {
  for (size_t i = 0; i < nodes.size(); ++i) {
    const ConfDirective& d = nodes[i];
    if (d.error) {
      check(i + 1 == nodes.size(), "an error marker is the last node of its block");
      check(d.error->find(" in ") != std::string::npos, "an error says where");
      continue;
    }
    check(!d.name.empty() || d.source.line > 0, "a directive has a line");
    check(d.hasBlock || d.children.empty(), "only blocks have children");
    check(d.source.line >= 1, "lines count from 1");
    walk(d.children);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  walk(portico::config::parseConf(text, "/fuzz.conf"));
  walk(portico::config::parseConf(text, "", portico::config::ConfSourceKind::kCommandLine));
  return 0;
}
