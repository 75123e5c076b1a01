#pragma once

// gunicorn's Python configuration file (`-c gunicorn.conf.py`, `-c python:module`, and
// ./gunicorn.conf.py by default), run by the embedded interpreter as gunicorn runs it, its
// settings turned into gunicorn command-line words that the flags' parser reads first.

#include <string>
#include <vector>

#include "config/cli.h"

namespace portico::python {

// Runs `source` (a file path, or "python:MODULE") in a child process with its own interpreter
// (the caller's process never starts Python), with the current directory first on sys.path as
// gunicorn's — or, in a process that runs Python already (a master with --preload, reloading),
// with that interpreter, in a namespace of its own. Settings left at None are skipped, False flags too; names that are no setting
// are ignored, as gunicorn ignores them. False with `error` — the file's traceback, or every
// setting portico cannot honour (a server hook, --daemon's `daemon = True`, ...) as
// "FILE:LINE: ..." lines.
// Each setting becomes one command-line word ("--workers=4", or the app for wsgi_app) with the
// line that set it.
// `shown` names the file in messages (as the user gave it).
bool readGunicornConfig(const std::string& source, const std::string& shown,
                        std::vector<config::ConfigWord>& words, std::string& error);

}  // namespace portico::python
