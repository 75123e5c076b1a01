#include "config/nginx_cli.h"

#include <openssl/opensslv.h>

#include <cctype>
#include <string_view>

#include "config/version.h"

namespace portico::config {
namespace {

constexpr char kDefaultConf[] = "conf/portico.conf";

bool allDigits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string absolute(const std::string& path, const std::string& base) {
  if (!path.empty() && path[0] == '/') return path;
  std::string dir = base;
  if (dir.empty() || dir.back() != '/') dir += '/';
  if (path == ".") return dir.substr(0, dir.size() - 1);
  if (path.rfind("./", 0) == 0) return dir + path.substr(2);
  return dir + path;
}

// gunicorn short options that take a value (cli.cpp's table), so their values are skipped.
bool gunicornTakesValue(char c) { return c == 'b' || c == 'w' || c == 'k' || c == 'n'; }

}  // namespace

CommandLineMode chooseCommandLineMode(const std::vector<std::string>& args) {
  std::string nginxOption, gunicornOption;
  bool prefixOption = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') {
      if (gunicornOption.empty()) gunicornOption = arg;
      continue;
    }
    if (arg[1] == '-') {
      if (gunicornOption.empty()) gunicornOption = arg.substr(0, arg.find('='));
      continue;
    }
    for (size_t j = 1; j < arg.size(); ++j) {
      char c = arg[j];
      std::string rest = arg.substr(j + 1);
      auto value = [&]() -> std::string {
        if (!rest.empty()) return rest;
        return i + 1 < args.size() ? args[++i] : std::string();
      };
      std::string flag = std::string("-") + c;
      if (c == 'c') {
        std::string file = value();
        if (endsWith(file, ".ini")) {
          // Neither nginx's nor gunicorn's: the ini file's own option says what it is.
          return {CommandLineMode::Kind::kError,
                  "portico: error: -c " + file + ": a uWSGI ini file? give it as --ini " + file};
        }
        // gunicorn's -c: a Python file or python:MODULE; any other file is nginx's.
        if (endsWith(file, ".py") || file.rfind("python:", 0) == 0) {
          if (gunicornOption.empty()) gunicornOption = "-c " + file;
          break;
        }
        if (nginxOption.empty()) nginxOption = flag;
        break;
      }
      if (c == 'T' || c == 'q' || c == 'V' || c == '?') {
        if (nginxOption.empty()) nginxOption = flag;
        continue;
      }
      if (c == 'g') {
        value();
        if (nginxOption.empty()) nginxOption = flag;
        break;
      }
      if (c == 't') {
        // gunicorn's -t takes seconds; nginx's -t takes nothing.
        if (allDigits(rest) || (rest.empty() && i + 1 < args.size() && allDigits(args[i + 1]))) {
          value();
          if (gunicornOption.empty()) gunicornOption = "-t";
          break;
        }
        if (nginxOption.empty()) nginxOption = flag;
        continue;
      }
      if (c == 'p') {
        value();
        prefixOption = true;
        break;
      }
      if (c == 's') {
        value();
        break;
      }
      if (c == 'e') {
        std::string v = value();
        if (v.find('=') != std::string::npos && gunicornOption.empty()) gunicornOption = "-e";
        break;
      }
      if (c == 'v' || c == 'h') continue;
      // gunicorn's other short options; a letter neither program knows decides nothing (the
      // chosen parser reports it).
      if (std::string_view("bwkDumnR").find(c) == std::string_view::npos) continue;
      if (gunicornOption.empty()) gunicornOption = flag;
      if (gunicornTakesValue(c)) {
        value();
        break;
      }
    }
  }
  if (!nginxOption.empty() && !gunicornOption.empty()) {
    return {CommandLineMode::Kind::kError,
            "portico: error: the nginx-style option " + nginxOption +
                " cannot be combined with the gunicorn-style " + gunicornOption +
                " (give either -c FILE with nginx's options, or gunicorn's flags and APP)"};
  }
  if (!nginxOption.empty() || (prefixOption && gunicornOption.empty())) {
    return {CommandLineMode::Kind::kNginx, ""};
  }
  return {CommandLineMode::Kind::kGunicorn, ""};
}

