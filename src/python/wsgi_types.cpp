#include "python/wsgi_types.h"

#include <structmember.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

#include "core/log.h"
#include "http/request.h"
#include "python/request_body.h"

namespace portico::python {

// ---------------------------------------------------------------------------------------------
// Shared helpers

bool ResponseState::sendHead(bool flush) {
  headSent = true;
  dropBody = isHead || http::statusHasNoBody(head.status);
  http::ResponseHead out = std::move(head);
  // Both only queue (they never wait), so the GIL stays: giving it up costs more.
  bool ok = channel->sendHead(std::move(out));
  if (flush) channel->flush();
  if (!ok) clientGone = true;
  return ok;
}

bool ResponseState::sendBody(const char* data, size_t n) {
  if (n == 0 || dropBody) return true;
  bool ok;
  {
    // bytes objects are immutable and the caller holds a reference, so the copy (to memory or
    // to the response's temporary file) can run without the GIL too.
    GilRelease release;
    ok = channel->sendBytes(data, n);
  }
  if (!ok) clientGone = true;
  return ok;
}

std::string toUtf8(PyObject* text) {
  if (!text || !PyUnicode_Check(text)) return {};
  PyRef bytes = PyRef::steal(PyUnicode_AsEncodedString(text, "utf-8", "backslashreplace"));
  if (!bytes) {
    PyErr_Clear();
    return {};
  }
  return std::string(PyBytes_AS_STRING(bytes.get()), PyBytes_GET_SIZE(bytes.get()));
}

std::string takePythonError(PyObject* formatException) {
  PyObject* rawType = nullptr;
  PyObject* rawValue = nullptr;
  PyObject* rawTb = nullptr;
  PyErr_Fetch(&rawType, &rawValue, &rawTb);
  if (!rawType) return "unknown error (no Python exception set)";
  PyErr_NormalizeException(&rawType, &rawValue, &rawTb);
  PyRef type = PyRef::steal(rawType);
  PyRef value = PyRef::steal(rawValue);
  PyRef tb = PyRef::steal(rawTb);
  if (value && tb) PyException_SetTraceback(value.get(), tb.get());

  std::string out;
  if (formatException) {
    PyRef lines = PyRef::steal(PyObject_CallFunctionObjArgs(
        formatException, type.get(), value ? value.get() : Py_None, tb ? tb.get() : Py_None,
        nullptr));
    if (lines) {
      PyRef empty = PyRef::steal(PyUnicode_FromStringAndSize("", 0));
      PyRef joined = PyRef::steal(empty ? PyUnicode_Join(empty.get(), lines.get()) : nullptr);
      out = toUtf8(joined.get());
    }
    PyErr_Clear();
  }
  if (out.empty()) {
    out = reinterpret_cast<PyTypeObject*>(type.get())->tp_name;
    if (value) {
      PyRef text = PyRef::steal(PyObject_Str(value.get()));
      std::string message = toUtf8(text.get());
      if (!message.empty()) out += ": " + message;
    }
    PyErr_Clear();
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

namespace {

// Parses an optional size argument (int or None; absent or negative means "no limit").
bool parseSize(PyObject* const* args, Py_ssize_t nargs, const char* name, int64_t& size) {
  size = -1;
  if (nargs > 1) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument (%zd given)", name, nargs);
    return false;
  }
  if (nargs == 0 || args[0] == Py_None) return true;
  if (!PyIndex_Check(args[0])) {
    PyErr_Format(PyExc_TypeError, "%s() argument must be int or None, not %.100s", name,
                 Py_TYPE(args[0])->tp_name);
    return false;
  }
  Py_ssize_t value = PyNumber_AsSsize_t(args[0], nullptr);  // huge values clamp
  if (value == -1 && PyErr_Occurred()) return false;
  size = value;
  return true;
}

void deallocHeapObject(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  type->tp_free(self);
  Py_DECREF(type);
}

// ---------------------------------------------------------------------------------------------
// portico.InputStream: wsgi.input over the buffered request body.

constexpr size_t kReadAhead = 64 * 1024;
// A copy out of a memory body at least this large runs with the GIL released.
constexpr size_t kUnlockedCopy = 1024 * 1024;

struct InputStreamObject {
  PyObject_HEAD
  std::shared_ptr<const RequestBody> body;
  uint64_t size;
  uint64_t pos;
  bool fileBacked;
  // Read-ahead for readline() over a body not in memory: body bytes [bufStart, bufStart +
  // bufLen) in buf (kReadAhead bytes, allocated at the first readline).
  std::unique_ptr<char[]> buf;
  size_t bufLen;
  uint64_t bufStart;
};

// Copies body bytes [offset, offset + n) into dst; returns the count actually read.
size_t readBody(InputStreamObject* self, uint64_t offset, char* dst, size_t n) {
  const RequestBody& body = *self->body;
  auto readAll = [&] {
    size_t done = 0;
    while (done < n) {
      size_t got = body.read(offset + done, dst + done, n - done);
      if (got == 0) break;
      done += got;
    }
    return done;
  };
  if (!self->fileBacked && n < kUnlockedCopy) return readAll();
  GilRelease release;  // a disk read may block; a large copy lets other threads run
  return readAll();
}

// Makes the read-ahead buffer cover self->pos; false at the end of the body.
bool fillBuffer(InputStreamObject* self) {
  if (self->pos >= self->bufStart && self->pos < self->bufStart + self->bufLen) return true;
  if (self->pos >= self->size) return false;
  if (!self->buf) self->buf.reset(new char[kReadAhead]);  // not zero-filled
  size_t want = static_cast<size_t>(std::min<uint64_t>(kReadAhead, self->size - self->pos));
  size_t got = readBody(self, self->pos, self->buf.get(), want);
  self->bufStart = self->pos;
  self->bufLen = got;
  return got > 0;
}

PyObject* inputRead(PyObject* obj, PyObject* const* args, Py_ssize_t nargs) {
  auto* self = reinterpret_cast<InputStreamObject*>(obj);
  int64_t want;
  if (!parseSize(args, nargs, "read", want)) return nullptr;
  uint64_t avail = self->pos < self->size ? self->size - self->pos : 0;
  uint64_t n = want < 0 ? avail : std::min<uint64_t>(avail, static_cast<uint64_t>(want));
  if (n > static_cast<uint64_t>(PY_SSIZE_T_MAX)) return PyErr_NoMemory();
  // The bytes object is the only copy: filled straight from the body's memory or file (one
  // allocation of the known size, also for read() of the whole rest).
  PyObject* out = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(n));
  if (!out) return nullptr;
  char* dst = PyBytes_AS_STRING(out);
  size_t done = 0;
  uint64_t bufEnd = self->bufStart + self->bufLen;
  if (n > 0 && self->pos >= self->bufStart && self->pos < bufEnd) {
    done = static_cast<size_t>(std::min<uint64_t>(n, bufEnd - self->pos));
    std::memcpy(dst, self->buf.get() + (self->pos - self->bufStart), done);
  }
  if (done < n) done += readBody(self, self->pos + done, dst + done, static_cast<size_t>(n - done));
  if (done < n && _PyBytes_Resize(&out, static_cast<Py_ssize_t>(done)) < 0) return nullptr;
  self->pos += done;
  return out;
}

// readline() over a body in memory: the line's end is found in place and its bytes are copied
// once, into the result. Null with no exception when the body has no memory to search (then the
// buffered path below runs).
PyObject* readLineInPlace(InputStreamObject* self, uint64_t max, bool& handled) {
  handled = false;
  std::string_view piece = self->body->span(self->pos);
  if (piece.empty()) return nullptr;
  handled = true;
  uint64_t length = 0;
  for (;;) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(piece.size(), max - length));
    const void* nl = std::memchr(piece.data(), '\n', take);
    if (nl) {
      length += static_cast<uint64_t>(static_cast<const char*>(nl) - piece.data()) + 1;
      break;
    }
    length += take;
    if (length == max) break;
    piece = self->body->span(self->pos + length);
    if (piece.empty()) {
      // The rest is not in memory (a body whose tail is still in the socket): the buffered
      // path reads the line. Nothing was consumed yet.
      if (self->pos + length < self->size) {
        handled = false;
        return nullptr;
      }
      break;
    }
  }
  if (length > static_cast<uint64_t>(PY_SSIZE_T_MAX)) return PyErr_NoMemory();
  std::string_view first = self->body->span(self->pos);
  PyObject* line;
  if (length <= first.size()) {
    line = PyBytes_FromStringAndSize(first.data(), static_cast<Py_ssize_t>(length));
  } else {
    line = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(length));
    if (line) {
      size_t got = readBody(self, self->pos, PyBytes_AS_STRING(line), static_cast<size_t>(length));
      if (got < length && _PyBytes_Resize(&line, static_cast<Py_ssize_t>(got)) < 0) return nullptr;
      length = got;
    }
  }
  if (line) self->pos += length;
  return line;
}

