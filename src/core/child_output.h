#pragma once

// Running a piece of this program in a forked child and collecting what it writes: the
// worker check before start-up (-t, --check-config) and gunicorn's configuration file, both
// of which start Python, which the calling process must not.

#include <functional>
#include <string>

namespace portico {

// What a child wrote to its pipe and how it ended.
struct ChildOutput {
  std::string output;
  int status = 0;        // waitpid's status
  std::string error;     // non-empty: the child could not be started (pipe or fork failed)
  bool exitedZero() const;
  // "killed by signal N", "exit status N", or "" when it exited 0.
  std::string howItEnded() const;
};

// Forks; the child runs `body(writeFd)`, which must end the child with _exit (the caller's
// objects are never torn down twice). The parent reads the pipe to its end and reaps the child.
ChildOutput runInChild(const std::function<void(int writeFd)>& body);

// Writes all of `data` to `fd` (EINTR retried); for a child's answer.
void writeAll(int fd, const std::string& data);

}  // namespace portico
