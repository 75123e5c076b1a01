#pragma once

// uWSGI's ini files (`portico --ini uwsgi.ini[:SECTION]`, `portico uwsgi.ini`): one section read
// as uWSGI 2.0 reads it — `key = value` lines, `;`/`#` comments, `_` and `-` alike in names,
// magic variables (%d, %n, %h, ...), placeholders (%(name): an option or any key of the section,
// the first one set, else $UWSGI_NAME; resolved once the whole section is read) and $(ENV) —
// and each option turned into the portico command-line word with the same meaning, which the
// flags' parser reads first (the command line overrides them, as gunicorn's file).

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/cli.h"

namespace portico::config {

// What the magic variables stand for: the file and this process. Value type, filled by
// readUwsgiIni (tests give their own).
struct UwsgiIniPlace {
  std::string given;     // %o: the file as given on the command line
  std::string absolute;  // %p: its absolute path (%d, %s, %n, %e, %c and %0..%9 derive from it)
  std::string section;   // the section read ("uwsgi" unless FILE:SECTION)
  std::string startDir;  // %v: the directory portico was started in
  std::string hostname;  // %h
  long long startTime = 0;  // %t (seconds); %T is it in microseconds
  int cpus = 1;             // %k
  unsigned uid = 0;         // %u (%U: userName, else the number)
  unsigned gid = 0;         // %g (%G: groupName, else the number)
  std::string userName;
  std::string groupName;
  // The environment: $(NAME) and the placeholders' UWSGI_NAME fallback.
  std::map<std::string, std::string> environment;
};

// The ini file's options as portico words, in the file's order, each with its line.
struct UwsgiIni {
  std::string file;  // the file as given, without FILE:SECTION's section (messages name it)
  std::vector<ConfigWord> words;
  // Lines for the log: options accepted whose effect differs from uWSGI's (say how), and
  // `print` options' text (uWSGI prints them as it reads the file).
  std::vector<std::string> notes;
};

// Translates `text` (the file's contents). False with `error` = "FILE:LINE: ..." (FILE as
// given) for an unknown option, a value uWSGI would refuse, or one portico cannot honour.
bool translateUwsgiIni(std::string_view text, const UwsgiIniPlace& place, UwsgiIni& out,
                       std::string& error);

// Reads `spec` (FILE or FILE:SECTION, relative to `startDir`) and translates it with this
// process's magic values.
bool readUwsgiIni(const std::string& spec, const std::string& startDir, UwsgiIni& out,
                  std::string& error);

}  // namespace portico::config