// One line (up to and including '\n'), at most `limit` bytes; b"" at the end.
PyObject* readLine(InputStreamObject* self, int64_t limit) {
  uint64_t avail = self->pos < self->size ? self->size - self->pos : 0;
  uint64_t max = limit < 0 ? avail : std::min<uint64_t>(avail, static_cast<uint64_t>(limit));
  if (max == 0) return PyBytes_FromStringAndSize(nullptr, 0);
  if (!self->fileBacked) {
    bool handled;
    PyObject* line = readLineInPlace(self, max, handled);
    if (handled) return line;
  }
  std::string line;
  bool first = true;
  while (line.size() < max && fillBuffer(self)) {
    size_t at = static_cast<size_t>(self->pos - self->bufStart);
    size_t take = std::min<uint64_t>(self->bufLen - at, max - line.size());
    const char* start = self->buf.get() + at;
    const void* nl = std::memchr(start, '\n', take);
    if (nl) take = static_cast<size_t>(static_cast<const char*>(nl) - start) + 1;
    self->pos += take;
    if (first && (nl || line.size() + take == max)) {
      // The whole line is in the buffer: build the bytes straight from it.
      return PyBytes_FromStringAndSize(start, static_cast<Py_ssize_t>(take));
    }
    first = false;
    line.append(start, take);
    if (nl) break;
  }
  return PyBytes_FromStringAndSize(line.data(), static_cast<Py_ssize_t>(line.size()));
}

