#include "python/wsgi_environ.h"

#include <charconv>

#include "config/version.h"
#include "http/request.h"
#include "python/wsgi_types.h"

namespace portico::python {

namespace {

// The header-key cache stays small: a hostile client can send any number of distinct names, and
// refilling after a clear costs little.
constexpr size_t kMaxCacheEntries = 512;
// Room for the template plus a typical request's variables and headers without a resize.
constexpr Py_ssize_t kPresize = 40;

PyObject* latin1(std::string_view bytes) {
  return PyUnicode_DecodeLatin1(bytes.data(), static_cast<Py_ssize_t>(bytes.size()), nullptr);
}

PyObject* decimal(uint64_t value) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  return PyUnicode_FromStringAndSize(digits, end - digits);
}

// Splits a Host value into name and port ("" when absent); IPv6 literals keep their brackets.
void splitHost(std::string_view host, std::string_view& name, std::string_view& port) {
  port = {};
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close != std::string_view::npos) {
      name = host.substr(0, close + 1);
      std::string_view rest = host.substr(close + 1);
      if (!rest.empty() && rest.front() == ':') port = rest.substr(1);
      return;
    }
  }
  size_t colon = host.rfind(':');
  if (colon == std::string_view::npos) {
    name = host;
  } else {
    name = host.substr(0, colon);
    port = host.substr(colon + 1);
  }
}

}  // namespace

bool EnvironBuilder::init(const WsgiSettings& settings, PyObject* fileWrapperType,
                          std::string& error) {
  static constexpr const char* kNames[kKeyCount] = {
      "REQUEST_METHOD", "SCRIPT_NAME",     "PATH_INFO",         "QUERY_STRING",
      "CONTENT_TYPE",   "CONTENT_LENGTH",  "SERVER_NAME",       "SERVER_PORT",
      "SERVER_PROTOCOL", "SERVER_SOFTWARE", "REMOTE_ADDR",      "REMOTE_PORT",
      "REQUEST_URI",    "RAW_URI",         "wsgi.version",      "wsgi.url_scheme",
      "wsgi.input",     "wsgi.errors",     "wsgi.multithread",  "wsgi.multiprocess",
      "wsgi.run_once",  "wsgi.file_wrapper", "wsgi.input_terminated"};
  for (int i = 0; i < kKeyCount; ++i) {
    keys_[i] = PyRef::steal(PyUnicode_InternFromString(kNames[i]));
    if (!keys_[i]) {
      error = takePythonError(nullptr);
      return false;
    }
  }
  cookieKey_ = PyRef::steal(PyUnicode_InternFromString("HTTP_COOKIE"));
  hostKey_ = PyRef::steal(PyUnicode_InternFromString("HTTP_HOST"));
  commaSep_ = PyRef::steal(PyUnicode_FromString(", "));
  semicolonSep_ = PyRef::steal(PyUnicode_FromString("; "));
  serverName_ = settings.serverName;

  template_ = PyRef::steal(_PyDict_NewPresized(kPresize));
  PyRef version = PyRef::steal(Py_BuildValue("(ii)", 1, 0));
  PyRef software = PyRef::steal(PyUnicode_FromString((std::string("portico/") + kPorticoVersion).c_str()));
  if (!cookieKey_ || !hostKey_ || !commaSep_ || !semicolonSep_ || !template_ || !version || !software) {
    error = takePythonError(nullptr);
    return false;
  }
  struct Entry {
    Key key;
    PyObject* value;
  };
  const Entry constants[] = {
      {kWsgiVersion, version.get()},
      {kServerSoftware, software.get()},
      {kWsgiMultithread, settings.multithread ? Py_True : Py_False},
      {kWsgiMultiprocess, settings.multiprocess ? Py_True : Py_False},
      {kWsgiRunOnce, Py_False},
      {kWsgiFileWrapper, fileWrapperType},
      {kWsgiInputTerminated, Py_True},
  };
  for (const Entry& e : constants) {
    if (PyDict_SetItem(template_.get(), keys_[e.key].get(), e.value) < 0) {
      error = takePythonError(nullptr);
      return false;
    }
  }
  return true;
}

