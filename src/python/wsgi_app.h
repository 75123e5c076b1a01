#pragma once

#include <memory>
#include <string>

#include "python/py_ref.h"
#include "python/syntax_error.h"
#include "python/wsgi_job.h"

namespace portico::python {

// Facts about the serving process the environ must tell truthfully.
struct WsgiSettings {
  bool multithread = false;   // wsgi.multithread: --threads > 1
  bool multiprocess = false;  // wsgi.multiprocess: more than one worker process
  std::string serverName;     // SERVER_NAME fallback when the request has no Host
};

// A loaded WSGI application plus everything per-process it needs to serve requests (the
// _portico types, interned environ keys). Created on the main thread after the interpreter
// starts; run() is called on executor threads, each holding the GIL.
class WsgiApp {
 public:
  // Imports "module:callable" (or "module" → "module:application"). On failure returns null
  // and fills `error` with the Python traceback (or a clear message) for the error log.
  // The caller holds the GIL.
  // With `syntaxError` (--reload), an import (or factory call) that raises SyntaxError fills
  // it and yields an app that answers every request 500 with the traceback as its body
  // (gunicorn's util.make_fail_app).
  static std::unique_ptr<WsgiApp> load(const std::string& spec, const WsgiSettings& settings,
                                       std::string& error,
                                       ImportSyntaxError* syntaxError = nullptr);
  virtual ~WsgiApp() = default;

  // Serves one request completely (PEP 3333): builds the environ, calls the app, validates
  // start_response, sends the head and body through job.channel (releasing the GIL around every
  // blocking channel call and file-backed body read), always calls the iterable's close(), and
  // turns exceptions into a 500 (before the head went out) or abortConnection() (after), with
  // the traceback in the error log. The caller holds the GIL; never throws.
  virtual void run(WsgiJob& job) = 0;
};

}  // namespace portico::python
