#include "python/wsgi_app.h"  // Python.h first

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "http/response.h"
#include "python/request_body.h"

// Under -DPORTICO_SANITIZE=ON: libpython never frees everything it allocated at start-up (and
// finalization leaves some objects alive), so LeakSanitizer ignores allocations made inside
// libpython. Our own C++ allocations are still checked; Python reference leaks are caught by the
// tracemalloc test below instead.
extern "C" const char* __lsan_default_suppressions() { return "leak:libpython3.11.so\n"; }

namespace portico::python {
namespace {

std::string gLogPath;

// Starts the embedded interpreter once for the whole binary and points the error log at a file
// the tests can read back.
class PythonEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    char path[] = "/tmp/portico_wsgi_test_log_XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    gLogPath = path;
    std::string error;
    ASSERT_TRUE(ErrorLog::instance().configure(gLogPath, LogLevel::kDebug, error)) << error;
    Py_InitializeEx(0);
  }
  void TearDown() override {
    Py_FinalizeEx();
    ::unlink(gLogPath.c_str());
  }
};

[[maybe_unused]] ::testing::Environment* const kPythonEnv =
    ::testing::AddGlobalTestEnvironment(new PythonEnvironment);

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What the error log received since construction.
class LogCapture {
 public:
  LogCapture() : start_(readFile(gLogPath).size()) {}
  std::string text() const { return readFile(gLogPath).substr(start_); }

 private:
  size_t start_;
};

// A ResponseChannel that records every call; never blocks. Checks the GIL is released around
// each call, as the contract requires.
class FakeChannel : public ResponseChannel {
 public:
  std::vector<std::string> events;
  std::optional<http::ResponseHead> head;
  std::string body;
  std::vector<BodyChunk> chunks;
  int bodiesBeforeGone = -1;  // >= 0: sendBody fails (client gone) after this many successes
  bool gone = false;

  bool sendHead(http::ResponseHead h) override {
    events.push_back("head");
    head = std::move(h);
    return !gone;
  }
  // Only sendBody may wait (backpressure), so only it must be called without the GIL; the
  // other calls just queue and keep it (ResponseChannel's contract).
  bool sendBody(BodyChunk chunk) override {
    EXPECT_FALSE(PyGILState_Check()) << "sendBody with the GIL held";
    events.push_back("body");
    if (bodiesBeforeGone == 0) gone = true;
    if (gone) return false;
    if (bodiesBeforeGone > 0) --bodiesBeforeGone;
    if (auto* s = std::get_if<std::string>(&chunk.data)) body += *s;
    chunks.push_back(std::move(chunk));
    return true;
  }
  bool sendWhole(http::ResponseHead h, std::string b) override {
    events.push_back("whole");
    head = std::move(h);
    body = std::move(b);
    return !gone;
  }
  void finish() override {
    events.push_back("finish");
  }
  void abortConnection() override { events.push_back("abort"); }
  bool clientGone() const override { return gone; }

  int status() const { return head ? head->status : 0; }
  const std::string* header(const std::string& name) const {
    if (!head) return nullptr;
    for (const auto& h : head->headers) {
      if (http::iequals(h.name, name)) return &h.value;
    }
    return nullptr;
  }
  std::string eventList() const {
    std::string out;
    for (const auto& e : events) out += (out.empty() ? "" : ",") + e;
    return out;
  }
};

// A request body in memory; can pretend to be file-backed (then reads must run without the
// GIL) and can return short reads to exercise the callers' loops.
class MemoryBody : public RequestBody {
 public:
  MemoryBody(std::string data, bool fileBacked, size_t maxRead)
      : data_(std::move(data)), fileBacked_(fileBacked), maxRead_(maxRead) {}
  uint64_t size() const override { return data_.size(); }
  size_t read(uint64_t offset, char* dst, size_t n) const override {
    if (fileBacked_) {
      EXPECT_FALSE(PyGILState_Check()) << "file-backed read with the GIL held";
    }
    if (offset >= data_.size()) return 0;
    n = std::min({n, data_.size() - static_cast<size_t>(offset), maxRead_});
    data_.copy(dst, n, static_cast<size_t>(offset));
    return n;
  }
  bool fileBacked() const override { return fileBacked_; }

 private:
  std::string data_;
  bool fileBacked_;
  size_t maxRead_;
};

struct RequestSpec {
  std::string method = "GET";
  std::string target = "/";
  std::vector<http::Header> headers;
  std::string body;
  bool fileBacked = false;
  size_t maxRead = SIZE_MAX;
  // The body as the handler builds it (BodyBuilder: 256 KiB pooled blocks, read in place)
  // instead of the test double above.
  bool realBody = false;
  bool chunked = false;
  int versionMinor = 1;
};

RequestSnapshot makeSnapshot(const RequestSpec& spec) {
  RequestSnapshot snap;
  auto shared = std::make_shared<http::Request>();
  snap.request = shared;
  http::Request& req = *shared;
  req.method = spec.method;
  req.target = spec.target;
  size_t q = spec.target.find('?');
  req.rawPath = spec.target.substr(0, q);
  if (q != std::string::npos) req.query = spec.target.substr(q + 1);
  req.path = req.rawPath;
  req.versionMinor = spec.versionMinor;
  req.headers = spec.headers;
  req.chunked = spec.chunked;
  for (const auto& h : spec.headers) {
    if (http::iequals(h.name, "Host") && req.host.empty()) req.host = h.value;
    if (http::iequals(h.name, "Content-Length")) req.contentLength = std::stoull(h.value);
  }
  snap.connection.peerAddress = "127.0.0.1";
  snap.connection.peerPort = 5555;
  snap.connection.localAddress = "127.0.0.1";
  snap.connection.localPort = 8000;
  snap.pathInfo = req.path;
  return snap;
}

std::shared_ptr<FakeChannel> runWith(WsgiApp& app, RequestSnapshot snap, const RequestSpec& spec) {
  auto channel = std::make_shared<FakeChannel>();
  WsgiJob job;
  job.snapshot = std::move(snap);
  if (spec.realBody) {
    BodyBuilder builder(std::make_shared<BodyMemory>(64u << 20, 0), "/tmp", spec.body.size(),
                        32u << 20);
    builder.append(spec.body);
    job.body = builder.finish();
  } else {
    job.body = std::make_shared<MemoryBody>(spec.body, spec.fileBacked, spec.maxRead);
  }
  job.channel = channel;
  app.run(job);
  EXPECT_FALSE(PyErr_Occurred()) << "run() left a Python exception set";
  PyErr_Clear();
  return channel;
}

std::shared_ptr<FakeChannel> run(WsgiApp& app, const RequestSpec& spec = {}) {
  return runWith(app, makeSnapshot(spec), spec);
}

int gModuleCounter = 0;

// Defines a Python module from source; returns its name.
std::string defineModule(const std::string& code, const std::string& wanted = "") {
  std::string name = wanted.empty() ? "wsgitest_" + std::to_string(++gModuleCounter) : wanted;
  PyRef module = PyRef::steal(PyModule_New(name.c_str()));
  PyObject* dict = PyModule_GetDict(module.get());
  PyDict_SetItemString(dict, "__builtins__", PyEval_GetBuiltins());
  PyRef done = PyRef::steal(PyRun_String(code.c_str(), Py_file_input, dict, dict));
  if (!done) {
    PyErr_Print();
    ADD_FAILURE() << "module code failed:\n" << code;
  }
  PyDict_SetItemString(PyImport_GetModuleDict(), name.c_str(), module.get());
  return name;
}

// ascii(eval(expr)) in a module's namespace, as a C++ string.
std::string evalAscii(const std::string& module, const std::string& expr) {
  PyObject* mod = PyDict_GetItemString(PyImport_GetModuleDict(), module.c_str());
  if (!mod) return "<no module>";
  PyObject* dict = PyModule_GetDict(mod);
  PyRef value = PyRef::steal(PyRun_String(expr.c_str(), Py_eval_input, dict, dict));
  if (!value) {
    PyErr_Print();
    return "<error>";
  }
  PyRef text = PyRef::steal(PyObject_ASCII(value.get()));
  return PyUnicode_AsUTF8(text.get());
}