PyRef EnvironBuilder::cachedValue(MemoField field, std::string_view bytes) {
  Memo& memo = memos_[field];
  if (memo.value && memo.bytes == bytes) return memo.value;
  PyRef value = PyRef::steal(latin1(bytes));
  if (!value) return {};
  memo.bytes.assign(bytes);
  memo.value = value;
  return value;
}

PyRef EnvironBuilder::portValue(uint16_t port) {
  // A keep-alive client keeps its port: the str made for its first request serves the rest.
  PortMemo& memo = ports_[port % kPortMemos];
  if (memo.value && memo.port == port) return memo.value;
  PyRef value = PyRef::steal(decimal(port));
  if (!value) return {};
  memo.port = port;
  memo.value = value;
  return value;
}

bool EnvironBuilder::setRepeating(PyObject* dict, Key key, MemoField field,
                                  std::string_view bytes) {
  Memo& memo = memos_[field];
  if (memo.value && memo.bytes == bytes) return true;  // the copy of the template has it
  PyRef value = PyRef::steal(latin1(bytes));
  if (!value || PyDict_SetItem(dict, keys_[key].get(), value.get()) < 0) return false;
  // Adopt it as the template's value: the next request with these bytes sets nothing.
  if (PyDict_SetItem(template_.get(), keys_[key].get(), value.get()) < 0) return false;
  memo.bytes.assign(bytes);
  memo.value = std::move(value);
  return true;
}

PyRef EnvironBuilder::headerKey(const std::string& name) {
  auto it = headerKeys_.find(name);
  if (it != headerKeys_.end()) return it->second;
  // Underscored names never get here unless the server allows them (the parser's rule:
  // underscores_in_headers): "X_Forwarded_For" would land on the same HTTP_X_FORWARDED_FOR
  // key as the dashed header a proxy vouches for.
  std::string text = "HTTP_";
  text.reserve(5 + name.size());
  for (char c : name) {
    if (c == '-') {
      c = '_';
    } else if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
    text.push_back(c);
  }
  PyObject* raw = latin1(text);
  if (!raw) return {};  // the error is set
  PyUnicode_InternInPlace(&raw);
  PyRef key = PyRef::steal(raw);
  if (headerKeys_.size() >= kMaxCacheEntries) headerKeys_.clear();
  headerKeys_.emplace(name, key);
  return key;
}

