#include "process/process_title.h"

#include <sys/prctl.h>

#include <cstring>

namespace portico::process {

namespace {
char* gArgStart = nullptr;
size_t gArgSpace = 0;
}  // namespace

void initProcessTitle(int argc, char** argv) {
  if (argc <= 0 || !argv || !argv[0]) return;
  // The strings argv points at are contiguous; the title may use all of that space.
  char* end = argv[0] + std::strlen(argv[0]) + 1;
  for (int i = 1; i < argc; ++i) {
    if (argv[i] != end) break;
    end = argv[i] + std::strlen(argv[i]) + 1;
  }
  gArgStart = argv[0];
  gArgSpace = static_cast<size_t>(end - argv[0]);
}

void setProcessTitle(const std::string& title) {
  ::prctl(PR_SET_NAME, title.substr(0, 15).c_str(), 0, 0, 0);
  if (!gArgStart || gArgSpace < 2) return;
  size_t n = std::min(title.size(), gArgSpace - 1);
  std::memcpy(gArgStart, title.data(), n);
  std::memset(gArgStart + n, 0, gArgSpace - n);
}

}  // namespace portico::process