struct LoadedApp {
  std::string module;
  std::unique_ptr<WsgiApp> app;
};

LoadedApp loadApp(const std::string& code, const std::string& attr = "app",
                  WsgiSettings settings = {}) {
  LoadedApp loaded;
  loaded.module = defineModule(code);
  std::string error;
  loaded.app = WsgiApp::load(loaded.module + ":" + attr, settings, error);
  EXPECT_TRUE(loaded.app) << error;
  return loaded;
}

// ---------------------------------------------------------------------------------------------
// environ

constexpr const char* kRecordEnviron = R"(
seen = None
def app(environ, start_response):
    global seen
    seen = dict(environ)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']
)";

TEST(WsgiEnviron, KeysAndValues) {
  WsgiSettings settings;
  settings.multithread = true;
  LoadedApp t = loadApp(kRecordEnviron, "app", settings);
  RequestSpec spec;
  spec.method = "POST";
  spec.target = "/caf%C3%A9?x=1&y=%20";
  spec.body = "hello";
  spec.headers = {{"Host", "example.com:8080"},     {"X-A", "1"},
                  {"x-a", "2"},                     {"Cookie", "a=1"},
                  {"Cookie", "b=2"},                {"X_Spoof", "evil"},
                  {"X-Forwarded-For", "10.0.0.1"},  {"Content-Type", "text/plain"},
                  {"Content-Length", "5"},          {"User-Agent", "t\xe9st"}};
  RequestSnapshot snap = makeSnapshot(spec);
  snap.pathInfo = "/caf\xc3\xa9";
  auto ch = runWith(*t.app, snap, spec);
  ASSERT_EQ(ch->status(), 200);

  struct Case {
    const char* expr;
    const char* expected;
  } cases[] = {
      {"seen['REQUEST_METHOD']", "'POST'"},
      {"seen['SCRIPT_NAME']", "''"},
      {"seen['PATH_INFO']", "'/caf\\xc3\\xa9'"},  // bytes tunnelled as latin-1
      {"seen['QUERY_STRING']", "'x=1&y=%20'"},
      {"seen['CONTENT_TYPE']", "'text/plain'"},
      {"seen['CONTENT_LENGTH']", "'5'"},
      {"'HTTP_CONTENT_TYPE' in seen", "False"},
      {"'HTTP_CONTENT_LENGTH' in seen", "False"},
      {"seen['HTTP_X_A']", "'1, 2'"},
      {"seen['HTTP_COOKIE']", "'a=1; b=2'"},
      // What the request parser kept, the environ maps: an underscored name reaches it only
      // where the server allows one (underscores_in_headers on; test_wsgi_environ.py and
      // test_site_conf.py check that the parser drops it otherwise).
      {"sorted(k for k in seen if 'SPOOF' in k)", "['HTTP_X_SPOOF']"},
      {"seen['HTTP_X_FORWARDED_FOR']", "'10.0.0.1'"},
      {"seen['HTTP_USER_AGENT']", "'t\\xe9st'"},
      {"seen['HTTP_HOST']", "'example.com:8080'"},
      {"seen['SERVER_NAME']", "'example.com'"},
      {"seen['SERVER_PORT']", "'8080'"},
      {"seen['SERVER_PROTOCOL']", "'HTTP/1.1'"},
      {"seen['REMOTE_ADDR']", "'127.0.0.1'"},
      {"seen['REMOTE_PORT']", "'5555'"},
      {"seen['REQUEST_URI']", "'/caf%C3%A9?x=1&y=%20'"},
      {"seen['RAW_URI']", "'/caf%C3%A9?x=1&y=%20'"},
      {"seen['wsgi.version']", "(1, 0)"},
      {"seen['wsgi.url_scheme']", "'http'"},
      {"seen['wsgi.multithread']", "True"},
      {"seen['wsgi.multiprocess']", "False"},
      {"seen['wsgi.run_once']", "False"},
      {"seen['wsgi.input_terminated']", "True"},
      {"seen['wsgi.file_wrapper'].__name__", "'FileWrapper'"},
      {"type(seen['wsgi.input']).__module__", "'portico'"},
      {"seen['SERVER_SOFTWARE'].startswith('portico/')", "True"},
      {"all(type(v) is str for k, v in seen.items() if '.' not in k)", "True"},
      {"all(type(k) is str for k in seen)", "True"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(evalAscii(t.module, c.expr), c.expected) << c.expr;
  }
}

TEST(WsgiEnviron, ScriptNameAndHttp10) {
  LoadedApp t = loadApp(kRecordEnviron);
  RequestSpec spec;
  spec.target = "/app/x";
  spec.versionMinor = 0;
  RequestSnapshot snap = makeSnapshot(spec);
  snap.scriptName = "/app";
  snap.pathInfo = "/x";
  runWith(*t.app, snap, spec);
  EXPECT_EQ(evalAscii(t.module, "seen['SCRIPT_NAME']"), "'/app'");
  EXPECT_EQ(evalAscii(t.module, "seen['PATH_INFO']"), "'/x'");
  EXPECT_EQ(evalAscii(t.module, "seen['SERVER_PROTOCOL']"), "'HTTP/1.0'");
  EXPECT_EQ(evalAscii(t.module, "'CONTENT_LENGTH' in seen"), "False");
  EXPECT_EQ(evalAscii(t.module, "'CONTENT_TYPE' in seen"), "False");
  EXPECT_EQ(evalAscii(t.module, "seen['QUERY_STRING']"), "''");
}

TEST(WsgiEnviron, ContentLengthIsTheBodySize) {
  LoadedApp t = loadApp(kRecordEnviron);
  RequestSpec chunked;
  chunked.method = "POST";
  chunked.chunked = true;
  chunked.body = "abc";
  run(*t.app, chunked);
  EXPECT_EQ(evalAscii(t.module, "seen['CONTENT_LENGTH']"), "'3'");

  RequestSpec empty;
  empty.method = "POST";
  empty.headers = {{"Content-Length", "0"}};
  run(*t.app, empty);
  EXPECT_EQ(evalAscii(t.module, "seen['CONTENT_LENGTH']"), "'0'");
}

TEST(WsgiEnviron, ServerNameAndPort) {
  struct Case {
    const char* host;  // nullptr: no Host header
    const char* scheme;
    bool isUnix;
    const char* serverName;
    const char* expectedName;
    const char* expectedPort;
  } cases[] = {
      {"example.com:8080", "http", false, "", "'example.com'", "'8080'"},
      {"example.com", "http", false, "", "'example.com'", "'80'"},
      {"example.com", "https", false, "", "'example.com'", "'443'"},
      {"[::1]:9000", "http", false, "", "'[::1]'", "'9000'"},
      {"[::1]", "http", false, "", "'[::1]'", "'80'"},
      {nullptr, "http", false, "", "'127.0.0.1'", "'8000'"},
      {nullptr, "http", false, "myhost", "'myhost'", "'8000'"},
      {nullptr, "https", true, "sock", "'sock'", "'443'"},
  };
  LoadedApp t = loadApp(kRecordEnviron);
  for (const Case& c : cases) {
    RequestSpec spec;
    if (c.host) spec.headers = {{"Host", c.host}};
    RequestSnapshot snap = makeSnapshot(spec);
    snap.connection.scheme = c.scheme;
    snap.connection.isUnix = c.isUnix;
    if (c.isUnix) {
      snap.connection.peerAddress = "";
      snap.connection.localPort = 0;
    }
    WsgiSettings settings;
    settings.serverName = c.serverName;
    std::string error;
    auto app = WsgiApp::load(t.module + ":app", settings, error);
    ASSERT_TRUE(app) << error;
    runWith(*app, snap, spec);
    SCOPED_TRACE(c.host ? c.host : "(none)");
    EXPECT_EQ(evalAscii(t.module, "seen['SERVER_NAME']"), c.expectedName);
    EXPECT_EQ(evalAscii(t.module, "seen['SERVER_PORT']"), c.expectedPort);
    EXPECT_EQ(evalAscii(t.module, "seen['wsgi.url_scheme']"), std::string("'") + c.scheme + "'");
    if (c.isUnix) {
      EXPECT_EQ(evalAscii(t.module, "seen['REMOTE_ADDR']"), "''");
      EXPECT_EQ(evalAscii(t.module, "'REMOTE_PORT' in seen"), "False");
    }
  }
}

TEST(WsgiEnviron, FreshDictPerRequest) {
  LoadedApp t = loadApp(R"(
ids = []
def app(environ, start_response):
    environ['mutated'] = True
    ids.append(id(environ))
    start_response('200 OK', [])
    return [b'1' if 'mutated' in environ else b'0']
)");
  run(*t.app);
  auto ch = run(*t.app);
  EXPECT_EQ(ch->body, "1");
  EXPECT_EQ(evalAscii(t.module, "len(ids)"), "2");
}

// ---------------------------------------------------------------------------------------------
// wsgi.input

constexpr const char* kInputApp = R"(
EXPR = None
def err(f):
    try:
        f()
    except Exception as e:
        return type(e).__name__
    return 'no error'
def app(environ, start_response):
    inp = environ['wsgi.input']
    result = eval(EXPR, {'inp': inp, 'err': err})
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [ascii(result).encode()]
)";

