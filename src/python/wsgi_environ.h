#pragma once

// Internal to the WSGI implementation: the per-request environ dict (PEP 3333 / CGI variables).

#include "python/py_ref.h"  // Python.h first

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "python/wsgi_app.h"
#include "python/wsgi_job.h"

namespace portico::python {

// Builds each request's environ. Owned by the WsgiApp and created with the GIL held at load;
// build() runs on executor threads with the GIL held, which also guards the caches. The constant
// keys are interned once and the constant entries live in a presized template dict that each
// request copies, so a request costs one dict clone plus the variable entries.
class EnvironBuilder {
 public:
  bool init(const WsgiSettings& settings, PyObject* fileWrapperType, std::string& error);

  // A fresh environ dict, or null with a Python exception set.
  PyRef build(const RequestSnapshot& snapshot, uint64_t bodySize, PyObject* input,
              PyObject* errors);

 private:
  enum Key {
    kRequestMethod,
    kScriptName,
    kPathInfo,
    kQueryString,
    kContentType,
    kContentLength,
    kServerName,
    kServerPort,
    kServerProtocol,
    kServerSoftware,
    kRemoteAddr,
    kRemotePort,
    kRequestUri,
    kRawUri,
    kWsgiVersion,
    kWsgiUrlScheme,
    kWsgiInput,
    kWsgiErrors,
    kWsgiMultithread,
    kWsgiMultiprocess,
    kWsgiRunOnce,
    kWsgiFileWrapper,
    kWsgiInputTerminated,
    kKeyCount
  };

  // The "HTTP_..." key for a request header name (new reference); an empty PyRef without an
  // exception means the header is not passed (its name contains '_').
  PyRef headerKey(const std::string& name);
  // The str for a value that usually repeats from one request to the next (method, host,
  // address...): remembers the last one per field, so the common case is one short compare.
  struct Memo {
    std::string bytes;
    PyRef value;
  };
  enum MemoField { kMemoMethod, kMemoScriptName, kMemoProtocol, kMemoRemoteAddr, kMemoScheme,
                   kMemoServerName, kMemoServerPort, kMemoQuery, kMemoCount };
  PyRef cachedValue(MemoField field, std::string_view bytes);

  PyRef keys_[kKeyCount];
  PyRef template_;
  PyRef cookieKey_;
  PyRef commaSep_;
  PyRef semicolonSep_;
  std::string serverName_;
  std::unordered_map<std::string, PyRef> headerKeys_;
  Memo memos_[kMemoCount];
};

}  // namespace portico::python
