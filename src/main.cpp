// portico: the command line (gunicorn's flags or nginx's -c FILE) becomes a configuration, the
// configuration a master and workers.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/cli.h"
#include "config/nginx_cli.h"
#include "config/site_from_flags.h"
#include "config/version.h"
#include "core/log.h"
#include "http/variables.h"
#include "process/master.h"
#include "process/process_title.h"
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

// Starts the master with `config`; `reload` re-reads the settings on HUP.
int runMaster(portico::config::Config& config, portico::process::Master::Reloader reload,
              int argc, char** argv) {
  portico::process::initProcessTitle(argc, argv);
  if (!prepare(config)) return 1;

  portico::logInfo(std::string("Starting portico ") + portico::kPorticoVersion);
  try {
    portico::process::Master master(config, std::move(reload));
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

// What a reload does besides replacing the Config: the environment the app will see.
void applyEnvironment(portico::config::Config& out) {
  if (out.virtualenv.empty()) {
    if (const char* venv = std::getenv("VIRTUAL_ENV"); venv && *venv) out.virtualenv = venv;
  }
  for (const auto& [key, value] : out.env) ::setenv(key.c_str(), value.c_str(), 1);
}

// The sockets the Master opens come from Config::binds; with a file they are the servers'
// `listen`s (each address once). A bridge until the server reads them from the site itself.
void bindsFromListens(portico::config::Config& config) {
  using portico::config::BindAddress;
  config.binds.clear();
  for (const auto& server : config.site.servers) {
    for (const auto& listen : server.listens) {
      BindAddress bind;
      bind.kind = listen.isUnix ? BindAddress::Kind::kUnix : BindAddress::Kind::kTcp;
      bind.host = listen.host.empty() ? "0.0.0.0" : listen.host;
      bind.port = listen.port;
      bind.path = listen.path;
      bind.spec = listen.spec;
      bool seen = false;
      for (const BindAddress& other : config.binds) {
        seen |= other.kind == bind.kind && other.host == bind.host && other.port == bind.port &&
                other.path == bind.path;
      }
      if (!seen) config.binds.push_back(bind);
      if (listen.backlog > 0) config.backlog = listen.backlog;
    }
  }
}

// nginx's way: -c FILE (with -t, -T, -q, -s, -p, -g, -e, -v, -V).
int nginxMain(const std::vector<std::string>& args, int argc, char** argv) {
  // An nginx configuration's error log reads as nginx's (tools and nginx-tests parse it).
  portico::ErrorLog::useNginxFormat(true);
  namespace cfg = portico::config;
  std::string cwd = std::filesystem::current_path().string();
  cfg::NginxCommandLine cli = cfg::parseNginxCommandLine(args, cwd);
  switch (cli.action) {
    case cfg::NginxCommandLine::Action::kHelp:
    case cfg::NginxCommandLine::Action::kVersion:
      std::fprintf(stderr, "%s\n", cli.message.c_str());
      return 0;
    case cfg::NginxCommandLine::Action::kError:
      std::fprintf(stderr, "portico: %s\n", cli.message.c_str());
      return 2;
    default:
      break;
  }
  cfg::ConfLoader loader;
  cfg::ConfLoadResult loaded = cfg::loadNginxConfig(cli, loader);
  for (const std::string& message : loaded.messages) {
    std::fprintf(stderr, "portico: %s\n", message.c_str());
  }
  if (loaded.ok) {
    // Variables are compiled as nginx does at startup: an unknown one fails -t too.
    std::string error;
    if (!portico::http::validateTemplates(loaded.config.site, error)) {
      std::fprintf(stderr, "portico: [emerg] %s\n", error.c_str());
      loaded.ok = false;
    }
  }
  if (cli.action == cfg::NginxCommandLine::Action::kTest && loaded.ok) {
    // What start-up would refuse, -t refuses: as nginx's -t opens the log files, a worker's
    // boot is tried in a child (logs, `user`, and the wsgi_app import in its own interpreter).
    std::string error;
    applyEnvironment(loaded.config);
    if (!portico::process::Server::checkBoot(loaded.config, true, error)) {
      std::fprintf(stderr, "portico: [emerg] %s\n", error.c_str());
      loaded.ok = false;
    }
  }
  if (cli.action == cfg::NginxCommandLine::Action::kTest) {
    if (!loaded.ok) {
      std::fprintf(stderr, "portico: configuration file %s test failed\n", cli.confFile.c_str());
      return 1;
    }
    if (!cli.quiet) {
      std::fprintf(stderr, "portico: the configuration file %s syntax is ok\n",
                   cli.confFile.c_str());
      std::fprintf(stderr, "portico: configuration file %s test is successful\n",
                   cli.confFile.c_str());
    }
    if (cli.dump) {
      for (const cfg::ConfFileText& file : loader.files()) {
        std::printf("# configuration file %s:\n", file.path.c_str());
        std::fwrite(file.text.data(), 1, file.text.size(), stdout);
        std::printf("\n");
      }
    }
    return 0;
  }
  if (!loaded.ok) return 1;
  cfg::Config& config = loaded.config;
  if (cli.action == cfg::NginxCommandLine::Action::kSignal) {
    config.signalCommand = cli.signal;
    if (config.pidFile.empty()) {
      std::fprintf(stderr,
                   "portico: error: -s %s needs a \"pid\" directive in %s to find the master\n",
                   cli.signal.c_str(), cli.confFile.c_str());
      return 1;
    }
    return sendSignal(config);
  }
  // HUP re-reads the file; a broken file is reported and the running configuration stays.
  auto reload = [cli](cfg::Config& out, std::string& error) {
    cfg::ConfLoader again;
    cfg::ConfLoadResult result = cfg::loadNginxConfig(cli, again);
    for (const std::string& message : result.messages) {
      if (result.ok || &message != &result.messages.back()) portico::logWarning(message);
    }
    if (!result.ok) {
      error = result.messages.empty() ? "configuration error" : result.messages.back();
      return false;
    }
    out = std::move(result.config);
    bindsFromListens(out);
    applyEnvironment(out);
    return true;
  };
  bindsFromListens(config);
  return runMaster(config, reload, argc, argv);
}

}  // namespace

int main(int argc, char** argv) {
  using portico::config::CliResult;
  using portico::config::CommandLineMode;
  std::vector<std::string> args(argv, argv + argc);
  CommandLineMode mode = portico::config::chooseCommandLineMode(args);
  if (mode.kind == CommandLineMode::Kind::kError) {
    std::fprintf(stderr, "%s\n", mode.message.c_str());
    return 2;
  }
  if (mode.kind == CommandLineMode::Kind::kNginx) return nginxMain(args, argc, argv);

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
  // The gunicorn-style flags describe the site as the equivalent nginx configuration would.
  portico::config::siteFromFlags(config);
  // HUP re-reads the command line as given at start.
  auto reload = [args](portico::config::Config& out, std::string& error) {
    CliResult again = portico::config::parseCommandLine(args);
    if (again.action != CliResult::Action::kRun) {
      error = again.message;
      return false;
    }
    out = std::move(again.config);
    portico::config::siteFromFlags(out);
    applyEnvironment(out);
    return true;
  };
  return runMaster(config, reload, argc, argv);
}