TEST(WsgiInput, ReadVariants) {
  struct Case {
    const char* body;
    const char* expr;
    const char* expected;
  } cases[] = {
      {"line1\nline2\n\nlast", "inp.read()", "b'line1\\nline2\\n\\nlast'"},
      {"line1\nline2\n\nlast", "inp.read(None)", "b'line1\\nline2\\n\\nlast'"},
      {"line1\nline2\n\nlast", "inp.read(-1)", "b'line1\\nline2\\n\\nlast'"},
      {"line1\nline2\n\nlast", "[inp.read(3), inp.read(3), inp.read(100), inp.read(), inp.read(5)]",
       "[b'lin', b'e1\\n', b'line2\\n\\nlast', b'', b'']"},
      {"line1\nline2\n\nlast",
       "[inp.readline(), inp.readline(2), inp.readline(), inp.readline(), inp.readline(), "
       "inp.readline()]",
       "[b'line1\\n', b'li', b'ne2\\n', b'\\n', b'last', b'']"},
      {"line1\nline2\n\nlast", "inp.readlines()", "[b'line1\\n', b'line2\\n', b'\\n', b'last']"},
      {"line1\nline2\n\nlast", "inp.readlines(7)", "[b'line1\\n', b'line2\\n']"},
      {"line1\nline2\n\nlast", "inp.readlines(0)", "[b'line1\\n', b'line2\\n', b'\\n', b'last']"},
      {"line1\nline2\n\nlast", "list(inp)", "[b'line1\\n', b'line2\\n', b'\\n', b'last']"},
      {"line1\nline2\n\nlast", "[inp.readline(), inp.read(2), inp.readline(), inp.read()]",
       "[b'line1\\n', b'li', b'ne2\\n', b'\\nlast']"},
      {"line1\nline2", "[inp.readline(0), inp.read(0), inp.readline(None)]",
       "[b'', b'', b'line1\\n']"},
      {"", "[inp.read(), inp.read(10), inp.readline(), inp.readlines(), list(inp)]",
       "[b'', b'', b'', [], []]"},
      {"abc", "[err(lambda: inp.read('x')), err(lambda: inp.readline(1.5)), "
              "err(lambda: inp.read(1, 2))]",
       "['TypeError', 'TypeError', 'TypeError']"},
      {"abc", "iter(inp) is inp", "True"},
      {"abcdef", "[inp.read(True), inp.read(2**70), inp.read(-2**70)]",
       "[b'a', b'bcdef', b'']"},
  };
  LoadedApp t = loadApp(kInputApp);
  for (bool realBody : {false, true}) {
  for (bool fileBacked : {false, true}) {
    for (size_t maxRead : {SIZE_MAX, size_t{2}}) {
      if (realBody && (fileBacked || maxRead != SIZE_MAX)) continue;
      for (const Case& c : cases) {
        PyObject* mod = PyDict_GetItemString(PyImport_GetModuleDict(), t.module.c_str());
        PyRef expr = PyRef::steal(PyUnicode_FromString(c.expr));
        PyObject_SetAttrString(mod, "EXPR", expr.get());
        RequestSpec spec;
        spec.method = "POST";
        spec.body = c.body;
        spec.fileBacked = fileBacked;
        spec.maxRead = maxRead;
        spec.realBody = realBody;
        auto ch = run(*t.app, spec);
        EXPECT_EQ(ch->body, c.expected) << c.expr << " fileBacked=" << fileBacked
                                        << " maxRead=" << maxRead << " realBody=" << realBody;
      }
    }
  }
  }
}

TEST(WsgiInput, LargeBodyLinesSpanTheReadAhead) {
  // Lines of many lengths, one longer than the 64 KiB read-ahead, so lines cross refills.
  std::string body;
  int lines = 0;
  for (int i = 0; body.size() < 300000; ++i) {
    size_t len = (i == 50) ? 100000 : static_cast<size_t>((i * 7919) % 3000);
    body.append(len, static_cast<char>('a' + i % 26));
    body.push_back('\n');
    ++lines;
  }
  body += "tail-without-newline";
  ++lines;
  LoadedApp t = loadApp(R"(
def app(environ, start_response):
    inp = environ['wsgi.input']
    first = inp.readline()
    rest = list(inp)
    start_response('200 OK', [('X-Lines', str(len(rest) + 1))])
    return [first] + rest
)");
  for (int kind = 0; kind < 3; ++kind) {
    RequestSpec spec;
    spec.method = "POST";
    spec.body = body;
    spec.fileBacked = kind == 1;
    spec.maxRead = 5000;
    spec.realBody = kind == 2;  // lines that cross its 256 KiB blocks, searched in place
    auto ch = run(*t.app, spec);
    ASSERT_EQ(ch->status(), 200);
    EXPECT_EQ(*ch->header("X-Lines"), std::to_string(lines));
    EXPECT_TRUE(ch->body == body) << "body mismatch, kind=" << kind;
  }
}

TEST(WsgiInput, TheBodyIsReleasedWhenTheRequestEnds) {
  // An app that keeps wsgi.input (Django's request objects sit in reference cycles until the
  // cyclic GC) must not keep the body's memory: it reads as empty once the request is over.
  LoadedApp t = loadApp(R"(
KEPT = []
def app(environ, start_response):
    KEPT.append(environ['wsgi.input'])
    start_response('200 OK', [])
    return [KEPT[-1].read(3)]
def later():
    return [KEPT[0].read(), KEPT[0].readline()]
)");
  auto memory = std::make_shared<BodyMemory>(64u << 20, 0);
  BodyBuilder builder(memory, "/tmp", 1u << 20, 32u << 20);
  builder.append(std::string(1u << 20, 'x'));
  std::shared_ptr<const RequestBody> body = builder.finish();
  std::weak_ptr<const RequestBody> watch = body;
  EXPECT_GT(memory->inUse(), 0u);
  {
    auto channel = std::make_shared<FakeChannel>();
    WsgiJob job;
    RequestSpec spec;
    spec.method = "POST";
    job.snapshot = makeSnapshot(spec);
    job.body = std::move(body);
    job.channel = channel;
    t.app->run(job);
    EXPECT_EQ(channel->body, "xxx");
  }
  EXPECT_TRUE(watch.expired());
  EXPECT_EQ(memory->inUse(), 0u);
  PyObject* mod = PyDict_GetItemString(PyImport_GetModuleDict(), t.module.c_str());
  PyRef later = PyRef::steal(PyObject_CallMethod(mod, "later", nullptr));
  ASSERT_TRUE(later);
  PyRef text = PyRef::steal(PyObject_Repr(later.get()));
  EXPECT_STREQ(PyUnicode_AsUTF8(text.get()), "[b'', b'']");
}

// ---------------------------------------------------------------------------------------------
// wsgi.errors

