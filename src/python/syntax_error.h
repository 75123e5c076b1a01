#pragma once

#include <string>

namespace portico::python {

// gunicorn's rule under --reload (workers/base.py load_wsgi): an app whose import raises
// SyntaxError is not a boot failure; what the import raised, for the log and the watcher.
// Value type, filled by WsgiApp::load with the GIL held, read by the worker's Server.
struct ImportSyntaxError {
  std::string app;        // the app's "module:callable"
  std::string file;       // the exception's filename: watched until it is fixed
  std::string message;    // str() of the exception, the log line's head
  std::string traceback;  // the whole traceback: logged, and the body of every 500
};

}  // namespace portico::python
