#pragma once

// nginx's command line (-c -p -g -e -t -T -q -s -v -V -h) and the choice between it and the
// gunicorn-style flags (cli.h). Parsing is pure; loadNginxConfig reads the files.

#include <string>
#include <vector>

#include "config/conf_builder.h"
#include "config/conf_loader.h"

namespace portico::config {

// Which command line argv is: gunicorn's (cli.h), nginx's (below), or a mix (an error).
struct CommandLineMode {
  enum class Kind { kGunicorn, kNginx, kError };
  Kind kind = Kind::kGunicorn;
  std::string message;  // kError: one line, "portico: error: ..." (exit status 2)
};

// nginx mode is chosen by an nginx-only option (-c FILE not ending in .py, -T, -q, -V, -g, -?,
// -t without a number after it) or by -p with nothing gunicorn-like beside it (no APP, no long
// option). -s, -v, -h and -e are shared. `-c x.py` (a gunicorn Python config) is an error.
CommandLineMode chooseCommandLineMode(const std::vector<std::string>& args);

// The outcome of reading an nginx-style command line.
struct NginxCommandLine {
  enum class Action { kRun, kTest, kSignal, kVersion, kHelp, kError };
  Action action = Action::kRun;
  bool dump = false;             // -T: test, then print every file read
  bool quiet = false;            // -q: no "syntax is ok"/"test is successful" lines
  bool fullVersion = false;      // -V rather than -v
  std::string confFile;          // absolute; default PREFIX/conf/portico.conf
  std::string prefix;            // absolute, ending in '/'; default the directory of confFile
  std::string globalDirectives;  // -g
  std::string errorLog;          // -e: "-" for stderr, an absolute path, or empty
  std::string signal;            // -s stop|quit|reload|reopen
  std::string message;           // kHelp/kVersion: the text (stderr); kError: one line
};

// Parses argv (argv[0] is the program) with nginx's rules: clustered flags (-tq), values glued
// or separate (-cFILE, -c FILE). Relative -p is against `cwd`; relative -c against the prefix
// when -p is given, else against `cwd`.
NginxCommandLine parseNginxCommandLine(const std::vector<std::string>& args,
                                       const std::string& cwd);

// -v / -V text (without the trailing newline).
std::string nginxVersionText(bool full);

// Reads the configuration the command line names, applying -g and -e.
ConfLoadResult loadNginxConfig(const NginxCommandLine& cli, ConfLoader& loader);

}  // namespace portico::config