PyObject* inputReadline(PyObject* obj, PyObject* const* args, Py_ssize_t nargs) {
  int64_t limit;
  if (!parseSize(args, nargs, "readline", limit)) return nullptr;
  return readLine(reinterpret_cast<InputStreamObject*>(obj), limit);
}

PyObject* inputReadlines(PyObject* obj, PyObject* const* args, Py_ssize_t nargs) {
  int64_t hint;
  if (!parseSize(args, nargs, "readlines", hint)) return nullptr;
  auto* self = reinterpret_cast<InputStreamObject*>(obj);
  PyRef lines = PyRef::steal(PyList_New(0));
  if (!lines) return nullptr;
  int64_t total = 0;
  for (;;) {
    PyRef line = PyRef::steal(readLine(self, -1));
    if (!line) return nullptr;
    Py_ssize_t n = PyBytes_GET_SIZE(line.get());
    if (n == 0) break;
    if (PyList_Append(lines.get(), line.get()) < 0) return nullptr;
    total += n;
    if (hint > 0 && total >= hint) break;
  }
  return lines.release();
}

PyObject* inputNext(PyObject* obj) {
  PyObject* line = readLine(reinterpret_cast<InputStreamObject*>(obj), -1);
  if (line && PyBytes_GET_SIZE(line) == 0) {
    Py_DECREF(line);
    return nullptr;  // StopIteration
  }
  return line;
}

void inputDealloc(PyObject* obj) {
  auto* self = reinterpret_cast<InputStreamObject*>(obj);
  self->body.~shared_ptr();
  self->buf.~unique_ptr();
  deallocHeapObject(obj);
}

PyMethodDef kInputMethods[] = {
    {"read", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(inputRead)), METH_FASTCALL,
     "read(size=-1) -> bytes"},
    {"readline", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(inputReadline)),
     METH_FASTCALL, "readline(size=-1) -> bytes"},
    {"readlines", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(inputReadlines)),
     METH_FASTCALL, "readlines(hint=-1) -> list of bytes"},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot kInputSlots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(inputDealloc)},
    {Py_tp_iter, reinterpret_cast<void*>(PyObject_SelfIter)},
    {Py_tp_iternext, reinterpret_cast<void*>(inputNext)},
    {Py_tp_methods, kInputMethods},
    {Py_tp_doc, const_cast<char*>("wsgi.input: the request body (fully received or queued).")},
    {0, nullptr}};

PyType_Spec kInputSpec = {"portico.InputStream", sizeof(InputStreamObject), 0,
                          Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, kInputSlots};

// ---------------------------------------------------------------------------------------------
// portico.ErrorStream: wsgi.errors, line-buffered into the error log.

constexpr size_t kMaxPendingError = 64 * 1024;

struct ErrorStreamObject {
  PyObject_HEAD
  std::string pending;  // a partial line waiting for its '\n'
};

void emitLines(ErrorStreamObject* self) {
  size_t start = 0;
  for (;;) {
    size_t nl = self->pending.find('\n', start);
    if (nl == std::string::npos) break;
    logError(std::string_view(self->pending).substr(start, nl - start));
    start = nl + 1;
  }
  self->pending.erase(0, start);
  if (self->pending.size() > kMaxPendingError) {
    // Never buffer without bound for an app that writes without newlines.
    logError(self->pending);
    self->pending.clear();
  }
}