TEST(WsgiErrors, LinesGoToTheErrorLog) {
  LoadedApp t = loadApp(R"(
def app(environ, start_response):
    err = environ['wsgi.errors']
    err.write('first line\nsecond ')
    err.write('line\n')
    err.writelines(['third\n', 'fourth'])
    err.flush()
    err.write('unflushed tail')
    start_response('200 OK', [])
    return [b'ok']
)");
  LogCapture log;
  auto ch = run(*t.app);
  EXPECT_EQ(ch->body, "ok");
  std::string text = log.text();
  for (const char* line : {"] first line\n", "] second line\n", "] third\n", "] fourth\n",
                           "] unflushed tail\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << " in:\n" << text;
  }
  EXPECT_NE(text.find("[ERROR]"), std::string::npos);
}

TEST(WsgiErrors, RejectsNonStrings) {
  LoadedApp t = loadApp(R"(
def app(environ, start_response):
    try:
        environ['wsgi.errors'].write(42)
        r = b'no error'
    except TypeError:
        r = b'TypeError'
    start_response('200 OK', [])
    return [r]
)");
  EXPECT_EQ(run(*t.app)->body, "TypeError");
}

// ---------------------------------------------------------------------------------------------
// start_response validation

constexpr const char* kStatusApp = R"(
STATUS = None
HEADERS = None
def app(environ, start_response):
    start_response(eval(STATUS), eval(HEADERS))
    return [b'body']
)";

TEST(WsgiStartResponse, Validation) {
  struct Case {
    const char* status;
    const char* headers;
    int expected;
  } cases[] = {
      {"'200 OK'", "[('Content-Type', 'text/plain')]", 200},
      {"'404 Not Found'", "[]", 404},
      {"'200 '", "[]", 200},
      {"'299 Custom\\tReason'", "[('X-Tab', 'a\\tb')]", 299},
      {"'200 OK'", "[('X-Latin', 'caf\\xe9')]", 200},
      {"'200 OK'", "[('X-Empty', '')]", 200},
      {"'200 OK'", "[(\"!#$%&'*+-.^_`|~09azAZ\", 'v')]", 200},
      {"'200'", "[]", 500},
      {"'OK 200'", "[]", 500},
      {"'20x OK'", "[]", 500},
      {"' 200 OK'", "[]", 500},
      {"'200-OK'", "[]", 500},
      {"b'200 OK'", "[]", 500},
      {"200", "[]", 500},
      {"'200 OK\\r\\nX-Injected: 1'", "[]", 500},
      {"'200 OK\\n'", "[]", 500},
      {"'200 \\x00'", "[]", 500},
      {"'100 Continue'", "[]", 500},
      {"'099 Low'", "[]", 500},
      {"'600 High'", "[]", 500},
      {"'200 Caf\\u20ac'", "[]", 500},
      {"'200 OK'", "[('X-A', 'a\\r\\nX-Injected: 1')]", 500},
      {"'200 OK'", "[('X-A', 'a\\nb')]", 500},
      {"'200 OK'", "[('X-A', 'a\\rb')]", 500},
      {"'200 OK'", "[('X-A', 'a\\x00b')]", 500},
      {"'200 OK'", "[('X-A', 'a\\x7fb')]", 500},
      {"'200 OK'", "[('X-A', 'a\\x1bb')]", 500},
      {"'200 OK'", "[('X-A', '\\u20ac')]", 500},
      {"'200 OK'", "[('Bad Name', 'v')]", 500},
      {"'200 OK'", "[('X:A', 'v')]", 500},
      {"'200 OK'", "[('X-A\\r\\nX-Injected', 'v')]", 500},
      {"'200 OK'", "[('', 'v')]", 500},
      {"'200 OK'", "[('X-\\xe9', 'v')]", 500},
      {"'200 OK'", "[('X-A', 1)]", 500},
      {"'200 OK'", "[(b'X-A', 'v')]", 500},
      {"'200 OK'", "[('X-A', b'v')]", 500},
      {"'200 OK'", "[('X-A',)]", 500},
      {"'200 OK'", "[('X-A', 'v', 'w')]", 500},
      {"'200 OK'", "[['X-A', 'v']]", 500},
      {"'200 OK'", "(('X-A', 'v'),)", 500},
      {"'200 OK'", "None", 500},
      {"'200 OK'", "[('Content-Length', 'abc')]", 500},
      {"'200 OK'", "[('Content-Length', '-1')]", 500},
      {"'200 OK'", "[('Content-Length', '')]", 500},
      {"'200 OK'", "[('Content-Length', '4'), ('content-length', '5')]", 500},
  };
  LoadedApp t = loadApp(kStatusApp);
  PyObject* mod = PyDict_GetItemString(PyImport_GetModuleDict(), t.module.c_str());
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.status) + " / " + c.headers);
    PyRef status = PyRef::steal(PyUnicode_FromString(c.status));
    PyRef headers = PyRef::steal(PyUnicode_FromString(c.headers));
    PyObject_SetAttrString(mod, "STATUS", status.get());
    PyObject_SetAttrString(mod, "HEADERS", headers.get());
    LogCapture log;
    auto ch = run(*t.app);
    ASSERT_TRUE(ch->head);
    EXPECT_EQ(ch->status(), c.expected);
    if (c.expected == 500) {
      // The whole response is ours: nothing of the app's head, no split.
      EXPECT_EQ(ch->eventList(), "whole");
      EXPECT_EQ(ch->body, http::errorPageBody(500));
      ASSERT_EQ(ch->head->headers.size(), 1u);
      EXPECT_EQ(ch->head->headers[0].name, "Content-Type");
      EXPECT_EQ(ch->head->headers[0].value, "text/html");
      EXPECT_EQ(ch->head->contentLength, http::errorPageBody(500).size());
      EXPECT_NE(log.text().find("Error handling request GET /"), std::string::npos);
      EXPECT_NE(log.text().find("Error"), std::string::npos);
    } else {
      EXPECT_EQ(ch->body, "body");
      EXPECT_EQ(ch->eventList(), "whole");
    }
  }
}

TEST(WsgiStartResponse, LatinHeaderValueBytes) {
  LoadedApp t = loadApp(R"(
def app(environ, start_response):
    start_response('200 OK', [('X-Latin', 'caf\xe9'), ('X-Second', 'two')])
    return [b'']
)");
  auto ch = run(*t.app);
  ASSERT_EQ(ch->status(), 200);
  EXPECT_EQ(*ch->header("X-Latin"), "caf\xe9");
  EXPECT_EQ(ch->head->headers[1].name, "X-Second");
}

TEST(WsgiStartResponse, FramingAndHopByHopHeadersAreTheConnections) {
  LoadedApp t = loadApp(R"(
def app(environ, start_response):
    start_response('200 OK', [('Content-Length', ' 4 '), ('Transfer-Encoding', 'chunked'),
                              ('Connection', 'keep-alive, Close'), ('Keep-Alive', 'timeout=5'),
                              ('X-Ok', '1')])
    return [b'body']
)");
  auto ch = run(*t.app);
  ASSERT_EQ(ch->status(), 200);
  ASSERT_EQ(ch->head->headers.size(), 1u);
  EXPECT_EQ(ch->head->headers[0].name, "X-Ok");
  EXPECT_EQ(ch->head->contentLength, 4u);
  EXPECT_TRUE(ch->head->close);
}

TEST(WsgiStartResponse, KeywordArgumentsAndArity) {
  LoadedApp t = loadApp(R"(
def err(f):
    try:
        f()
    except Exception as e:
        return type(e).__name__
    return 'ok'
def app(environ, start_response):
    results = [err(lambda: start_response('200 OK')),
               err(lambda: start_response('200 OK', [], None, 4)),
               err(lambda: start_response('200 OK', [], bogus=1)),
               err(lambda: start_response('200 OK', [], status='201 X')),
               err(lambda: start_response(status='201 Created', response_headers=[('A', 'b')],
                                          exc_info=None))]
    start_response.__call__  # a normal callable
    return [ascii(results).encode()]
)");
  auto ch = run(*t.app);
  EXPECT_EQ(ch->status(), 201);
  EXPECT_EQ(ch->body, "['TypeError', 'TypeError', 'TypeError', 'TypeError', 'ok']");
}

