#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace portico::config {

// The outcome of reading the gunicorn-style command line.
struct CliResult {
  enum class Action { kRun, kHelp, kVersion, kError };
  Action action = Action::kRun;
  Config config;
  // kHelp: the help text; kVersion: "portico X.Y.Z"; kError: a one-line message such as
  // "portico: error: unrecognized arguments: --frobnicate" (main prints it and exits 2).
  std::string message;
};

// Parses argv (argv[0] is the program name) into a Config. Pure: no files opened, no chdir.
// Relative --static, --pythonpath and --virtualenv paths are resolved against --chdir (if given)
// or the current directory.
CliResult parseCommandLine(const std::vector<std::string>& args);

}  // namespace portico::config