bool appendError(ErrorStreamObject* self, PyObject* text) {
  if (PyUnicode_Check(text)) {
    Py_ssize_t n;
    const char* utf8 = PyUnicode_AsUTF8AndSize(text, &n);
    if (utf8) {
      self->pending.append(utf8, static_cast<size_t>(n));
    } else {
      PyErr_Clear();  // lone surrogates: escape them rather than fail the app
      self->pending += toUtf8(text);
    }
    return true;
  }
  if (PyBytes_Check(text)) {  // lenient: not PEP 3333, but harmless
    self->pending.append(PyBytes_AS_STRING(text), static_cast<size_t>(PyBytes_GET_SIZE(text)));
    return true;
  }
  PyErr_Format(PyExc_TypeError, "wsgi.errors.write() argument must be str, not %.100s",
               Py_TYPE(text)->tp_name);
  return false;
}

PyObject* errorWrite(PyObject* obj, PyObject* text) {
  auto* self = reinterpret_cast<ErrorStreamObject*>(obj);
  if (!appendError(self, text)) return nullptr;
  emitLines(self);
  Py_RETURN_NONE;
}

PyObject* errorWritelines(PyObject* obj, PyObject* seq) {
  auto* self = reinterpret_cast<ErrorStreamObject*>(obj);
  PyRef iter = PyRef::steal(PyObject_GetIter(seq));
  if (!iter) return nullptr;
  while (PyRef item = PyRef::steal(PyIter_Next(iter.get()))) {
    if (!appendError(self, item.get())) return nullptr;
  }
  if (PyErr_Occurred()) return nullptr;
  emitLines(self);
  Py_RETURN_NONE;
}

void flushErrors(ErrorStreamObject* self) {
  if (self->pending.empty()) return;
  logError(self->pending);
  self->pending.clear();
}

PyObject* errorFlush(PyObject* obj, PyObject*) {
  flushErrors(reinterpret_cast<ErrorStreamObject*>(obj));
  Py_RETURN_NONE;
}

void errorDealloc(PyObject* obj) {
  auto* self = reinterpret_cast<ErrorStreamObject*>(obj);
  flushErrors(self);  // a partial line the app never flushed still reaches the log
  self->pending.~basic_string();
  deallocHeapObject(obj);
}

PyMethodDef kErrorMethods[] = {
    {"write", errorWrite, METH_O, "write(str): log complete lines to the error log"},
    {"writelines", errorWritelines, METH_O, "writelines(seq)"},
    {"flush", errorFlush, METH_NOARGS, "flush(): log a pending partial line"},
    {nullptr, nullptr, 0, nullptr}};

PyType_Slot kErrorSlots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(errorDealloc)},
    {Py_tp_methods, kErrorMethods},
    {Py_tp_doc, const_cast<char*>("wsgi.errors: writes lines to portico's error log.")},
    {0, nullptr}};

PyType_Spec kErrorSpec = {"portico.ErrorStream", sizeof(ErrorStreamObject), 0,
                          Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, kErrorSlots};

// ---------------------------------------------------------------------------------------------
// portico.FileWrapper: wsgi.file_wrapper (PEP 3333 "Optional Platform-Specific File Handling").

struct FileWrapperObject {
  PyObject_HEAD
  PyObject* filelike;
  Py_ssize_t blksize;
};

PyObject* fileWrapperNew(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* kKeywords[] = {"filelike", "blksize", nullptr};
  PyObject* filelike = nullptr;
  Py_ssize_t blksize = 8192;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|n:FileWrapper", const_cast<char**>(kKeywords),
                                   &filelike, &blksize)) {
    return nullptr;
  }
  if (blksize <= 0) {
    PyErr_SetString(PyExc_ValueError, "blksize must be positive");
    return nullptr;
  }
  auto* self = reinterpret_cast<FileWrapperObject*>(type->tp_alloc(type, 0));
  if (!self) return nullptr;
  Py_INCREF(filelike);
  self->filelike = filelike;
  self->blksize = blksize;
  return reinterpret_cast<PyObject*>(self);
}

PyObject* fileWrapperNext(PyObject* obj) {
  auto* self = reinterpret_cast<FileWrapperObject*>(obj);
  if (!self->filelike) return nullptr;
  PyObject* data = PyObject_CallMethod(self->filelike, "read", "n", self->blksize);
  if (!data) return nullptr;
  int empty = (PyBytes_Check(data) && PyBytes_GET_SIZE(data) == 0) ? 1 : !PyObject_IsTrue(data);
  if (empty) {
    Py_DECREF(data);
    return nullptr;  // StopIteration
  }
  return data;
}

PyObject* fileWrapperClose(PyObject* obj, PyObject*) {
  auto* self = reinterpret_cast<FileWrapperObject*>(obj);
  if (!self->filelike) Py_RETURN_NONE;
  PyRef name = PyRef::steal(PyUnicode_InternFromString("close"));
  if (!name) return nullptr;
  PyObject* rawClose = nullptr;
  if (_PyObject_LookupAttr(self->filelike, name.get(), &rawClose) < 0) return nullptr;
  PyRef close = PyRef::steal(rawClose);
  if (!close) Py_RETURN_NONE;
  return PyObject_CallNoArgs(close.get());
}

