#pragma once

// Reads configuration files for the builder: the main file, `include` expansion with glob(3),
// and the record of every file read (what `-T` dumps). Owned by one load; single-threaded.

#include <map>
#include <string>
#include <vector>

namespace portico::config {

// One file read during a load, in the order first read.
struct ConfFileText {
  std::string path;  // absolute
  std::string text;
};

// The file side of a configuration load. By default it reads the real filesystem; tests may
// give it an in-memory tree instead (addMemoryFile), so the builder stays testable without I/O.
class ConfLoader {
 public:
  // Include nesting beyond this is an error (nginx has no bound and would run out of files).
  static constexpr int kMaxIncludeDepth = 32;

  // Serve reads from memory: path → text. Globs match these paths with fnmatch(3).
  void addMemoryFile(const std::string& path, std::string text);

  // Reads `path` (absolute) and records it for -T. False with nginx's message, e.g.
  // `open() "/x.conf" failed (2: No such file or directory)`; `readFailed` is set when the file
  // opened but could not be read (a directory): nginx reports that at [crit], without "in".
  bool readFile(const std::string& path, std::string& text, std::string& error,
                bool* readFailed = nullptr);

  // nginx's `include ARG`: ARG relative to `confPrefix` (the main file's directory, ending in
  // '/'); a pattern with * ? [ is a glob whose matches come back sorted (none is fine), anything
  // else is one path that must exist when read. False with a message for a failing glob.
  bool expandInclude(const std::string& arg, const std::string& confPrefix,
                     std::vector<std::string>& paths, std::string& error) const;

  // Every file read, first read first, each path once.
  const std::vector<ConfFileText>& files() const { return files_; }

 private:
  bool memory_ = false;
  std::map<std::string, std::string> memoryFiles_;
  std::vector<ConfFileText> files_;
};

}  // namespace portico::config