NginxCommandLine parseNginxCommandLine(const std::vector<std::string>& args,
                                       const std::string& cwd) {
  NginxCommandLine out;
  std::string conf, prefix, errorLog;
  bool version = false, help = false, test = false;
  auto fail = [&](std::string message) {
    out = NginxCommandLine{};
    out.action = NginxCommandLine::Action::kError;
    out.message = std::move(message);
    return out;
  };
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.empty() || arg[0] != '-') return fail("invalid option: \"" + arg + "\"");
    for (size_t j = 1; j < arg.size(); ++j) {
      char c = arg[j];
      switch (c) {
        case '?':
        case 'h':
          help = true;
          continue;
        case 'v':
          version = true;
          continue;
        case 'V':
          version = true;
          out.fullVersion = true;
          continue;
        case 't':
          test = true;
          continue;
        case 'T':
          test = true;
          out.dump = true;
          continue;
        case 'q':
          out.quiet = true;
          continue;
        case 'p':
        case 'c':
        case 'g':
        case 'e':
        case 's': {
          std::string value;
          if (j + 1 < arg.size()) {
            value = arg.substr(j + 1);
          } else if (i + 1 < args.size()) {
            value = args[++i];
          } else {
            static const char* kWhat[] = {"directory name", "file name", "parameter"};
            const char* what = c == 'p' ? kWhat[0] : (c == 'c' || c == 'e') ? kWhat[1] : kWhat[2];
            return fail("option \"-" + std::string(1, c) + "\" requires " + what);
          }
          if (c == 'p') prefix = value;
          if (c == 'c') conf = value;
          if (c == 'g') out.globalDirectives = value;
          if (c == 'e') errorLog = value;
          if (c == 's') {
            if (value != "stop" && value != "quit" && value != "reopen" && value != "reload") {
              return fail("invalid option: \"-s\" \"" + value + "\"");
            }
            out.signal = value;
          }
          j = arg.size();
          break;
        }
        default:
          return fail("invalid option: \"" + std::string(1, c) + "\"");
      }
    }
  }
  if (help) {
    out.action = NginxCommandLine::Action::kHelp;
    out.message = nginxVersionText(false) +
                  "\n"
                  "Usage: portico [-?hvVtTq] [-s signal] [-p prefix]\n"
                  "               [-e filename] [-c filename] [-g directives]\n"
                  "\n"
                  "Options:\n"
                  "  -?,-h         : this help\n"
                  "  -v            : show version and exit\n"
                  "  -V            : show version and build information and exit\n"
                  "  -t            : test configuration and exit\n"
                  "  -T            : test configuration, dump it and exit\n"
                  "  -q            : suppress non-error messages during configuration testing\n"
                  "  -s signal     : send signal to a master process: stop, quit, reopen, reload\n"
                  "  -p prefix     : set prefix path (default: the directory of the -c file)\n"
                  "  -e filename   : set error log file (default: stderr)\n"
                  "  -c filename   : set configuration file (default: PREFIX/conf/portico.conf)\n"
                  "  -g directives : set global directives out of configuration file\n"
                  "\n"
                  "Without these options portico reads gunicorn's flags (portico --help).\n";
    return out;
  }
  if (version) {
    out.action = NginxCommandLine::Action::kVersion;
    out.message = nginxVersionText(out.fullVersion);
    return out;
  }
  if (!prefix.empty()) {
    out.prefix = absolute(prefix, cwd);
    if (out.prefix.back() != '/') out.prefix += '/';
  }
  if (conf.empty()) {
    out.confFile = absolute(kDefaultConf, out.prefix.empty() ? cwd : out.prefix);
  } else {
    out.confFile = absolute(conf, out.prefix.empty() ? cwd : out.prefix);
  }
  if (out.prefix.empty()) out.prefix = out.confFile.substr(0, out.confFile.rfind('/') + 1);
  if (!errorLog.empty()) out.errorLog = errorLog == "stderr" ? "-" : absolute(errorLog, out.prefix);
  out.action = test ? NginxCommandLine::Action::kTest
               : !out.signal.empty() ? NginxCommandLine::Action::kSignal
                                     : NginxCommandLine::Action::kRun;
  return out;
}

std::string nginxVersionText(bool full) {
  std::string text = std::string("portico version: portico/") + kPorticoVersion;
  if (!full) return text;
#if defined(__clang__)
  text += "\nbuilt by clang " __clang_version__;
#elif defined(__GNUC__)
  text += "\nbuilt by gcc " __VERSION__;
#endif
  // nginx's lines for its TLS library (nginx-tests gates ssl files and `openssl:X.Y` checks on
  // them).
  text += "\nbuilt with " OPENSSL_VERSION_TEXT;
  text += "\nTLS SNI support enabled";
  text += "\nconfigure arguments: none (built with CMake); the prefix (-p) defaults to the "
          "directory of the -c file, -c to PREFIX/conf/portico.conf, the error log to stderr";
  return text;
}

ConfLoadResult loadNginxConfig(const NginxCommandLine& cli, ConfLoader& loader) {
  ConfLoadOptions options;
  options.confFile = cli.confFile;
  options.prefix = cli.prefix;
  options.globalDirectives = cli.globalDirectives;
  options.errorLog = cli.errorLog;  // nginx: the startup log, and the log if the file sets none
  ConfLoadResult result = loadConf(options, loader);
  return result;
}

}  // namespace portico::config