int fileWrapperTraverse(PyObject* obj, visitproc visit, void* arg) {
  Py_VISIT(reinterpret_cast<FileWrapperObject*>(obj)->filelike);
  Py_VISIT(Py_TYPE(obj));
  return 0;
}

int fileWrapperClear(PyObject* obj) {
  Py_CLEAR(reinterpret_cast<FileWrapperObject*>(obj)->filelike);
  return 0;
}

void fileWrapperDealloc(PyObject* obj) {
  PyObject_GC_UnTrack(obj);
  fileWrapperClear(obj);
  deallocHeapObject(obj);
}

PyMethodDef kFileWrapperMethods[] = {
    {"close", fileWrapperClose, METH_NOARGS, "close(): closes the wrapped file-like object"},
    {nullptr, nullptr, 0, nullptr}};

PyMemberDef kFileWrapperMembers[] = {
    {const_cast<char*>("filelike"), T_OBJECT, offsetof(FileWrapperObject, filelike), READONLY,
     nullptr},
    {const_cast<char*>("blksize"), T_PYSSIZET, offsetof(FileWrapperObject, blksize), READONLY,
     nullptr},
    {nullptr, 0, 0, 0, nullptr}};

PyType_Slot kFileWrapperSlots[] = {
    {Py_tp_new, reinterpret_cast<void*>(fileWrapperNew)},
    {Py_tp_dealloc, reinterpret_cast<void*>(fileWrapperDealloc)},
    {Py_tp_traverse, reinterpret_cast<void*>(fileWrapperTraverse)},
    {Py_tp_clear, reinterpret_cast<void*>(fileWrapperClear)},
    {Py_tp_iter, reinterpret_cast<void*>(PyObject_SelfIter)},
    {Py_tp_iternext, reinterpret_cast<void*>(fileWrapperNext)},
    {Py_tp_methods, kFileWrapperMethods},
    {Py_tp_members, kFileWrapperMembers},
    {Py_tp_doc, const_cast<char*>("FileWrapper(filelike, blksize=8192): wsgi.file_wrapper; "
                                  "regular files are sent with sendfile.")},
    {0, nullptr}};

PyType_Spec kFileWrapperSpec = {"portico.FileWrapper", sizeof(FileWrapperObject), 0,
                                Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
                                kFileWrapperSlots};

// ---------------------------------------------------------------------------------------------
// portico.StartResponse and portico.Write: the start_response callable and the write callable
// it returns. Both are vectorcall types (no argument tuple per call).

// The standard-layout prefix of both objects, so offsetof(vectorcall) is well defined.
struct CallableHead {
  PyObject_HEAD
  vectorcallfunc vectorcall;
};

struct StartResponseObject {
  CallableHead base;
  PyObject* writeType;  // portico.Write (strong)
  ResponseState state;
};

struct WriteObject {
  CallableHead base;
  PyObject* owner;  // the StartResponseObject whose state this writes to (strong)
};

PyObject* raiseClientGone() {
  errno = EPIPE;
  return PyErr_SetFromErrno(PyExc_OSError);  // BrokenPipeError, as a socket write would raise
}

bool latin1View(PyObject* text, std::string_view& out) {
  if (PyUnicode_READY(text) < 0) return false;
  if (PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND) return false;
  out = std::string_view(reinterpret_cast<const char*>(PyUnicode_1BYTE_DATA(text)),
                         static_cast<size_t>(PyUnicode_GET_LENGTH(text)));
  return true;
}

bool isControl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

// RFC 9110 tchar, as a table: start_response checks every byte of every header name.
constexpr auto kTchar = [] {
  std::array<bool, 256> table{};
  for (int c = '0'; c <= '9'; ++c) table[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) table[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) table[static_cast<unsigned char>(c)] = true;
  return table;
}();

bool isTchar(unsigned char c) { return kTchar[c]; }

bool parseStatus(PyObject* status, int& code, std::string& reason) {
  if (!PyUnicode_Check(status)) {
    PyErr_Format(PyExc_TypeError, "status must be a str, not %.100s", Py_TYPE(status)->tp_name);
    return false;
  }
  std::string_view s;
  if (!latin1View(status, s)) {
    if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "status %R is not latin-1", status);
    return false;
  }
  auto digit = [&](size_t i) { return s[i] >= '0' && s[i] <= '9'; };
  if (s.size() < 4 || !digit(0) || !digit(1) || !digit(2) || s[3] != ' ') {
    PyErr_Format(PyExc_ValueError, "status must look like '200 OK', got %R", status);
    return false;
  }
  for (unsigned char c : s) {
    if (isControl(c)) {
      PyErr_Format(PyExc_ValueError, "status %R contains a control character", status);
      return false;
    }
  }
  code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
  if (code < 200 || code > 599) {
    // 1xx are interim responses, not an app's final answer; 600+ are not HTTP.
    PyErr_Format(PyExc_ValueError, "status code must be in 200..599, got %R", status);
    return false;
  }
  // The app's own reason phrase goes out as given (gunicorn does the same).
  reason.assign(s.substr(4));
  return true;
}