TEST(WsgiStartResponse, SecondCallWithoutExcInfoFails) {
  LoadedApp t = loadApp(R"(
def app(environ, start_response):
    start_response('200 OK', [('A', '1')])
    try:
        start_response('201 Created', [])
        r = b'no error'
    except AssertionError:
        r = b'AssertionError'
    return [r]
)");
  auto ch = run(*t.app);
  EXPECT_EQ(ch->status(), 200);  // the failed call changed nothing
  EXPECT_EQ(ch->body, "AssertionError");
  EXPECT_EQ(*ch->header("A"), "1");
}

TEST(WsgiStartResponse, ExcInfoBeforeHeadReplacesTheResponse) {
  LoadedApp t = loadApp(R"(
import sys
def app(environ, start_response):
    start_response('200 OK', [('A', '1')])
    try:
        1 / 0
    except ZeroDivisionError:
        start_response('503 Oops', [('B', '2')], sys.exc_info())
    return [b'sorry']
)");
  auto ch = run(*t.app);
  EXPECT_EQ(ch->status(), 503);
  EXPECT_EQ(ch->header("A"), nullptr);
  EXPECT_EQ(*ch->header("B"), "2");
  EXPECT_EQ(ch->body, "sorry");
  EXPECT_EQ(ch->eventList(), "whole");
}

TEST(WsgiStartResponse, ExcInfoAfterHeadReraises) {
  LoadedApp t = loadApp(R"(
import sys
same = None
def app(environ, start_response):
    global same
    write = start_response('200 OK', [])
    write(b'partial')
    try:
        raise ValueError('boom after head')
    except ValueError as original:
        try:
            start_response('500 Error', [], sys.exc_info())
        except ValueError as again:
            same = again is original and again.__traceback__ is not None
            raise
)");
  LogCapture log;
  auto ch = run(*t.app);
  EXPECT_EQ(ch->status(), 200);
  EXPECT_EQ(ch->body, "partial");
  EXPECT_EQ(ch->eventList(), "head,body,abort");
  EXPECT_EQ(evalAscii(t.module, "same"), "True");
  EXPECT_NE(log.text().find("ValueError: boom after head"), std::string::npos) << log.text();
}

TEST(WsgiStartResponse, CallablesRefuseCallsAfterTheRequest) {
  LoadedApp t = loadApp(R"(
kept = []
def app(environ, start_response):
    if kept:
        results = []
        for f, args in ((kept[0], ('200 OK', [])), (kept[1], (b'x',))):
            try:
                f(*args)
                results.append('ok')
            except RuntimeError:
                results.append('RuntimeError')
        start_response('200 OK', [])
        return [ascii(results).encode()]
    kept.append(start_response)
    kept.append(start_response('200 OK', []))
    return [b'first']
)");
  EXPECT_EQ(run(*t.app)->body, "first");
  EXPECT_EQ(run(*t.app)->body, "['RuntimeError', 'RuntimeError']");
  PyRun_SimpleString(("import " + t.module + "; del " + t.module + ".kept[:]").c_str());
}

// ---------------------------------------------------------------------------------------------
// write()

TEST(WsgiWrite, SendsHeadThenDataImmediately) {
  LoadedApp t = loadApp(R"(
def app(environ, start_response):
    write = start_response('200 OK', [('Content-Type', 'text/plain')])
    write(b'a')
    write(b'')
    write(b'bc')
    try:
        write('text')
        r = b'no error'
    except TypeError:
        r = b'TypeError'
    return [b'-', r]
)");
  auto ch = run(*t.app);
  EXPECT_EQ(ch->status(), 200);
  EXPECT_FALSE(ch->head->contentLength);  // unknown when the head went out
  EXPECT_EQ(ch->body, "abc-TypeError");
  EXPECT_EQ(ch->eventList(), "head,body,body,body,body,finish");
}

