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
// build() runs on executor threads with the GIL held, which also guards the caches. The keys are
// interned once; the constant entries, and the last value of each field that usually repeats,
// live in a presized template dict that each request copies, so a request costs one dict clone
// plus the entries that differ from the template (path, URI, port, headers).
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

  // The "HTTP_..." key for a request header name (new reference), or null with a Python
  // exception set. Which names arrive at all is the request parser's rule.
  PyRef headerKey(const std::string& name);
  // The last value of a field that usually repeats from one request to the next (method,
  // address, Host...), so the common case is one short compare instead of a new str.
  struct Memo {
    std::string bytes;
    PyRef value;
  };
  enum MemoField { kMemoMethod, kMemoScriptName, kMemoProtocol, kMemoRemoteAddr, kMemoScheme,
                   kMemoServerName, kMemoServerPort, kMemoQuery, kMemoHost, kMemoCount };
  PyRef cachedValue(MemoField field, std::string_view bytes);
  // Sets a field every environ has and whose value usually repeats. The template holds the
  // field's last value (memo.value, when set, is always the template's), so a request with the
  // same bytes finds it in its copy and costs no dict insertion at all.
  bool setRepeating(PyObject* dict, Key key, MemoField field, std::string_view bytes);
  // REMOTE_PORT's str, from a small direct-mapped cache of recent ports (new reference).
  PyRef portValue(uint16_t port);
  struct PortMemo {
    uint16_t port = 0;
    PyRef value;
  };
  static constexpr size_t kPortMemos = 256;

  PyRef keys_[kKeyCount];
  PyRef template_;
  PyRef cookieKey_;
  PyRef hostKey_;
  PyRef commaSep_;
  PyRef semicolonSep_;
  std::string serverName_;
  std::unordered_map<std::string, PyRef> headerKeys_;
  Memo memos_[kMemoCount];
  PortMemo ports_[kPortMemos];
};

}  // namespace portico::python