bool parseContentLength(std::string_view v, uint64_t& out) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty() || v.size() > 18) return false;
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  out = n;
  return true;
}

// True if the comma-separated `value` has the token "close" (case-insensitive).
bool hasCloseToken(std::string_view value) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (http::iequals(item, "close")) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// Validates the app's headers into `head` (PEP 3333 plus RFC 9110 syntax, so nothing the app
// passes can split or smuggle a response). Framing and hop-by-hop headers are the connection's:
// Content-Length moves to head.contentLength, Transfer-Encoding/Connection/Keep-Alive are
// dropped ("Connection: close" is honoured through head.close).
bool parseHeaders(PyObject* headers, http::ResponseHead& head, bool& appLength) {
  if (!PyList_Check(headers)) {
    PyErr_Format(PyExc_TypeError, "response_headers must be a list, not %.100s",
                 Py_TYPE(headers)->tp_name);
    return false;
  }
  Py_ssize_t count = PyList_GET_SIZE(headers);
  head.headers.reserve(static_cast<size_t>(count));
  for (Py_ssize_t i = 0; i < count; ++i) {
    PyObject* item = PyList_GET_ITEM(headers, i);
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
      PyErr_Format(PyExc_TypeError, "response_headers items must be (name, value) tuples, not %R",
                   item);
      return false;
    }
    PyObject* name = PyTuple_GET_ITEM(item, 0);
    PyObject* value = PyTuple_GET_ITEM(item, 1);
    if (!PyUnicode_Check(name) || !PyUnicode_Check(value)) {
      PyErr_Format(PyExc_TypeError, "header names and values must be str, got %R", item);
      return false;
    }
    std::string_view n;
    std::string_view v;
    bool nameOk = latin1View(name, n) && !n.empty();
    for (size_t k = 0; nameOk && k < n.size(); ++k) nameOk = isTchar(static_cast<unsigned char>(n[k]));
    if (!nameOk) {
      if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "invalid header name %R", name);
      return false;
    }
    if (!latin1View(value, v)) {
      if (!PyErr_Occurred()) {
        PyErr_Format(PyExc_ValueError, "value of header %R is not latin-1 encodable", name);
      }
      return false;
    }
    for (unsigned char c : v) {
      if (isControl(c)) {
        PyErr_Format(PyExc_ValueError, "value of header %R contains a control character: %R",
                     name, value);
        return false;
      }
    }
    if (http::iequals(n, "Content-Length")) {
      uint64_t length;
      if (!parseContentLength(v, length)) {
        PyErr_Format(PyExc_ValueError, "invalid Content-Length header %R", value);
        return false;
      }
      if (appLength && *head.contentLength != length) {
        PyErr_SetString(PyExc_ValueError, "conflicting Content-Length headers");
        return false;
      }
      head.contentLength = length;
      appLength = true;
      continue;
    }
    if (http::iequals(n, "Connection")) {
      if (hasCloseToken(v)) head.close = true;
      continue;
    }
    if (http::iequals(n, "Transfer-Encoding") || http::iequals(n, "Keep-Alive")) continue;
    head.headers.push_back({std::string(n), std::string(v)});
  }
  return true;
}

PyObject* reraise(PyObject* excInfo) {
  if (!PyTuple_Check(excInfo) || PyTuple_GET_SIZE(excInfo) != 3 ||
      !PyExceptionInstance_Check(PyTuple_GET_ITEM(excInfo, 1))) {
    PyErr_SetString(PyExc_TypeError, "exc_info must be a (type, value, traceback) tuple");
    return nullptr;
  }
  PyObject* value = PyTuple_GET_ITEM(excInfo, 1);
  PyObject* tb = PyTuple_GET_ITEM(excInfo, 2);
  // raise exc_info[1].with_traceback(exc_info[2])
  Py_INCREF(Py_TYPE(value));
  Py_INCREF(value);
  if (PyTraceBack_Check(tb)) {
    Py_INCREF(tb);
  } else {
    tb = nullptr;
  }
  PyErr_Restore(reinterpret_cast<PyObject*>(Py_TYPE(value)), value, tb);
  return nullptr;
}