TEST(WsgiWrite, ClientGoneRaisesBrokenPipe) {
  LoadedApp t = loadApp(R"(
outcome = None
def app(environ, start_response):
    global outcome
    write = start_response('200 OK', [])
    try:
        for i in range(10):
            write(b'x')
        outcome = 'no error'
    except BrokenPipeError:
        outcome = 'BrokenPipeError %d' % i
        raise
    return []
)");
  auto channel = std::make_shared<FakeChannel>();
  channel->bodiesBeforeGone = 2;
  WsgiJob job;
  RequestSpec spec;
  job.snapshot = makeSnapshot(spec);
  job.body = std::make_shared<MemoryBody>("", false, SIZE_MAX);
  job.channel = channel;
  LogCapture log;
  t.app->run(job);
  EXPECT_EQ(evalAscii(t.module, "outcome"), "'BrokenPipeError 2'");
  // A client that left is not an application error and needs no abort.
  EXPECT_EQ(channel->eventList(), "head,body,body,body,finish");
  EXPECT_EQ(log.text().find("Error handling request"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Iterables, generators, close()

TEST(WsgiBody, OneItemListIsOneHandOffWithLength) {
  LoadedApp t = loadApp(R"(
def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'Hello, world!']
)");
  auto ch = run(*t.app);
  EXPECT_EQ(ch->eventList(), "whole");
  EXPECT_EQ(ch->head->contentLength, 13u);
  EXPECT_EQ(ch->body, "Hello, world!");
}

TEST(WsgiBody, SequencesGetTheirTotalLength) {
  struct Case {
    const char* result;
    const char* headers;
    const char* events;
    std::optional<uint64_t> length;
    const char* body;
  } cases[] = {
      {"[b'ab', b'', b'cde']", "[]", "whole", 5, "abcde"},
      {"(b'ab', b'cd')", "[]", "whole", 4, "abcd"},
      {"[]", "[]", "whole", 0, ""},
      {"[b'abc']", "[('Content-Length', '3')]", "whole", 3, "abc"},
      // The app's own Content-Length stands; the connection truncates or closes as needed.
      {"[b'abcdef']", "[('Content-Length', '3')]", "whole", 3, "abcdef"},
      {"[b'a' * 700000, b'b' * 700000]", "[]", "head,body,body,finish", 1400000, nullptr},
  };
  LoadedApp t = loadApp(R"(
RESULT = None
HEADERS = None
def app(environ, start_response):
    start_response('200 OK', eval(HEADERS))
    return eval(RESULT)
)");
  PyObject* mod = PyDict_GetItemString(PyImport_GetModuleDict(), t.module.c_str());
  for (const Case& c : cases) {
    SCOPED_TRACE(c.result);
    PyRef result = PyRef::steal(PyUnicode_FromString(c.result));
    PyRef headers = PyRef::steal(PyUnicode_FromString(c.headers));
    PyObject_SetAttrString(mod, "RESULT", result.get());
    PyObject_SetAttrString(mod, "HEADERS", headers.get());
    auto ch = run(*t.app);
    EXPECT_EQ(ch->status(), 200);
    EXPECT_EQ(ch->eventList(), c.events);
    EXPECT_EQ(ch->head->contentLength, c.length);
    if (c.body) {
      EXPECT_EQ(ch->body, c.body);
    }
  }
}

TEST(WsgiBody, NonBytesItemsAre500BeforeTheHead) {
  for (const char* result : {"['text']", "[b'ok', 'text']", "(x for x in [b'', 'text'])",
                             "'a str'", "None", "42"}) {
    SCOPED_TRACE(result);
    LoadedApp t = loadApp(std::string(R"(
def app(environ, start_response):
    start_response('200 OK', [])
    return )") + result + "\n");
    LogCapture log;
    auto ch = run(*t.app);
    EXPECT_EQ(ch->status(), 500);
    EXPECT_EQ(ch->eventList(), "whole");
    EXPECT_NE(log.text().find("TypeError"), std::string::npos) << log.text();
  }
}

TEST(WsgiBody, NonBytesItemAfterTheHeadAborts) {
  LoadedApp t = loadApp(R"(
def app(environ, start_response):
    start_response('200 OK', [])
    yield b'first'
    yield 'second'
)");
  auto ch = run(*t.app);
  EXPECT_EQ(ch->eventList(), "head,body,abort");
  EXPECT_EQ(ch->body, "first");
}

TEST(WsgiBody, GeneratorWithLateStartResponse) {
  LoadedApp t = loadApp(R"(
def app(environ, start_response):
    def gen():
        start_response('201 Created', [('X', 'y')])
        yield b''
        yield b'one'
        yield b''
        yield b'two'
    return gen()
)");
  auto ch = run(*t.app);
  EXPECT_EQ(ch->status(), 201);
  EXPECT_EQ(*ch->header("X"), "y");
  EXPECT_FALSE(ch->head->contentLength);
  EXPECT_EQ(ch->body, "onetwo");
  EXPECT_EQ(ch->eventList(), "head,body,body,finish");
}

TEST(WsgiBody, EmptyIterableSendsTheHeadAtTheEndWithLengthZero) {
  LoadedApp t = loadApp(R"(
def app(environ, start_response):
    def gen():
        start_response('204 No Content', [])
        yield b''
    return gen()
)");
  auto ch = run(*t.app);
  EXPECT_EQ(ch->status(), 204);
  EXPECT_EQ(ch->head->contentLength, 0u);
  EXPECT_EQ(ch->eventList(), "head,finish");
}

TEST(WsgiBody, NoStartResponseIs500) {
  for (const char* body : {"return [b'x']", "return iter([b'x'])", "return []",
                           "yield b'x'"}) {
    SCOPED_TRACE(body);
    LoadedApp t = loadApp(std::string("def app(environ, start_response):\n    ") + body + "\n");
    LogCapture log;
    auto ch = run(*t.app);
    EXPECT_EQ(ch->status(), 500);
    EXPECT_NE(log.text().find("start_response"), std::string::npos) << log.text();
  }
}

TEST(WsgiBody, HeadRequestSkipsTheBodyButKeepsTheLength) {
  LoadedApp t = loadApp(R"(
def app(environ, start_response):
    start_response('200 OK', [])
    return [b'12345']
)");
  RequestSpec spec;
  spec.method = "HEAD";
  auto ch = run(*t.app, spec);
  EXPECT_EQ(ch->eventList(), "whole");
  EXPECT_EQ(ch->head->contentLength, 5u);
  EXPECT_EQ(ch->body, "");
}

constexpr const char* kClosingApp = R"(
log = []
MODE = None
class Body:
    def __init__(self):
        self.items = [b'a', b'b', b'c', b'd']
    def __iter__(self):
        for i, item in enumerate(self.items):
            log.append('item%d' % i)
            if MODE == 'raise-first' and i == 0:
                raise RuntimeError('before head')
            if MODE == 'raise-later' and i == 2:
                raise RuntimeError('after head')
            yield item
    def close(self):
        log.append('close')
def app(environ, start_response):
    del log[:]
    start_response('200 OK', [])
    return Body()
)";

TEST(WsgiBody, CloseIsAlwaysCalled) {
  struct Case {
    const char* mode;
    int bodiesBeforeGone;
    const char* events;
    const char* log;
  } cases[] = {
      {"ok", -1, "head,body,body,body,body,finish", "['item0', 'item1', 'item2', 'item3', 'close']"},
      {"raise-first", -1, "whole", "['item0', 'close']"},
      {"raise-later", -1, "head,body,body,abort", "['item0', 'item1', 'item2', 'close']"},
      {"ok", 1, "head,body,body,finish", "['item0', 'item1', 'close']"},
  };
  LoadedApp t = loadApp(kClosingApp);
  PyObject* mod = PyDict_GetItemString(PyImport_GetModuleDict(), t.module.c_str());
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.mode) + " " + std::to_string(c.bodiesBeforeGone));
    PyRef mode = PyRef::steal(PyUnicode_FromString(c.mode));
    PyObject_SetAttrString(mod, "MODE", mode.get());
    auto channel = std::make_shared<FakeChannel>();
    channel->bodiesBeforeGone = c.bodiesBeforeGone;
    WsgiJob job;
    job.snapshot = makeSnapshot({});
    job.body = std::make_shared<MemoryBody>("", false, SIZE_MAX);
    job.channel = channel;
    t.app->run(job);
    EXPECT_EQ(channel->eventList(), c.events);
    EXPECT_EQ(evalAscii(t.module, "log"), c.log);
  }
}

TEST(WsgiBody, CloseErrorsAreLogged) {
  LoadedApp t = loadApp(R"(
class Body:
    def __iter__(self):
        return iter([b'ok'])
    def close(self):
        raise KeyError('in close')
def app(environ, start_response):
    start_response('200 OK', [])
    return Body()
)");
  LogCapture log;
  auto ch = run(*t.app);
  EXPECT_EQ(ch->body, "ok");
  EXPECT_EQ(ch->eventList(), "whole");  // an iterator over a list: one hand-off
  EXPECT_NE(log.text().find("KeyError: 'in close'"), std::string::npos) << log.text();
}

TEST(WsgiBody, IteratorOverAListIsOneHandOffWithItsLength) {
  // Django's HttpResponse iterates over a list of bytes: the items exist already, so the
  // response goes as a list would (head, body and end together, with Content-Length), and
  // close() runs after it.
  LoadedApp t = loadApp(R"(
log = []
class Body:
    def __iter__(self):
        return iter([b'ab', b'', b'cde'])
    def close(self):
        log.append('closed')
def app(environ, start_response):
    start_response('200 OK', [])
    return Body()
)");
  auto ch = run(*t.app);
  EXPECT_EQ(ch->eventList(), "whole");
  EXPECT_EQ(ch->body, "abcde");
  ASSERT_TRUE(ch->head);
  EXPECT_EQ(ch->head->contentLength, 5u);
  EXPECT_EQ(evalAscii(t.module, "log"), "['closed']");
}

TEST(WsgiBody, ResponseIsFinishedBeforeCloseAndWriteFromCloseIsRefused) {
  LoadedApp t = loadApp(R"(
log = []
class Body:
    def __init__(self, write):
        self.write = write
    def __iter__(self):
        yield b'x'
    def close(self):
        try:
            self.write(b'late')
        except RuntimeError as e:
            log.append(str(e))
def app(environ, start_response):
    write = start_response('200 OK', [])
    return Body(write)
)");
  auto ch = run(*t.app);
  EXPECT_EQ(ch->eventList(), "head,body,finish");
  EXPECT_EQ(ch->body, "x");
  EXPECT_EQ(evalAscii(t.module, "log"), "['write() called after the request finished']");
}

TEST(WsgiBody, ExceptionBeforeHeadIs500WithTracebackLogged) {
  LoadedApp t = loadApp(R"(
def helper():
    return 1 / 0
def app(environ, start_response):
    start_response('200 OK', [('X-App', '1')])
    helper()
)");
  LogCapture log;
  RequestSpec spec;
  spec.target = "/some/path?q=1";
  auto ch = run(*t.app, spec);
  EXPECT_EQ(ch->status(), 500);
  EXPECT_EQ(ch->header("X-App"), nullptr);
  EXPECT_EQ(ch->body, http::errorPageBody(500));
  EXPECT_EQ(ch->body.find("ZeroDivisionError"), std::string::npos);
  std::string text = log.text();
  EXPECT_NE(text.find("Error handling request GET /some/path?q=1"), std::string::npos) << text;
  EXPECT_NE(text.find("Traceback (most recent call last)"), std::string::npos) << text;
  EXPECT_NE(text.find("in helper"), std::string::npos) << text;
  EXPECT_NE(text.find("ZeroDivisionError: division by zero"), std::string::npos) << text;
}