PyRef EnvironBuilder::build(const RequestSnapshot& snapshot, uint64_t bodySize, PyObject* input,
                            PyObject* errors) {
  const http::Request& req = *snapshot.request;
  const http::ConnectionInfo& conn = snapshot.connection;
  PyRef env = PyRef::steal(PyDict_Copy(template_.get()));
  if (!env) return {};
  PyObject* dict = env.get();
  auto set = [&](Key key, const PyRef& value) {
    return value && PyDict_SetItem(dict, keys_[key].get(), value.get()) == 0;
  };

  if (!setRepeating(dict, kRequestMethod, kMemoMethod, req.method) ||
      !setRepeating(dict, kScriptName, kMemoScriptName, snapshot.scriptName) ||
      !set(kPathInfo, PyRef::steal(latin1(snapshot.pathInfo))) ||
      !setRepeating(dict, kQueryString, kMemoQuery, req.query) ||
      !setRepeating(dict, kServerProtocol, kMemoProtocol, req.versionString()) ||
      !setRepeating(dict, kRemoteAddr, kMemoRemoteAddr, conn.peerAddress) ||
      !setRepeating(dict, kWsgiUrlScheme, kMemoScheme, conn.scheme) ||
      PyDict_SetItem(dict, keys_[kWsgiInput].get(), input) < 0 ||
      PyDict_SetItem(dict, keys_[kWsgiErrors].get(), errors) < 0) {
    return {};
  }
  PyRef target = PyRef::steal(latin1(req.target));
  if (!set(kRequestUri, target) || !set(kRawUri, target)) return {};
  // Port 0: the address came from X-Forwarded-For without a port (--forwarded-allow-ips).
  // A unix client has no port, unless a front server named its own client (uwsgi's
  // REMOTE_PORT).
  if ((!conn.isUnix || !conn.peerAddress.empty()) && conn.peerPort != 0 &&
      !set(kRemotePort, portValue(conn.peerPort))) {
    return {};
  }
  if (!conn.proxyProtocolAddress.empty()) {
    // gunicorn's proxy_environ: what the PROXY protocol header said (PROXY_ADDR/PORT are the
    // destination the client reached).
    bool v6 = conn.proxyProtocolAddress.find(':') != std::string::npos;
    PyRef proto = PyRef::steal(PyUnicode_FromString(v6 ? "TCP6" : "TCP4"));
    PyRef addr = PyRef::steal(latin1(conn.proxyProtocolServerAddress));
    PyRef port = PyRef::steal(decimal(conn.proxyProtocolServerPort));
    if (!proto || !addr || !port || PyDict_SetItemString(dict, "PROXY_PROTOCOL", proto.get()) < 0 ||
        PyDict_SetItemString(dict, "PROXY_ADDR", addr.get()) < 0 ||
        PyDict_SetItemString(dict, "PROXY_PORT", port.get()) < 0) {
      return {};
    }
  }
  // uwsgi_params' HTTPS $https (and Django's request.is_secure() on the wsgi.url_scheme).
  if (conn.scheme == "https") {
    PyRef on = PyRef::steal(PyUnicode_FromString("on"));
    if (!on || PyDict_SetItemString(dict, "HTTPS", on.get()) < 0) return {};
  }
  // The body was read completely before the app runs, so its length is known even when the
  // request was chunked.
  if ((req.contentLength || req.chunked) &&
      !set(kContentLength, PyRef::steal(decimal(bodySize)))) {
    return {};
  }

  std::string_view defaultPort = conn.scheme == "https" ? "443" : "80";
  std::string_view name;
  std::string_view port;
  std::string localPort;
  if (!req.host.empty()) {
    splitHost(req.host, name, port);
    if (port.empty()) port = defaultPort;
  } else {
    name = !serverName_.empty() ? std::string_view(serverName_) : std::string_view(conn.localAddress);
    if (conn.isUnix || conn.localPort == 0) {
      port = defaultPort;
    } else {
      localPort = std::to_string(conn.localPort);
      port = localPort;
    }
  }
  if (!setRepeating(dict, kServerName, kMemoServerName, name) ||
      !setRepeating(dict, kServerPort, kMemoServerPort, port)) {
    return {};
  }

  bool haveContentType = false;
  for (const http::Header& h : req.headers) {
    if (http::iequals(h.name, "Content-Type")) {
      // CGI passes it as CONTENT_TYPE only (never HTTP_CONTENT_TYPE); the first one wins.
      if (!haveContentType && !set(kContentType, PyRef::steal(latin1(h.value)))) return {};
      haveContentType = true;
      continue;
    }
    if (http::iequals(h.name, "Content-Length")) continue;  // CONTENT_LENGTH is the body size
    PyRef key = headerKey(h.name);
    if (!key) return {};
    PyRef value = key.get() == hostKey_.get() ? cachedValue(kMemoHost, h.value)
                                              : PyRef::steal(latin1(h.value));
    if (!value) return {};
    PyObject* existing = PyDict_SetDefault(dict, key.get(), value.get());
    if (!existing) return {};
    if (existing != value.get()) {
      // A repeated field: join as RFC 9110 §5.3 allows (cookies with "; ", RFC 6265 §5.4).
      PyObject* sep = key.get() == cookieKey_.get() ? semicolonSep_.get() : commaSep_.get();
      PyRef head = PyRef::steal(PyUnicode_Concat(existing, sep));
      PyRef joined = PyRef::steal(head ? PyUnicode_Concat(head.get(), value.get()) : nullptr);
      if (!joined || PyDict_SetItem(dict, key.get(), joined.get()) < 0) return {};
    }
  }
  // A front server's own CGI variables (uwsgi: SERVER_NAME, SERVER_PORT, DOCUMENT_ROOT, a
  // uwsgi_param ...), as given, over portico's: the app sees what uWSGI would show it.
  for (const http::Header& p : req.params) {
    PyRef key = PyRef::steal(latin1(p.name));
    PyRef value = PyRef::steal(latin1(p.value));
    if (!key || !value || PyDict_SetItem(dict, key.get(), value.get()) < 0) return {};
  }
  return env;
}

}  // namespace portico::python
