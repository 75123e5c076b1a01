#include "python/wsgi_app.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <string_view>
#include <vector>

#include "core/log.h"
#include "http/response.h"
#include "python/wsgi_environ.h"
#include "python/wsgi_types.h"

namespace portico::python {

namespace {

// A list/tuple body up to this size is joined and handed over with the head in one
// sendWhole(); larger ones stream through sendBody so backpressure bounds the copies.
constexpr size_t kWholeBodyLimit = 1024 * 1024;
// Up to this size a body is copied and handed over with the GIL held.
constexpr size_t kCopyWithGilLimit = 16 * 1024;

bool isIdentifier(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (unsigned char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c >= 0x80;
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string> splitDots(std::string_view s) {
  std::vector<std::string> parts;
  for (;;) {
    size_t dot = s.find('.');
    parts.emplace_back(s.substr(0, dot));
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  return parts;
}

// What happened to a response; on kError a Python exception is set.
enum class Outcome { kDone, kWholeSent, kGone, kError };

// The WSGI app behind WsgiApp: the resolved callable plus the types and environ machinery.
// Created on the main thread with the GIL; run() on executor threads holding the GIL.
class WsgiAppImpl final : public WsgiApp {
 public:
  bool init(const WsgiSettings& settings, std::string& error);
  bool resolve(const std::string& spec, std::string& error);
  void run(WsgiJob& job) override;
  ImportSyntaxError* syntaxError_ = nullptr;  // --reload: a SyntaxError is served, not fatal

 private:
  // With syntaxError_: when the pending exception is a SyntaxError, takes it and becomes the
  // app that answers with it; false (the exception left pending) otherwise.
  bool serveSyntaxError();
  Outcome respond(PyObject* result, ResponseState& st);
  Outcome respondSequence(PyObject* seq, ResponseState& st);
  Outcome respondIterable(PyObject* result, ResponseState& st);
  // Outcome::kError without an exception set means "not a sendfile candidate".
  Outcome trySendfile(PyObject* wrapper, ResponseState& st, bool& handled);
  bool requireStarted(const ResponseState& st);
  void callClose(PyObject* result, const WsgiJob& job);
  void logRequestError(const WsgiJob& job, const std::string& traceback);
  void sendInternalError(ResponseState& st);

  WsgiTypes types_;
  EnvironBuilder environ_;
  PyRef app_;
  PyRef formatException_;
  PyRef closeName_;
  PyTypeObject* listIterType_ = nullptr;   // type(iter([])), immortal in practice (a static type)
  PyTypeObject* tupleIterType_ = nullptr;  // type(iter(()))
  PyRef filenoName_;
  PyRef tellName_;
};

bool WsgiAppImpl::init(const WsgiSettings& settings, std::string& error) {
  if (!types_.init(error)) return false;
  if (!environ_.init(settings, types_.fileWrapperType(), error)) return false;
  PyRef traceback = PyRef::steal(PyImport_ImportModule("traceback"));
  if (traceback) {
    formatException_ = PyRef::steal(PyObject_GetAttrString(traceback.get(), "format_exception"));
  }
  closeName_ = PyRef::steal(PyUnicode_InternFromString("close"));
  {
    PyRef list = PyRef::steal(PyList_New(0));
    PyRef listIter = PyRef::steal(list ? PyObject_GetIter(list.get()) : nullptr);
    PyRef tuple = PyRef::steal(PyTuple_New(0));
    PyRef tupleIter = PyRef::steal(tuple ? PyObject_GetIter(tuple.get()) : nullptr);
    if (!listIter || !tupleIter) {
      error = takePythonError(nullptr);
      return false;
    }
    listIterType_ = Py_TYPE(listIter.get());
    tupleIterType_ = Py_TYPE(tupleIter.get());
  }
  filenoName_ = PyRef::steal(PyUnicode_InternFromString("fileno"));
  tellName_ = PyRef::steal(PyUnicode_InternFromString("tell"));
  if (!formatException_ || !closeName_ || !filenoName_ || !tellName_) {
    error = takePythonError(nullptr);
    return false;
  }
  return true;
}

bool WsgiAppImpl::resolve(const std::string& spec, std::string& error) {
  std::string module = spec;
  std::string attr = "application";
  size_t colon = spec.find(':');
  if (colon != std::string::npos) {
    module = spec.substr(0, colon);
    attr = spec.substr(colon + 1);
  }
  for (const std::string& part : splitDots(module)) {
    if (!isIdentifier(part)) {
      error = "Invalid application module name '" + module + "' in '" + spec + "'.";
      return false;
    }
  }
  std::string path = attr;
  bool call = path.size() > 2 && path.compare(path.size() - 2, 2, "()") == 0;
  if (call) path.resize(path.size() - 2);
  std::vector<std::string> parts = splitDots(path);
  for (const std::string& part : parts) {
    if (!isIdentifier(part)) {
      error = "Failed to parse '" + attr + "' as an attribute name or function call.";
      return false;
    }
  }

  PyRef object = PyRef::steal(PyImport_ImportModule(module.c_str()));
  if (!object) {
    if (serveSyntaxError()) return true;
    error = takePythonError(formatException_.get());
    return false;
  }
  for (const std::string& part : parts) {
    PyRef next = PyRef::steal(PyObject_GetAttrString(object.get(), part.c_str()));
    if (!next) {
      if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        error = "Failed to find attribute '" + path + "' in '" + module + "'.";
      } else {
        error = takePythonError(formatException_.get());
      }
      return false;
    }
    object = std::move(next);
  }
  if (call) {
    if (!PyCallable_Check(object.get())) {
      error = "Application factory '" + path + "' in '" + module + "' is not callable.";
      return false;
    }
    PyRef made = PyRef::steal(PyObject_CallNoArgs(object.get()));
    if (!made && serveSyntaxError()) return true;
    if (!made) {
      error = "Error calling the application factory '" + attr + "' in '" + module + "':\n" +
              takePythonError(formatException_.get());
      return false;
    }
    object = std::move(made);
  }
  if (!PyCallable_Check(object.get())) {
    error = "Application object must be callable.";
    return false;
  }
  app_ = std::move(object);
  return true;
}

bool WsgiAppImpl::requireStarted(const ResponseState& st) {
  if (st.started) return true;
  PyErr_SetString(PyExc_AssertionError,
                  "the application produced a body without calling start_response()");
  return false;
}

void WsgiAppImpl::logRequestError(const WsgiJob& job, const std::string& traceback) {
  const http::Request& req = *job.snapshot.request;
  std::string message = "Error handling request ";
  message.append(req.method).append(" ").append(req.target).append("\n").append(traceback);
  logError(message);
}

void WsgiAppImpl::sendInternalError(ResponseState& st) {
  http::ResponseHead head;
  head.status = 500;
  head.add("Content-Type", "text/html");
  std::string body = http::errorPageBody(500);
  head.contentLength = body.size();
  st.headSent = true;
  GilRelease release;
  st.channel->sendWhole(std::move(head), std::move(body));
}

void WsgiAppImpl::callClose(PyObject* result, const WsgiJob& job) {
  if (PyList_CheckExact(result) || PyTuple_CheckExact(result)) return;  // no close() to call
  PyObject* rawClose = nullptr;
  int found = _PyObject_LookupAttr(result, closeName_.get(), &rawClose);
  PyRef close = PyRef::steal(rawClose);
  if (found > 0) {
    PyRef done = PyRef::steal(PyObject_CallNoArgs(close.get()));
    if (done) return;
  } else if (found == 0) {
    return;
  }
  logRequestError(job, takePythonError(formatException_.get()));
}

Outcome WsgiAppImpl::respondSequence(PyObject* seq, ResponseState& st) {
  // Lists and tuples: the total length is known up front, so the response gets a
  // Content-Length, and a small body goes out with its head in a single hand-off.
  Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
  PyObject** items = PySequence_Fast_ITEMS(seq);
  uint64_t total = 0;
  for (Py_ssize_t i = 0; i < count; ++i) {
    if (!PyBytes_Check(items[i])) {
      PyErr_Format(PyExc_TypeError, "response body items must be bytes, not %.100s",
                   Py_TYPE(items[i])->tp_name);
      return Outcome::kError;
    }
    total += static_cast<uint64_t>(PyBytes_GET_SIZE(items[i]));
  }
  if (!st.headSent) {
    if (!requireStarted(st)) return Outcome::kError;
    if (!st.appLength) st.head.contentLength = total;
    if (count == 1 || total <= kWholeBodyLimit) {
      http::ResponseHead head = std::move(st.head);
      st.headSent = true;
      bool dropBody = st.isHead || http::statusHasNoBody(head.status);
      std::string body;
      std::shared_ptr<ResponseChannel> channel = st.channel;
      if (count == 1 && total > kCopyWithGilLimit) {
        // One large item: copy it without the GIL; bytes are immutable and `item` keeps it
        // alive even if another thread empties the list meanwhile.
        PyRef item = PyRef::borrow(items[0]);
        GilRelease release;
        // Only what the connection may hold in memory is copied; the rest goes straight from
        // the bytes object to the response's temporary file.
        channel->sendWholeBytes(std::move(head), PyBytes_AS_STRING(item.get()),
                                dropBody ? 0 : static_cast<size_t>(total));
      } else {
        if (!dropBody) {
          body.reserve(static_cast<size_t>(total));
          for (Py_ssize_t i = 0; i < count; ++i) {
            body.append(PyBytes_AS_STRING(items[i]),
                        static_cast<size_t>(PyBytes_GET_SIZE(items[i])));
          }
        }
        if (total > kCopyWithGilLimit) {
          GilRelease release;
          channel->sendWhole(std::move(head), std::move(body));
        } else {
          // sendWhole only queues (it never waits), and for a small body giving the GIL up
          // and taking it back would cost more than the copy.
          channel->sendWhole(std::move(head), std::move(body));
        }
      }
      return Outcome::kWholeSent;  // sendWhole finishes, even when the client is gone
    }
    if (!st.sendHead()) return Outcome::kGone;
  }
  for (Py_ssize_t i = 0;; ++i) {
    // A list may change while sendBody runs without the GIL: re-read it every time.
    if (i >= PySequence_Fast_GET_SIZE(seq)) break;
    PyRef item = PyRef::borrow(PySequence_Fast_ITEMS(seq)[i]);
    if (!PyBytes_Check(item.get())) {
      PyErr_SetString(PyExc_TypeError, "response body items must be bytes");
      return Outcome::kError;
    }
    if (!st.sendBody(PyBytes_AS_STRING(item.get()), static_cast<size_t>(PyBytes_GET_SIZE(item.get())))) {
      return Outcome::kGone;
    }
  }
  return Outcome::kDone;
}

Outcome WsgiAppImpl::trySendfile(PyObject* wrapper, ResponseState& st, bool& handled) {
  handled = false;
  PyObject* filelike = WsgiTypes::fileWrapperFilelike(wrapper);
  if (!filelike) return Outcome::kDone;
  PyObject* rawFileno = nullptr;
  if (_PyObject_LookupAttr(filelike, filenoName_.get(), &rawFileno) <= 0) {
    PyErr_Clear();
    return Outcome::kDone;
  }
  PyRef filenoMethod = PyRef::steal(rawFileno);
  PyRef filenoResult = PyRef::steal(PyObject_CallNoArgs(filenoMethod.get()));
  long fd = filenoResult ? PyLong_AsLong(filenoResult.get()) : -1;
  if (fd < 0 || PyErr_Occurred()) {
    PyErr_Clear();  // e.g. io.UnsupportedOperation: not a real file, iterate it instead
    return Outcome::kDone;
  }
  struct stat info;
  if (::fstat(static_cast<int>(fd), &info) != 0 || !S_ISREG(info.st_mode)) return Outcome::kDone;

  // The app may have read part of the file already: send from its logical position.
  long long offset = -1;
  PyObject* rawTell = nullptr;
  if (_PyObject_LookupAttr(filelike, tellName_.get(), &rawTell) > 0) {
    PyRef tell = PyRef::steal(rawTell);
    PyRef position = PyRef::steal(PyObject_CallNoArgs(tell.get()));
    if (position) offset = PyLong_AsLongLong(position.get());
  }
  if (offset < 0 || PyErr_Occurred()) {
    PyErr_Clear();
    offset = ::lseek(static_cast<int>(fd), 0, SEEK_CUR);
    if (offset < 0) return Outcome::kDone;
  }
  uint64_t size = static_cast<uint64_t>(info.st_size);
  uint64_t start = static_cast<uint64_t>(offset);
  uint64_t length = size > start ? size - start : 0;

  handled = true;
  if (!st.headSent) {
    if (!requireStarted(st)) return Outcome::kError;
    if (st.appLength) {
      length = std::min(length, *st.head.contentLength);
    } else {
      st.head.contentLength = length;
    }
  }
  int copy = ::fcntl(static_cast<int>(fd), F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    PyErr_SetFromErrno(PyExc_OSError);
    return Outcome::kError;
  }
  auto file = std::make_shared<const UniqueFd>(copy);
  if (!st.headSent && !st.sendHead()) return Outcome::kGone;
  if (length == 0 || st.dropBody) return Outcome::kDone;
  bool ok;
  {
    GilRelease release;
    ok = st.channel->sendBody(BodyChunk(FileRange{std::move(file), start, length}));
  }
  if (!ok) {
    st.clientGone = true;
    return Outcome::kGone;
  }
  return Outcome::kDone;
}

Outcome WsgiAppImpl::respondIterable(PyObject* result, ResponseState& st) {
  PyRef iter = PyRef::steal(PyObject_GetIter(result));
  if (!iter) return Outcome::kError;
  if (Py_TYPE(iter.get()) == listIterType_ || Py_TYPE(iter.get()) == tupleIterType_) {
    // An iterable over a list (Django's HttpResponse): the items already exist and taking
    // them runs no app code, so it is answered as a list — head, body and end in one hand-off,
    // with its Content-Length.
    PyRef items = PyRef::steal(PySequence_List(iter.get()));
    if (!items) return Outcome::kError;
    return respondSequence(items.get(), st);
  }
  for (;;) {
    PyRef item = PyRef::steal(PyIter_Next(iter.get()));
    if (!item) {
      if (PyErr_Occurred()) return Outcome::kError;
      break;
    }
    if (!PyBytes_Check(item.get())) {
      PyErr_Format(PyExc_TypeError, "response body items must be bytes, not %.100s",
                   Py_TYPE(item.get())->tp_name);
      return Outcome::kError;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(item.get());
    if (n == 0) continue;  // PEP 3333: empty items do not send the head
    // A generator may call start_response at its first step, so check only now.
    if (!st.headSent) {
      if (!requireStarted(st)) return Outcome::kError;
      if (!st.sendHead()) return Outcome::kGone;
    }
    if (!st.sendBody(PyBytes_AS_STRING(item.get()), static_cast<size_t>(n))) return Outcome::kGone;
  }
  if (!st.headSent) {
    // The body is empty and the app is done: now the head goes out, with its true length.
    if (!requireStarted(st)) return Outcome::kError;
    if (!st.appLength) st.head.contentLength = 0;
    if (!st.sendHead()) return Outcome::kGone;
  }
  return Outcome::kDone;
}

Outcome WsgiAppImpl::respond(PyObject* result, ResponseState& st) {
  if (PyList_CheckExact(result) || PyTuple_CheckExact(result)) {
    return respondSequence(result, st);
  }
  if (types_.isFileWrapper(result)) {
    bool handled;
    Outcome outcome = trySendfile(result, st, handled);
    if (handled) return outcome;
  }
  return respondIterable(result, st);
}

void WsgiAppImpl::run(WsgiJob& job) {
  try {
    const RequestSnapshot& snapshot = job.snapshot;
    PyRef startResponse = types_.newStartResponse(job.channel, snapshot.request->isHead());
    if (!startResponse) {  // out of memory
      logRequestError(job, takePythonError(formatException_.get()));
      ResponseState bare;
      bare.channel = job.channel;
      sendInternalError(bare);
      return;
    }
    ResponseState& st = WsgiTypes::stateOf(startResponse.get());
    PyRef result;
    // Whatever happens below, the callables the app may have kept refuse later calls — also
    // from a finalizer that runs when `result` is released (declared after it, so runs first).
    struct Finisher {
      ResponseState& st;
      ~Finisher() { st.finished = true; }
    } finisher{st};
    PyRef input = types_.newInputStream(job.body);
    {
      PyRef errors = input ? types_.newErrorStream() : PyRef();
      PyRef environ = errors ? environ_.build(snapshot, job.body->size(), input.get(), errors.get())
                             : PyRef();
      if (environ) {
        PyObject* args[2] = {environ.get(), startResponse.get()};
        result = PyRef::steal(PyObject_Vectorcall(app_.get(), args, 2, nullptr));
      }
    }

    Outcome outcome = result ? respond(result.get(), st) : Outcome::kError;
    std::string traceback;
    if (outcome == Outcome::kError) traceback = takePythonError(formatException_.get());
    if (outcome == Outcome::kDone || outcome == Outcome::kGone) {
      // The response is complete before close() runs (as gunicorn does): the client does not
      // wait for the app's clean-up, and write() from close() is refused.
      st.finished = true;
      job.channel->finish();  // only queues: no need to give the GIL up
    }
    if (result) callClose(result.get(), job);  // PEP 3333: always, whatever happened
    // The request is over: its body's memory (or file) goes back now, not when the app's last
    // reference to wsgi.input dies — Django's request objects live in reference cycles, so that
    // would wait for the cyclic GC, and the worker's body budget with it.
    if (input) WsgiTypes::detachInput(input.get());

    switch (outcome) {
      case Outcome::kWholeSent:
      case Outcome::kDone:
      case Outcome::kGone:
        break;
      case Outcome::kError:
        if (st.clientGone) {
          // The app saw its write() fail because the client left: nothing worth an error.
          logDebug("client went away during " + snapshot.request->method + " " +
                   snapshot.request->target);
          GilRelease release;
          job.channel->finish();
        } else if (!st.headSent) {
          logRequestError(job, traceback);
          sendInternalError(st);
        } else {
          // Part of the response is out: a 500 is impossible, a truncated response honest.
          logRequestError(job, traceback);
          GilRelease release;
          job.channel->abortConnection();
        }
        break;
    }
  } catch (const std::exception& e) {
    // Only allocation failures can get here; never let them cross into the executor.
    PyErr_Clear();
    logError(std::string("WSGI request failed: ") + e.what());
    job.channel->abortConnection();
  }
}

}  // namespace

// gunicorn's util.make_fail_app: every request is answered 500 with `msg` (text/plain).
constexpr const char* kFailApp = R"PY(
def make_fail_app(msg):
    msg = msg.encode("utf-8", "surrogateescape")

    def app(environ, start_response):
        start_response("500 Internal Server Error", [
            ("Content-Type", "text/plain"),
            ("Content-Length", str(len(msg)))
        ])
        return [msg]

    return app
)PY";

bool WsgiAppImpl::serveSyntaxError() {
  if (!syntaxError_ || !PyErr_ExceptionMatches(PyExc_SyntaxError)) return false;
  PyObject* type = nullptr;
  PyObject* value = nullptr;
  PyObject* tb = nullptr;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  ImportSyntaxError& out = *syntaxError_;
  if (value) {
    PyRef filename = PyRef::steal(PyObject_GetAttrString(value, "filename"));
    if (filename && PyUnicode_Check(filename.get())) out.file = toUtf8(filename.get());
    PyRef text = PyRef::steal(PyObject_Str(value));
    if (text) out.message = toUtf8(text.get());
    PyErr_Clear();
  }
  PyErr_Restore(type, value, tb);  // takes the references back
  out.traceback = takePythonError(formatException_.get());
  PyRef globals = PyRef::steal(PyDict_New());
  bool ready =
      globals && PyDict_SetItemString(globals.get(), "__builtins__", PyEval_GetBuiltins()) == 0;
  PyRef ran = ready ? PyRef::steal(PyRun_String(kFailApp, Py_file_input, globals.get(),
                                                globals.get()))
                    : PyRef();
  PyObject* make = ran ? PyDict_GetItemString(globals.get(), "make_fail_app") : nullptr;  // borrowed
  PyRef message = make ? PyRef::steal(PyUnicode_DecodeUTF8(
                             out.traceback.data(), static_cast<Py_ssize_t>(out.traceback.size()),
                             "surrogateescape"))
                       : PyRef();
  PyRef app = make && message ? PyRef::steal(PyObject_CallOneArg(make, message.get())) : PyRef();
  if (!app) {
    // Unlikely (memory): the import's error is reported as a boot failure after all, with the
    // stand-in's own failure when Python set one.
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, out.traceback.c_str());
    out = {};
    return false;
  }
  app_ = std::move(app);
  return true;
}

std::unique_ptr<WsgiApp> WsgiApp::load(const std::string& spec, const WsgiSettings& settings,
                                       std::string& error, ImportSyntaxError* syntaxError) {
  auto app = std::make_unique<WsgiAppImpl>();
  app->syntaxError_ = syntaxError;
  if (!app->init(settings, error) || !app->resolve(spec, error)) return nullptr;
  return app;
}

}  // namespace portico::python