PyObject* writeCall(PyObject* callable, PyObject* const* args, size_t nargsf, PyObject* kwnames);

PyObject* startResponseCall(PyObject* callable, PyObject* const* args, size_t nargsf,
                            PyObject* kwnames) {
  Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  PyObject* slot[3] = {nullptr, nullptr, nullptr};  // status, response_headers, exc_info
  if (nargs > 3) {
    PyErr_Format(PyExc_TypeError, "start_response() takes at most 3 arguments (%zd given)", nargs);
    return nullptr;
  }
  for (Py_ssize_t i = 0; i < nargs; ++i) slot[i] = args[i];
  if (kwnames) {
    static const char* kNames[] = {"status", "response_headers", "exc_info"};
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(kwnames); ++k) {
      PyObject* key = PyTuple_GET_ITEM(kwnames, k);
      int index = -1;
      for (int j = 0; j < 3; ++j) {
        if (PyUnicode_CompareWithASCIIString(key, kNames[j]) == 0) index = j;
      }
      if (index < 0) {
        PyErr_Format(PyExc_TypeError, "start_response() got an unexpected keyword argument %R",
                     key);
        return nullptr;
      }
      if (slot[index]) {
        PyErr_Format(PyExc_TypeError, "start_response() got multiple values for argument %R",
                     key);
        return nullptr;
      }
      slot[index] = args[nargs + k];
    }
  }
  if (!slot[0] || !slot[1]) {
    PyErr_SetString(PyExc_TypeError,
                    "start_response() requires status and response_headers arguments");
    return nullptr;
  }
  ResponseState& st = reinterpret_cast<StartResponseObject*>(callable)->state;
  if (st.finished) {
    PyErr_SetString(PyExc_RuntimeError, "start_response() called after the request finished");
    return nullptr;
  }
  PyObject* excInfo = slot[2] ? slot[2] : Py_None;
  if (excInfo != Py_None) {
    if (st.headSent) return reraise(excInfo);  // too late to change the response
  } else if (st.started) {
    PyErr_SetString(PyExc_AssertionError,
                    "start_response() called a second time without exc_info");
    return nullptr;
  }
  http::ResponseHead head;
  bool appLength = false;
  if (!parseStatus(slot[0], head.status, head.reason) ||
      !parseHeaders(slot[1], head, appLength)) {
    return nullptr;
  }
  st.head = std::move(head);
  st.appLength = appLength;
  st.started = true;

  // The write callable: references this object, so the state outlives every write() call.
  auto* write = PyObject_New(
      WriteObject,
      reinterpret_cast<PyTypeObject*>(reinterpret_cast<StartResponseObject*>(callable)->writeType));
  if (!write) return nullptr;
  write->base.vectorcall = writeCall;
  Py_INCREF(callable);
  write->owner = callable;
  return reinterpret_cast<PyObject*>(write);
}

PyObject* writeCall(PyObject* callable, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  if ((kwnames && PyTuple_GET_SIZE(kwnames) > 0) || nargs != 1) {
    PyErr_SetString(PyExc_TypeError, "write() takes exactly one positional argument");
    return nullptr;
  }
  PyObject* owner = reinterpret_cast<WriteObject*>(callable)->owner;
  ResponseState& st = reinterpret_cast<StartResponseObject*>(owner)->state;
  PyObject* data = args[0];
  if (st.finished) {
    PyErr_SetString(PyExc_RuntimeError, "write() called after the request finished");
    return nullptr;
  }
  if (!PyBytes_Check(data)) {
    PyErr_Format(PyExc_TypeError, "write() argument must be bytes, not %.100s",
                 Py_TYPE(data)->tp_name);
    return nullptr;
  }
  if (!st.started) {
    PyErr_SetString(PyExc_AssertionError, "write() called before start_response()");
    return nullptr;
  }
  if (st.clientGone) return raiseClientGone();
  // PEP 3333: the first write() sends the head even when its data is empty.
  bool bodyFollows =
      PyBytes_GET_SIZE(data) > 0 && !st.isHead && !http::statusHasNoBody(st.head.status);
  if (!st.headSent && !st.sendHead(/*flush=*/!bodyFollows)) return raiseClientGone();
  PyRef keep = PyRef::borrow(data);
  PyRef keepOwner = PyRef::borrow(owner);
  if (!st.sendBody(PyBytes_AS_STRING(data), static_cast<size_t>(PyBytes_GET_SIZE(data)))) {
    return raiseClientGone();
  }
  Py_RETURN_NONE;
}

void startResponseDealloc(PyObject* obj) {
  Py_XDECREF(reinterpret_cast<StartResponseObject*>(obj)->writeType);
  reinterpret_cast<StartResponseObject*>(obj)->state.~ResponseState();
  deallocHeapObject(obj);
}

