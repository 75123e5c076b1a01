// portico: the command line becomes a configuration, the configuration a master and workers.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "config/cli.h"
#include "config/site_from_flags.h"
#include "config/version.h"
#include "core/log.h"
#include "process/master.h"
#include "process/process_title.h"

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

// nginx's -s: the running master is found through its pid file.
int sendSignal(const portico::config::Config& config) {
  static const std::pair<const char*, int> kSignals[] = {
      {"stop", SIGTERM}, {"quit", SIGQUIT}, {"reload", SIGHUP}, {"reopen", SIGUSR1}};
  int signo = 0;
  for (const auto& [name, sig] : kSignals) {
    if (config.signalCommand == name) signo = sig;
  }
  if (config.pidFile.empty()) {
    std::fprintf(stderr, "portico: error: -s %s needs --pid FILE to find the master\n",
                 config.signalCommand.c_str());
    return 1;
  }
  std::ifstream in(config.pidFile);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) {
    std::fprintf(stderr, "portico: error: cannot read a pid from \"%s\"%s\n",
                 config.pidFile.c_str(), in ? "" : ": no such file or not readable");
    return 1;
  }
  if (::kill(static_cast<pid_t>(pid), signo) != 0) {
    std::fprintf(stderr, "portico: error: kill(%ld, %s) failed: %s\n", pid,
                 config.signalCommand.c_str(), std::strerror(errno));
    return 1;
  }
  return 0;
}

// Everything before the master starts that touches the process: log, directory, environment.
bool prepare(portico::config::Config& config) {
  std::string error;
  if (!portico::ErrorLog::instance().configure(config.errorLogFile, config.logLevel, error)) {
    std::fprintf(stderr, "portico: error: %s\n", error.c_str());
    return false;
  }
  if (!config.chdir.empty() && ::chdir(config.chdir.c_str()) != 0) {
    portico::logCritical("cannot change directory to " + config.chdir + ": " +
                         std::strerror(errno));
    return false;
  }
  if (config.virtualenv.empty()) {
    // As activating it would: gunicorn users run it from an activated virtualenv.
    if (const char* venv = std::getenv("VIRTUAL_ENV"); venv && *venv) config.virtualenv = venv;
  }
  for (const auto& [key, value] : config.env) ::setenv(key.c_str(), value.c_str(), 1);
  return true;
}

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
  if (!config.signalCommand.empty()) return sendSignal(config);
  // Without -c FILE the gunicorn-style flags describe the site.
  if (config.confFile.empty()) portico::config::siteFromFlags(config);
  portico::process::initProcessTitle(argc, argv);
  if (!prepare(config)) return 1;

  portico::logInfo(std::string("Starting portico ") + portico::kPorticoVersion);
  try {
    // HUP re-reads the command line (the settings file, once there is one) as given at start.
    auto reload = [args](portico::config::Config& out, std::string& error) {
      CliResult again = portico::config::parseCommandLine(args);
      if (again.action != CliResult::Action::kRun) {
        error = again.message;
        return false;
      }
      out = std::move(again.config);
      if (out.confFile.empty()) portico::config::siteFromFlags(out);
      if (out.virtualenv.empty()) {
        if (const char* venv = std::getenv("VIRTUAL_ENV"); venv && *venv) out.virtualenv = venv;
      }
      for (const auto& [key, value] : out.env) ::setenv(key.c_str(), value.c_str(), 1);
      return true;
    };
    portico::process::Master master(config, reload);
    std::string error;
    if (!master.open(error)) {
      portico::logCritical(error);
      return 1;
    }
    PidFile pid;
    if (!config.pidFile.empty() && !pid.write(config.pidFile, error)) {
      portico::logCritical(error);
      return 1;
    }
    return master.run();
  } catch (const std::exception& e) {
    portico::logCritical(std::string("fatal: ") + e.what());
    return 1;
  }
}
