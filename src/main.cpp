// portico: the command line becomes a configuration, the configuration a server.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "config/cli.h"
#include "config/version.h"
#include "core/log.h"
#include "process/server.h"

namespace {

// Writes the pid file on start and removes it at exit (only if it still names this process).
class PidFile {
 public:
  bool write(const std::string& path, std::string& error) {
    path_ = path;
    std::ofstream out(path, std::ios::trunc);
    if (!out) {
      error = "cannot write pid file " + path + ": " + std::strerror(errno);
      path_.clear();
      return false;
    }
    out << ::getpid() << "\n";
    return true;
  }
  ~PidFile() {
    if (path_.empty()) return;
    std::ifstream in(path_);
    long pid = 0;
    if (in >> pid && pid == ::getpid()) ::unlink(path_.c_str());
  }

 private:
  std::string path_;
};

}  // namespace

int main(int argc, char** argv) {
  using portico::config::CliResult;
  std::vector<std::string> args(argv, argv + argc);
  CliResult cli = portico::config::parseCommandLine(args);
  switch (cli.action) {
    case CliResult::Action::kHelp:
      std::fputs(cli.message.c_str(), stdout);
      if (!cli.message.empty() && cli.message.back() != '\n') std::fputc('\n', stdout);
      return 0;
    case CliResult::Action::kVersion:
      std::printf("%s\n", cli.message.c_str());
      return 0;
    case CliResult::Action::kError:
      std::fprintf(stderr, "%s\n", cli.message.c_str());
      return 2;
    case CliResult::Action::kRun:
      break;
  }
  portico::config::Config& config = cli.config;
  if (config.virtualenv.empty()) {
    // As activating it would: gunicorn users run it from an activated virtualenv.
    if (const char* venv = std::getenv("VIRTUAL_ENV"); venv && *venv) config.virtualenv = venv;
  }
  for (const auto& [key, value] : config.env) ::setenv(key.c_str(), value.c_str(), 1);

  std::string error;
  if (!portico::ErrorLog::instance().configure(config.errorLogFile, config.logLevel, error)) {
    std::fprintf(stderr, "portico: error: %s\n", error.c_str());
    return 1;
  }
  if (!config.chdir.empty() && ::chdir(config.chdir.c_str()) != 0) {
    portico::logCritical("cannot change directory to " + config.chdir + ": " +
                         std::strerror(errno));
    return 1;
  }

  portico::logInfo(std::string("Starting portico ") + portico::kPorticoVersion);
  try {
    portico::process::Server server(config);
    if (!server.open(error)) {
      portico::logCritical(error);
      return 1;
    }
    for (const auto& name : server.listenerNames()) {
      portico::logInfo("Listening at: " + name + " (" + std::to_string(::getpid()) + ")");
    }
    PidFile pid;
    if (!config.pidFile.empty() && !pid.write(config.pidFile, error)) {
      portico::logCritical(error);
      return 1;
    }
    return server.run();
  } catch (const std::exception& e) {
    portico::logCritical(std::string("fatal: ") + e.what());
    return 1;
  }
}
