// portico: the command line (gunicorn's flags or nginx's -c FILE) becomes a configuration, the
// configuration a master and workers.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
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
#include "config/version.h"
#include "core/log.h"
#include "http/variables.h"
#include "process/master.h"
#include "process/process_title.h"
#include "process/server.h"
#include "config/uwsgi_ini.h"
#include "python/gunicorn_conf.h"

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

// Everything before the master starts that touches the process: log and directory. (The apps'
// environment — wsgi_env, -e, wsgi_virtualenv, --virtualenv, $VIRTUAL_ENV — is set where they
// are imported, from the site: python::WsgiRuntime::load.)
bool prepare(const portico::config::Config& config) {
  std::string error;
  portico::ErrorLog::useJsonFormat(config.jsonLogs);
  if (!portico::ErrorLog::instance().configure(config.errorLogFile, config.logLevel, error)) {
    std::fprintf(stderr, "portico: error: %s\n", error.c_str());
    return false;
  }
  if (!config.chdir.empty() && ::chdir(config.chdir.c_str()) != 0) {
    portico::logCritical("cannot change directory to " + config.chdir + ": " +
                         std::strerror(errno));
    return false;
  }
  return true;
}

// gunicorn's -D: fork, a new session, fork again (no controlling terminal can come back), and
// stdin/stdout/stderr on /dev/null unless -R. The first two processes exit 0 at once.
bool daemonize(bool keepStdio) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid > 0) ::_exit(0);
  if (::setsid() < 0) return false;
  pid = ::fork();
  if (pid < 0) return false;
  if (pid > 0) ::_exit(0);
  if (!keepStdio) {
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) return false;
    for (int fd = 0; fd <= 2; ++fd) ::dup2(null, fd);  // dup2 clears O_CLOEXEC on the copies
    if (null > 2) ::close(null);
  }
  return true;
}

// gunicorn's validate_file_exists on --reload-extra-file (with or without --reload), at start.
bool reloadExtraFilesExist(const portico::config::Config& config) {
  for (const std::string& file : config.reloadExtraFiles) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) {
      std::fprintf(stderr, "portico: error: argument --reload-extra-file: File %s does not exist.\n",
                   file.c_str());
      return false;
    }
  }
  return true;
}

// What gunicorn's process flags ask before the master starts: the umask (unix sockets, pid
// file, logs), detaching, and the checks of --worker-tmp-dir and --reload-extra-file.
bool applyProcessFlags(const portico::config::Config& config) {
  if (config.umask >= 0) ::umask(static_cast<mode_t>(config.umask));
  if (!reloadExtraFilesExist(config)) return false;
  if (!config.workerTmpDir.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(config.workerTmpDir, ec)) {
      std::fprintf(stderr, "portico: error: --worker-tmp-dir %s: not a directory\n",
                   config.workerTmpDir.c_str());
      return false;
    }
  }
  if (config.daemon && !daemonize(config.stdioInheritance)) {
    std::fprintf(stderr, "portico: error: cannot daemonize: %s\n", std::strerror(errno));
    return false;
  }
  return true;
}

// --capture-output: stdout and stderr (the app's prints) into the error log file, in the
// master and so in every worker it forks. Nothing to do when the error log is stderr.
void captureOutput(const portico::config::Config& config) {
  if (!config.captureOutput || config.errorLogFile == "-") return;
  int fd = portico::ErrorLog::instance().fileno();
  if (fd < 0) return;
  std::fflush(nullptr);
  ::dup2(fd, STDOUT_FILENO);
  ::dup2(fd, STDERR_FILENO);
}

// Starts the master with `config`; `reload` re-reads the settings on HUP. `notice`: a warning
// for the log once it is open (the flags without an app).
int runMaster(portico::config::Config& config, portico::process::Master::Reloader reload,
              int argc, char** argv, const std::string& notice = {},
              const std::vector<std::string>& notes = {}) {
  portico::process::initProcessTitle(argc, argv);
  if (!applyProcessFlags(config)) return 1;
  if (!prepare(config)) return 1;
  captureOutput(config);
  if (!notice.empty()) portico::logWarning(notice);
  for (const std::string& note : notes) portico::logInfo(note);
  if (!config.workerTmpDir.empty()) {
    portico::logInfo("--worker-tmp-dir " + config.workerTmpDir +
                     ": portico's workers report through shared memory, nothing is written there");
  }

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
    return true;
  };
  return runMaster(config, reload, argc, argv);
}