void writeDealloc(PyObject* obj) {
  Py_XDECREF(reinterpret_cast<WriteObject*>(obj)->owner);
  deallocHeapObject(obj);
}

PyMemberDef kCallableMembers[] = {
    {const_cast<char*>("__vectorcalloffset__"), T_PYSSIZET, offsetof(CallableHead, vectorcall),
     READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr}};

PyType_Slot kStartResponseSlots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(startResponseDealloc)},
    {Py_tp_call, reinterpret_cast<void*>(PyVectorcall_Call)},
    {Py_tp_members, kCallableMembers},
    {Py_tp_doc, const_cast<char*>("start_response(status, response_headers, exc_info=None)")},
    {0, nullptr}};

PyType_Spec kStartResponseSpec = {
    "portico.StartResponse", sizeof(StartResponseObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_HAVE_VECTORCALL,
    kStartResponseSlots};

PyType_Slot kWriteSlots[] = {
    {Py_tp_dealloc, reinterpret_cast<void*>(writeDealloc)},
    {Py_tp_call, reinterpret_cast<void*>(PyVectorcall_Call)},
    {Py_tp_members, kCallableMembers},
    {Py_tp_doc, const_cast<char*>("write(data): sends bytes right away (PEP 3333 write callable)")},
    {0, nullptr}};

PyType_Spec kWriteSpec = {
    "portico.Write", sizeof(WriteObject), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_HAVE_VECTORCALL,
    kWriteSlots};

}  // namespace

// ---------------------------------------------------------------------------------------------
// WsgiTypes

bool WsgiTypes::init(std::string& error) {
  inputType_ = PyRef::steal(PyType_FromSpec(&kInputSpec));
  errorType_ = PyRef::steal(inputType_ ? PyType_FromSpec(&kErrorSpec) : nullptr);
  fileWrapperType_ = PyRef::steal(errorType_ ? PyType_FromSpec(&kFileWrapperSpec) : nullptr);
  startResponseType_ =
      PyRef::steal(fileWrapperType_ ? PyType_FromSpec(&kStartResponseSpec) : nullptr);
  writeType_ = PyRef::steal(startResponseType_ ? PyType_FromSpec(&kWriteSpec) : nullptr);
  if (!writeType_) {
    error = "cannot create the portico WSGI types: " + takePythonError(nullptr);
    return false;
  }
  return true;
}

PyRef WsgiTypes::newInputStream(std::shared_ptr<const RequestBody> body) {
  auto* self = PyObject_New(InputStreamObject, reinterpret_cast<PyTypeObject*>(inputType_.get()));
  if (!self) return {};
  uint64_t size = body->size();
  bool fileBacked = body->fileBacked();
  new (&self->body) std::shared_ptr<const RequestBody>(std::move(body));
  new (&self->buf) std::unique_ptr<char[]>();
  self->bufLen = 0;
  self->size = size;
  self->pos = 0;
  self->fileBacked = fileBacked;
  self->bufStart = 0;
  return PyRef::steal(reinterpret_cast<PyObject*>(self));
}

void WsgiTypes::detachInput(PyObject* input) {
  auto* self = reinterpret_cast<InputStreamObject*>(input);
  static const auto kEmpty = std::make_shared<const MemoryBody>(std::string_view());
  self->body = kEmpty;
  self->size = 0;
  self->pos = 0;
  self->fileBacked = false;
  self->buf.reset();
  self->bufLen = 0;
  self->bufStart = 0;
}

PyRef WsgiTypes::newErrorStream() {
  auto* self = PyObject_New(ErrorStreamObject, reinterpret_cast<PyTypeObject*>(errorType_.get()));
  if (!self) return {};
  new (&self->pending) std::string();
  return PyRef::steal(reinterpret_cast<PyObject*>(self));
}

PyRef WsgiTypes::newStartResponse(std::shared_ptr<ResponseChannel> channel, bool isHead) {
  auto* self = PyObject_New(StartResponseObject,
                            reinterpret_cast<PyTypeObject*>(startResponseType_.get()));
  if (!self) return {};
  self->base.vectorcall = startResponseCall;
  self->writeType = Py_NewRef(writeType_.get());
  new (&self->state) ResponseState();
  self->state.channel = std::move(channel);
  self->state.isHead = isHead;
  return PyRef::steal(reinterpret_cast<PyObject*>(self));
}

ResponseState& WsgiTypes::stateOf(PyObject* startResponse) {
  return reinterpret_cast<StartResponseObject*>(startResponse)->state;
}

PyObject* WsgiTypes::fileWrapperFilelike(PyObject* wrapper) {
  return reinterpret_cast<FileWrapperObject*>(wrapper)->filelike;
}

}  // namespace portico::python
