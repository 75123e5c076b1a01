#include "config/wsgi_module.h"

#include <arpa/inet.h>

#include <cstdint>

namespace portico::config {
namespace {

WsgiSpec& companion(const DirectiveCall& call, WsgiPartial& level) {
  if (!level.wsgi) level.wsgi.emplace();
  if (!level.firstCompanion && call.name() != "wsgi_app") {
    level.firstCompanion = call.directive().source;
    level.firstCompanionName = call.name();
  }
  return *level.wsgi;
}

void app(const DirectiveCall& call, WsgiPartial& level) {
  using Match = Location::Match;
  Match m = *call.locationMatch();
  if (m == Match::kRegex || m == Match::kRegexCaseless) {
    call.emerg("the \"wsgi_app\" directive cannot be used inside a regex location");
  }
  if (level.hasApp) call.directiveError("is duplicate");
  const std::string& app = call.arg(0);
  if (app.empty() || app[0] == ':' || app.back() == ':') {
    call.emerg("invalid application " + quote(app) + " in \"wsgi_app\" directive, it must be "
               "\"module:callable\" or \"module\"");
  }
  WsgiSpec& w = companion(call, level);
  level.hasApp = true;
  w.app = app;
  w.source = call.directive().source;
  // A named location (`try_files $uri @django;`) has no prefix to strip: SCRIPT_NAME is "" and
  // the app sees the whole URI, as proxy_pass in a named location passes it.
  std::string prefix = m == Match::kNamed ? std::string() : call.locationPattern();
  if (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  w.scriptName = prefix;
}

void pythonpath(const DirectiveCall& call, WsgiPartial& level) {
  WsgiSpec& w = companion(call, level);
  for (const std::string& dir : call.args()) w.pythonPath.push_back(call.fullName(dir));
}

void virtualenv(const DirectiveCall& call, WsgiPartial& level) {
  WsgiSpec& w = companion(call, level);
  if (!w.virtualenv.empty()) call.directiveError("is duplicate");
  w.virtualenv = call.fullName(call.arg(0));
}

void chdir(const DirectiveCall& call, WsgiPartial& level) {
  WsgiSpec& w = companion(call, level);
  if (!w.chdir.empty()) call.directiveError("is duplicate");
  w.chdir = call.fullName(call.arg(0));
}

void threads(const DirectiveCall& call, WsgiPartial& level) {
  WsgiSpec& w = companion(call, level);
  if (level.threadsSet) call.directiveError("is duplicate");
  level.threadsSet = true;
  int64_t n = call.number(call.arg(0));
  if (n < 1 || n > 1024) call.emerg("value must be between 1 and 1024");
  w.threads = static_cast<int>(n);
}

void env(const DirectiveCall& call, WsgiPartial& level) {
  WsgiSpec& w = companion(call, level);
  if (call.arg(0).empty() || call.arg(0).find('=') != std::string::npos) {
    call.emerg("invalid variable name " + quote(call.arg(0)) + " in \"wsgi_env\" directive");
  }
  w.env.emplace_back(call.arg(0), call.arg(1));
}

// gunicorn's --forwarded-allow-ips for a file's app: the peers (addresses, or "*") whose
// X-Forwarded-Proto/-Protocol/-Ssl and X-Forwarded-For the environ follows (http/forwarded.h).
void forwardedAllowIps(const DirectiveCall& call, WsgiPartial& level) {
  WsgiSpec& w = companion(call, level);
  if (w.forwardedAllowIps) call.directiveError("is duplicate");
  std::vector<std::string> ips;
  for (const std::string& ip : call.args()) {
    unsigned char buf[16];
    if (ip != "*" && inet_pton(AF_INET, ip.c_str(), buf) != 1 &&
        inet_pton(AF_INET6, ip.c_str(), buf) != 1) {
      call.emerg("invalid address " + quote(ip) + " in \"wsgi_forwarded_allow_ips\" directive, "
                 "it must be an IP address or \"*\"");
    }
    ips.push_back(ip);
  }
  w.forwardedAllowIps = std::move(ips);
}

}  // namespace

const std::vector<ModuleDirective<WsgiPartial>>& wsgiDirectives() {
  static const std::vector<ModuleDirective<WsgiPartial>> kDirectives = {
      {"wsgi_app", kLocation, Args::k1, &app},
      {"wsgi_pythonpath", kLocation, Args::k1More, &pythonpath},
      {"wsgi_virtualenv", kLocation, Args::k1, &virtualenv},
      {"wsgi_chdir", kLocation, Args::k1, &chdir},
      {"wsgi_threads", kLocation, Args::k1, &threads},
      {"wsgi_env", kLocation, Args::k2, &env},
      {"wsgi_forwarded_allow_ips", kLocation, Args::k1More, &forwardedAllowIps},
  };
  return kDirectives;
}

void checkWsgi(const WsgiPartial& level) {
  if (level.wsgi && !level.hasApp) {
    throw ConfFailure{"[emerg] " + quote(level.firstCompanionName) +
                      " directive needs a \"wsgi_app\" directive in the same location in " +
                      describeSource(*level.firstCompanion)};
  }
}

void finishWsgi(const WsgiPartial& level, const std::string& tempPath,
                LocationSettings& settings) {
  if (!level.hasApp) return;
  settings.wsgi = level.wsgi;
  settings.wsgi->tempPath = tempPath;
  settings.wsgi->bodyInFileOnly =
      settings.clientBodyInFileOnly != LocationSettings::BodyInFile::kOff;
  settings.wsgi->keepBodyFile = settings.clientBodyInFileOnly == LocationSettings::BodyInFile::kOn;
}

}  // namespace portico::config