TEST(WsgiBody, ExceptionAfterHeadAborts) {
  LoadedApp t = loadApp(R"(
def app(environ, start_response):
    write = start_response('200 OK', [])
    write(b'partial')
    raise RuntimeError('late failure')
)");
  LogCapture log;
  auto ch = run(*t.app);
  EXPECT_EQ(ch->eventList(), "head,body,abort");
  EXPECT_NE(log.text().find("RuntimeError: late failure"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// wsgi.file_wrapper

class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    char path[] = "/tmp/portico_wsgi_file_XXXXXX";
    int fd = ::mkstemp(path);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ::close(fd);
    path_ = path;
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string preadAll(const FileRange& range) {
  std::string out(range.length, '\0');
  ssize_t n = ::pread(range.file->get(), out.data(), out.size(), static_cast<off_t>(range.offset));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

TEST(WsgiFileWrapper, RegularFileGoesBySendfile) {
  std::string content;
  for (int i = 0; i < 1000; ++i) content += "0123456789";
  TempFile file(content);
  struct Case {
    const char* headers;
    int skip;
    uint64_t expectedLength;
  } cases[] = {
      {"[]", 0, 10000},
      {"[]", 10, 9990},
      {"[('Content-Length', '100')]", 10, 100},
      {"[('Content-Length', '20000')]", 0, 10000},
  };
  LoadedApp t = loadApp(R"(
PATH = None
HEADERS = None
SKIP = 0
opened = []
def app(environ, start_response):
    f = open(PATH, 'rb')
    opened.append(f)
    f.read(SKIP)
    start_response('200 OK', eval(HEADERS))
    return environ['wsgi.file_wrapper'](f, 4096)
)");
  PyObject* mod = PyDict_GetItemString(PyImport_GetModuleDict(), t.module.c_str());
  PyRef path = PyRef::steal(PyUnicode_FromString(file.path().c_str()));
  PyObject_SetAttrString(mod, "PATH", path.get());
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.headers) + " skip " + std::to_string(c.skip));
    PyRef headers = PyRef::steal(PyUnicode_FromString(c.headers));
    PyRef skip = PyRef::steal(PyLong_FromLong(c.skip));
    PyObject_SetAttrString(mod, "HEADERS", headers.get());
    PyObject_SetAttrString(mod, "SKIP", skip.get());
    auto ch = run(*t.app);
    ASSERT_EQ(ch->status(), 200);
    EXPECT_EQ(ch->eventList(), "head,body,finish");
    ASSERT_EQ(ch->chunks.size(), 1u);
    ASSERT_TRUE(ch->chunks[0].isFile());
    const FileRange& range = std::get<FileRange>(ch->chunks[0].data);
    EXPECT_EQ(range.offset, static_cast<uint64_t>(c.skip));
    EXPECT_EQ(range.length, c.expectedLength);
    EXPECT_EQ(preadAll(range), content.substr(c.skip, c.expectedLength));
    EXPECT_TRUE(ch->head->contentLength);
    // The wrapper's close() closed the app's file; our duplicate stays usable.
    EXPECT_EQ(evalAscii(t.module, "opened[-1].closed"), "True");
  }
}

TEST(WsgiFileWrapper, FileLikeWithoutFilenoIsIterated) {
  LoadedApp t = loadApp(R"(
import io
closed = []
class Tracked(io.BytesIO):
    def close(self):
        closed.append(True)
        super().close()
def app(environ, start_response):
    start_response('200 OK', [])
    return environ['wsgi.file_wrapper'](Tracked(b'abcdefghij'), 4)
)");
  auto ch = run(*t.app);
  EXPECT_EQ(ch->status(), 200);
  EXPECT_EQ(ch->body, "abcdefghij");
  EXPECT_EQ(ch->eventList(), "head,body,body,body,finish");
  EXPECT_EQ(evalAscii(t.module, "closed"), "[True]");
}

TEST(WsgiFileWrapper, PythonSideBehaviour) {
  LoadedApp t = loadApp(R"(
import io
def app(environ, start_response):
    FW = environ['wsgi.file_wrapper']
    w = FW(io.BytesIO(b'xyz'), blksize=2)
    out = [list(w), w.blksize]
    try:
        FW(io.BytesIO(b''), 0)
    except ValueError:
        out.append('ValueError')
    FW(object()).close()  # no close(): fine
    start_response('200 OK', [])
    return [ascii(out).encode()]
)");
  EXPECT_EQ(run(*t.app)->body, "[[b'xy', b'z'], 2, 'ValueError']");
}

// ---------------------------------------------------------------------------------------------
// Loading

TEST(WsgiLoad, Specs) {
  std::string module = defineModule(R"(
def application(environ, start_response):
    start_response('200 OK', [])
    return [b'default']
def factory():
    def made(environ, start_response):
        start_response('200 OK', [])
        return [b'factory']
    return made
class NS:
    class inner:
        @staticmethod
        def app(environ, start_response):
            start_response('200 OK', [])
            return [b'dotted']
)");
  struct Case {
    std::string spec;
    const char* body;
  } cases[] = {
      {module, "default"},
      {module + ":application", "default"},
      {module + ":factory()", "factory"},
      {module + ":NS.inner.app", "dotted"},
  };
  for (const Case& c : cases) {
    std::string error;
    auto app = WsgiApp::load(c.spec, {}, error);
    ASSERT_TRUE(app) << c.spec << ": " << error;
    EXPECT_EQ(run(*app)->body, c.body) << c.spec;
  }
}

TEST(WsgiLoad, Errors) {
  std::string module = defineModule(R"(
not_callable = 42
def bad_factory():
    raise RuntimeError('factory exploded')
def returns_none():
    return None
)");
  struct Case {
    std::string spec;
    std::string expected;
  } cases[] = {
      {"wsgitest_no_such_module:app", "ModuleNotFoundError: No module named 'wsgitest_no_such_module'"},
      {module + ":missing", "Failed to find attribute 'missing' in '" + module + "'."},
      {module + ":not_callable.x", "Failed to find attribute 'not_callable.x' in '" + module + "'."},
      {module + ":not_callable", "Application object must be callable."},
      {module + ":returns_none()", "Application object must be callable."},
      {module + ":bad_factory()", "RuntimeError: factory exploded"},
      {module + ":bad_factory(1)", "Failed to parse 'bad_factory(1)'"},
      {module + ":a b", "Failed to parse 'a b'"},
      {module + ":", "Failed to parse ''"},
      {"bad module:app", "Invalid application module name"},
      {"", "Invalid application module name"},
  };
  for (const Case& c : cases) {
    std::string error;
    auto app = WsgiApp::load(c.spec, {}, error);
    EXPECT_FALSE(app) << c.spec;
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.spec << " → " << error;
    EXPECT_FALSE(PyErr_Occurred());
  }
}

TEST(WsgiLoad, ImportErrorCarriesTheTraceback) {
  // A module on sys.path whose import fails inside its own code.
  char dir[] = "/tmp/portico_wsgi_mod_XXXXXX";
  ASSERT_TRUE(::mkdtemp(dir));
  std::string path = std::string(dir) + "/wsgitest_broken.py";
  {
    std::ofstream out(path);
    out << "import os\n\ndef helper():\n    raise ImportError('missing thing')\n\nhelper()\n";
  }
  PyObject* sysPath = PySys_GetObject("path");
  PyRef entry = PyRef::steal(PyUnicode_FromString(dir));
  PyList_Insert(sysPath, 0, entry.get());
  std::string error;
  auto app = WsgiApp::load("wsgitest_broken:app", {}, error);
  EXPECT_FALSE(app);
  EXPECT_NE(error.find("Traceback (most recent call last)"), std::string::npos) << error;
  EXPECT_NE(error.find("wsgitest_broken.py\", line 4, in helper"), std::string::npos) << error;
  EXPECT_NE(error.find("ImportError: missing thing"), std::string::npos) << error;
  PySequence_DelItem(sysPath, 0);
  ::unlink(path.c_str());
  ::rmdir(dir);
}

// ---------------------------------------------------------------------------------------------
// The standard library's WSGI validator finds nothing to complain about.

TEST(WsgiValidator, SimpleAppPasses) {
  LoadedApp t = loadApp(R"(
import sys, warnings
from wsgiref.validate import validator, WSGIWarning
problems = []
def simple(environ, start_response):
    length = int(environ.get('CONTENT_LENGTH') or 0)
    body = environ['wsgi.input'].read(length)
    line = environ['wsgi.input'].readline()
    environ['wsgi.errors'].write('validated\n')
    environ['wsgi.errors'].flush()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body) + 2))])
    return iter([b'ok', body])
