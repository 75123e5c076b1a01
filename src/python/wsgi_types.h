#pragma once

// Internal to the WSGI implementation: the Python types behind start_response, write and the
// environ's wsgi.* objects, and the per-request response state they share with WsgiApp::run.

#include "python/py_ref.h"  // Python.h first

#include <cstdint>
#include <memory>
#include <string>

#include "http/response.h"
#include "python/wsgi_job.h"

namespace portico::python {

// Progress of one response, shared by WsgiApp::run and its request's start_response/write
// callables. It lives inside the start_response object, so a callable the app keeps (or calls
// from another thread) never outlives it; only touched with the GIL held.
struct ResponseState {
  std::shared_ptr<ResponseChannel> channel;
  bool isHead = false;      // HEAD request: the connection drops the body, so we skip copying it
  bool finished = false;    // run() is done: the callables refuse further calls
  bool started = false;     // start_response succeeded: head.status/headers are the app's
  bool headSent = false;
  bool clientGone = false;  // a channel call returned false
  bool appLength = false;   // head.contentLength came from the app's Content-Length header
  bool dropBody = false;    // set when the head goes out: HEAD, 204 or 304
  http::ResponseHead head;

  // Hands the head to the channel with the GIL released; false when the client is gone.
  // `flush`: hand it over now (no body follows at once: the app may block before the next).
  bool sendHead(bool flush = false);
  // Copies `n` bytes (owned by a bytes object the caller keeps alive) and hands them to the
  // channel with the GIL released; false when the client is gone.
  bool sendBody(const char* data, size_t n);
};

// Formats the pending Python exception (clearing it) the way traceback.format_exception does,
// without the trailing newline. `formatException` is traceback.format_exception (may be null,
// then only "Type: message" is produced).
std::string takePythonError(PyObject* formatException);

// Encodes a str as UTF-8 (lone surrogates backslash-escaped); "" for non-str.
std::string toUtf8(PyObject* text);

// The portico.* Python types, created once per WsgiApp with the GIL held; the factory methods
// are called with the GIL held on executor threads.
class WsgiTypes {
 public:
  bool init(std::string& error);

  // wsgi.input over `body` (new reference; null with an exception set on failure).
  PyRef newInputStream(std::shared_ptr<const RequestBody> body);
  // Lets go of the body of a stream made by newInputStream: it reads as empty from now on.
  static void detachInput(PyObject* input);
  // wsgi.errors: lines go to portico's error log.
  PyRef newErrorStream();
  // A start_response callable with a fresh ResponseState for one request.
  PyRef newStartResponse(std::shared_ptr<ResponseChannel> channel, bool isHead);
  // The state inside a start_response object made by newStartResponse.
  static ResponseState& stateOf(PyObject* startResponse);

  // The wsgi.file_wrapper type (borrowed).
  PyObject* fileWrapperType() const { return fileWrapperType_.get(); }
  bool isFileWrapper(PyObject* object) const {
    return PyObject_TypeCheck(object, reinterpret_cast<PyTypeObject*>(fileWrapperType_.get()));
  }
  // The file-like object a FileWrapper wraps (borrowed); `wrapper` must be one.
  static PyObject* fileWrapperFilelike(PyObject* wrapper);

 private:
  PyRef inputType_;
  PyRef errorType_;
  PyRef fileWrapperType_;
  PyRef startResponseType_;
  PyRef writeType_;
};

}  // namespace portico::python
