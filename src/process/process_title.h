#pragma once

#include <string>

namespace portico::process {

// Remembers where argv lives so the title shown by ps can be rewritten later (nginx and
// gunicorn's setproctitle do the same). Call once from main with the original argv.
void initProcessTitle(int argc, char** argv);
// Shows `title` in ps/top (argv area, padded) and as the thread name (15 characters).
void setProcessTitle(const std::string& title);

}  // namespace portico::process