// gunicorn's flags with its configuration file: the command line and GUNICORN_CMD_ARGS are read
// once to find -c (else ./gunicorn.conf.py when it exists, as gunicorn), then again with the
// file's settings first. A file that cannot be read is kError with its message (exit 1, as
// gunicorn's "Error: ..."). A relative file (and the default one) is found from `startDir`, the
// directory portico was started in: a reload runs after --chdir.
portico::config::CliResult readFlags(const std::vector<std::string>& args,
                                     const std::string& startDir, bool& fileFailed) {
  namespace cfg = portico::config;
  fileFailed = false;
  cfg::CliEnvironment env = cfg::CliEnvironment::fromProcess();
  cfg::CliResult cli = cfg::parseCommandLine(args, env);
  if (cli.action == cfg::CliResult::Action::kError || cli.action == cfg::CliResult::Action::kHelp ||
      cli.action == cfg::CliResult::Action::kVersion) {
    return cli;
  }
  namespace fs = std::filesystem;
  // A file that cannot be read is kError with its message, exit 1 (gunicorn's "Error: ...").
  auto fileError = [&](const std::string& error) {
    cli.action = cfg::CliResult::Action::kError;
    cli.message = "portico: error: " + error;
    fileFailed = true;
    return cli;
  };
  std::string source = cli.flags.configSource;
  if (!cli.flags.iniSource.empty()) {
    // uWSGI's ini file takes the configuration file's place (./gunicorn.conf.py is not read).
    if (!source.empty()) {
      cli.action = cfg::CliResult::Action::kError;
      cli.message = "portico: error: give one configuration file: " + source + " (-c) or " +
                    cli.flags.iniSource + " (--ini)";
      return cli;
    }
    cfg::UwsgiIni ini;
    std::string error;
    if (!cfg::readUwsgiIni(cli.flags.iniSource, startDir, ini, error)) return fileError(error);
    env.configWords = std::move(ini.words);
    env.configSource = ini.file;  // FILE:SECTION's FILE: messages name FILE:LINE
    cfg::CliResult again = cfg::parseCommandLine(args, env);
    again.notes = std::move(ini.notes);
    return again;
  }
  std::error_code ec;
  if (source.empty() && fs::is_regular_file(fs::path(startDir) / "gunicorn.conf.py", ec)) {
    source = "gunicorn.conf.py";
  }
  if (source.empty()) return cli;
  // Messages name the file as given; it is read from where portico started.
  std::string path = source;
  if (!source.starts_with("python:") && !source.starts_with("/")) {
    path = (fs::path(startDir) / source).string();
  }
  std::string error;
  if (!portico::python::readGunicornConfig(path, source, env.configWords, error)) {
    return fileError(error);
  }
  env.configSource = source;
  return cfg::parseCommandLine(args, env);
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

  bool fileFailed = false;
  std::error_code ec;
  std::string startDir = std::filesystem::current_path(ec).string();
  CliResult cli = readFlags(args, startDir, fileFailed);
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
      return fileFailed ? 1 : 2;
    case CliResult::Action::kPrintConfig:
      std::fputs(cli.message.c_str(), stdout);
      std::fflush(stdout);
      [[fallthrough]];
    case CliResult::Action::kCheckConfig: {
      // gunicorn's --check-config: the app is loaded (here: a worker's boot in a child, after
      // --chdir), 0 when it can start, 1 with the error when not.
      // As gunicorn's check, which loads the app itself: a SyntaxError fails it even with
      // --reload (only a worker serves it).
      portico::config::Config config = cli.config;
      config.reload = false;
      if (!reloadExtraFilesExist(config)) return 1;
      if (!config.chdir.empty() && ::chdir(config.chdir.c_str()) != 0) {
        std::fprintf(stderr, "portico: error: cannot change directory to %s: %s\n",
                     config.chdir.c_str(), std::strerror(errno));
        return 1;
      }
      std::string error;
      if (!portico::process::Server::checkBoot(config, true, error)) {
        std::fprintf(stderr, "portico: error: %s\n", error.c_str());
        return 1;
      }
      return 0;
    }
    case CliResult::Action::kRun:
      break;
  }
  portico::config::Config& config = cli.config;
  if (!config.signalCommand.empty()) return sendSignal(config);
  // HUP re-reads the command line as given at start (the flags' site included), and the
  // configuration file, as gunicorn does.
  auto reload = [args, startDir](portico::config::Config& out, std::string& error) {
    bool failed = false;
    CliResult again = readFlags(args, startDir, failed);
    if (again.action != CliResult::Action::kRun) {
      error = again.message;
      return false;
    }
    out = std::move(again.config);
    return true;
  };
  return runMaster(config, reload, argc, argv, cli.notice, cli.notes);
}