inner = validator(simple)
def app(environ, start_response):
    old_hook = sys.unraisablehook
    sys.unraisablehook = lambda u: problems.append(repr(u.exc_value))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            result = inner(environ, start_response)
            data = list(result)
            result.close()
            del result
        problems.extend(str(w.message) for w in caught)
    except Exception as e:
        problems.append(repr(e))
        raise
    finally:
        sys.unraisablehook = old_hook
    return data
)");
  for (const char* method : {"GET", "POST"}) {
    RequestSpec spec;
    spec.method = method;
    spec.target = "/v?a=b";
    spec.headers = {{"Host", "localhost"}};
    if (std::string(method) == "POST") {
      spec.body = "payload";
      spec.headers.push_back({"Content-Type", "application/octet-stream"});
      spec.headers.push_back({"Content-Length", "7"});
    }
    auto ch = run(*t.app, spec);
    EXPECT_EQ(ch->status(), 200) << method;
    EXPECT_EQ(ch->body, std::string("ok") + spec.body) << method;
    EXPECT_EQ(evalAscii(t.module, "problems"), "[]") << method;
  }
}

TEST(WsgiValidator, ValidatorWrappedGeneratorPasses) {
  LoadedApp t = loadApp(R"(
import warnings
from wsgiref.validate import validator
problems = []
def gen_app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    yield b'a'
    yield b'b'
inner = validator(gen_app)
def app(environ, start_response):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        result = inner(environ, start_response)
        data = list(result)
        result.close()
    problems.extend(str(w.message) for w in caught)
    return data
)");
  auto ch = run(*t.app);
  EXPECT_EQ(ch->status(), 200);
  EXPECT_EQ(ch->body, "ab");
  EXPECT_EQ(evalAscii(t.module, "problems"), "[]");
}

TEST(WsgiValidator, ReturnedValidatorIteratorIsClosedByUs) {
  // The validator asserts that the server calls close(): return its iterator directly.
  LoadedApp t = loadApp(R"(
import sys
from wsgiref.validate import validator
problems = []
def simple(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'hello']
app_inner = validator(simple)
def hook(u):
    problems.append(repr(u.exc_value))
sys.unraisablehook = hook
def app(environ, start_response):
    return app_inner(environ, start_response)
)");
  auto ch = run(*t.app);
  EXPECT_EQ(ch->status(), 200);
  EXPECT_EQ(ch->body, "hello");
  EXPECT_EQ(evalAscii(t.module, "problems"), "[]");
  PyRun_SimpleString("import sys; sys.unraisablehook = sys.__unraisablehook__");
}

// ---------------------------------------------------------------------------------------------
// Reference leaks: thousands of requests through every path must not grow Python's heap.

TEST(WsgiLeaks, NoPythonMemoryGrowth) {
  TempFile file(std::string(5000, 'f'));
  LoadedApp t = loadApp(R"(
import io, sys
PATH = None
MODE = None
def app(environ, start_response):
    inp = environ['wsgi.input']
    if MODE == 'list':
        body = inp.read()
        start_response('200 OK', [('Content-Type', 'text/plain'), ('X-A', 'b')])
        return [b'hello ', body]
    if MODE == 'gen':
        def gen():
            start_response('200 OK', [])
            for line in inp:
                yield line
            yield b''
        return gen()
    if MODE == 'write':
        w = start_response('200 OK', [])
        w(b'abc')
        inp.readlines()
        return iter([b'd'])
    if MODE == 'error':
        environ['wsgi.errors'].write('x\n')
        start_response('200 OK', [])
        raise ValueError('nope')
    if MODE == 'late-error':
        start_response('200 OK', [])
        def gen():
            yield b'a'
            raise ValueError('late')
        return gen()
    if MODE == 'bad-header':
        start_response('200 OK', [('X', 'a\nb')])
    if MODE == 'excinfo':
        start_response('200 OK', [])
        try:
            1 / 0
        except ZeroDivisionError:
            start_response('500 E', [], sys.exc_info())
        return [b'e']
    if MODE == 'file':
        start_response('200 OK', [])
        return environ['wsgi.file_wrapper'](open(PATH, 'rb'))
    if MODE == 'bytesio':
        start_response('200 OK', [])
        return environ['wsgi.file_wrapper'](io.BytesIO(b'x' * 100), 7)
)");
  PyObject* mod = PyDict_GetItemString(PyImport_GetModuleDict(), t.module.c_str());
  PyRef path = PyRef::steal(PyUnicode_FromString(file.path().c_str()));
  PyObject_SetAttrString(mod, "PATH", path.get());
  std::string ignored;
  ErrorLog::instance().configure("/dev/null", LogLevel::kCritical, ignored);
  RequestSpec spec;
  spec.method = "POST";
  spec.body = "line one\nline two\n";
  spec.headers = {{"Host", "h:1"}, {"Content-Length", "18"}, {"X-Many", "a"}, {"X-Many", "b"},
                  {"Cookie", "c=1"}, {"Cookie", "d=2"}, {"Content-Type", "text/plain"}};
  for (const char* mode : {"list", "gen", "write", "error", "late-error", "bad-header", "excinfo",
                           "file", "bytesio"}) {
    SCOPED_TRACE(mode);
    PyRef m = PyRef::steal(PyUnicode_FromString(mode));
    PyObject_SetAttrString(mod, "MODE", m.get());
    for (int i = 0; i < 50; ++i) run(*t.app, spec);  // warm caches
    PyRun_SimpleString("import gc, tracemalloc; gc.collect(); tracemalloc.start()");
    PyRun_SimpleString("import tracemalloc; _before = tracemalloc.get_traced_memory()[0]");
    for (int i = 0; i < 3000; ++i) run(*t.app, spec);
    PyRun_SimpleString(
        "import gc, tracemalloc; gc.collect(); "
        "_growth = tracemalloc.get_traced_memory()[0] - _before; tracemalloc.stop()");
    PyObject* main = PyImport_AddModule("__main__");
    PyRef growth = PyRef::steal(PyObject_GetAttrString(main, "_growth"));
    ASSERT_TRUE(growth);
    // A leak of even one small object per request would show 3000 * 32+ bytes.
    EXPECT_LT(PyLong_AsLong(growth.get()), 20000) << mode;
  }
  std::string error;
  ErrorLog::instance().configure(gLogPath, LogLevel::kDebug, error);
}

// ---------------------------------------------------------------------------------------------
// Executor threads: several threads run requests at once, handing the GIL back and forth at
// every channel call; the shared caches and the callables must hold up.

TEST(WsgiThreads, ConcurrentRequests) {
  LoadedApp t = loadApp(R"(
def app(environ, start_response):
    n = environ['PATH_INFO'][1:]
    data = environ['wsgi.input'].read()
    if n.endswith('0'):
        start_response('200 OK', [('X-N', n)])
        return [data, n.encode()]
    write = start_response('200 OK', [('X-N', n)])
    write(data)
    def gen():
        yield n.encode()
    return gen()
)");
  constexpr int kThreads = 4;
  constexpr int kRequests = 300;
  std::atomic<int> failures{0};
  {
    GilRelease release;  // let the worker threads take the GIL
    std::vector<std::thread> threads;
    for (int k = 0; k < kThreads; ++k) {
      threads.emplace_back([&, k] {
        for (int i = 0; i < kRequests; ++i) {
          std::string n = std::to_string(k * 1000 + i);
          RequestSpec spec;
          spec.method = "POST";
          spec.target = "/" + n;
          spec.body = "body" + n + ":";
          spec.fileBacked = (i % 3 == 0);
          spec.headers = {{"Host", "host" + std::to_string(k) + ":80" + std::to_string(i % 7)},
                          {"X-Thread-" + std::to_string(k), n}};
          GilGuard gil;
          auto ch = run(*t.app, spec);
          const std::string* header = ch->header("X-N");
          if (ch->status() != 200 || !header || *header != n || ch->body != spec.body + n) {
            ++failures;
          }
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace portico::python
