#include "python/gunicorn_conf.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <utility>

#include "core/child_output.h"
#include "python/interpreter.h"
#include "python/py_ref.h"

namespace portico::python {
namespace {

// Runs in the child. The table says how each gunicorn setting (gunicorn 20.1's names) becomes
// a flag; the settings portico cannot honour are refused unless left at gunicorn's default.
// The result is "OK\n" then "LINE LENGTH\nWORD" records, or "ERROR\n" and the message.
constexpr const char* kReader = R"PY(
import ast, importlib, os, sys

FLAGS = {
    "bind": ("--bind", "list"), "backlog": ("--backlog", "int"),
    "workers": ("--workers", "int"), "worker_class": ("--worker-class", "str"),
    "threads": ("--threads", "int"), "worker_connections": ("--worker-connections", "int"),
    "max_requests": ("--max-requests", "int"), "max_requests_jitter": ("--max-requests-jitter", "int"),
    "timeout": ("--timeout", "num"), "graceful_timeout": ("--graceful-timeout", "num"),
    "keepalive": ("--keep-alive", "num"),
    "limit_request_line": ("--limit-request-line", "int"),
    "limit_request_fields": ("--limit-request-fields", "int"),
    "limit_request_field_size": ("--limit-request-field_size", "int"),
    "preload_app": ("--preload", "bool"), "chdir": ("--chdir", "str"),
    "raw_env": ("--env", "list"), "pidfile": ("--pid", "str"),
    "accesslog": ("--access-logfile", "str"), "access_log_format": ("--access-logformat", "str"),
    "errorlog": ("--error-logfile", "str"), "loglevel": ("--log-level", "str"),
    "pythonpath": ("--pythonpath", "str"),
    "forwarded_allow_ips": ("--forwarded-allow-ips", "csv"),
    "proxy_protocol": ("--proxy-protocol", "bool"), "proxy_allow_ips": ("--proxy-allow-from", "csv"),
    "keyfile": ("--keyfile", "str"), "certfile": ("--certfile", "str"),
    "ssl_version": ("--ssl-version", "str"), "cert_reqs": ("--cert-reqs", "int"),
    "ca_certs": ("--ca-certs", "str"), "ciphers": ("--ciphers", "str"),
    "suppress_ragged_eofs": ("--suppress-ragged-eofs", "bool"),
    "do_handshake_on_connect": ("--do-handshake-on-connect", "bool"),
    "check_config": ("--check-config", "bool"), "print_config": ("--print-config", "bool"),
    "wsgi_app": (None, "app"),
    "daemon": ("--daemon", "bool"), "umask": ("--umask", "int"),
    "user": ("--user", "str"), "group": ("--group", "str"), "initgroups": ("--initgroups", "bool"),
    "capture_output": ("--capture-output", "bool"),
    "enable_stdio_inheritance": ("--enable-stdio-inheritance", "bool"),
    "proc_name": ("--name", "str"), "worker_tmp_dir": ("--worker-tmp-dir", "str"),
    "statsd_host": ("--statsd-host", "str"), "statsd_prefix": ("--statsd-prefix", "str"),
    "dogstatsd_tags": ("--dogstatsd-tags", "str"),
    "reload": ("--reload", "bool"), "reload_engine": ("--reload-engine", "str"),
    "reload_extra_files": ("--reload-extra-file", "list"),
}
HOOKS = ("on_starting", "on_reload", "when_ready", "pre_fork", "post_fork", "post_worker_init",
         "worker_int", "worker_abort", "pre_exec", "pre_request", "post_request", "child_exit",
         "worker_exit", "nworkers_changed", "on_exit", "ssl_context")
SECURE = {"X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"}
# gunicorn's settings portico does not honour yet, with gunicorn's default (kept: accepted).
UNSUPPORTED = {
    "spew": False, "sendfile": None, "reuse_port": False,
    "tmp_upload_dir": None, "secure_scheme_headers": SECURE,
    "forwarder_headers": "SCRIPT_NAME,PATH_INFO",
    "logger_class": "gunicorn.glogging.Logger", "logconfig": None, "logconfig_dict": {},
    "syslog_addr": "udp://localhost:514", "syslog": False, "syslog_prefix": None,
    "syslog_facility": "user", "disable_redirect_access_to_syslog": False,
    "paste": None, "raw_paste_global_conf": [],
    "strip_header_spaces": False,
}

def lines_of(path):
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return {}
    found = {}
    for node in tree.body:
        names = []
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [(a.asname or a.name).split(".")[0] for a in node.names]
        for name in names:
            found[name] = node.lineno
    return found

def load(source, shown):
    if source.startswith("python:"):
        module = importlib.import_module(source[len("python:"):])
        return vars(module), getattr(module, "__file__", None) or source
    path = os.path.abspath(source)
    if not os.path.exists(path):
        raise FileNotFoundError("the configuration file %s does not exist" % shown)
    namespace = {"__file__": path, "__name__": "__config__"}
    with open(path, "rb") as f:
        code = compile(f.read(), path, "exec")
    exec(code, namespace)
    return namespace, path

def same_account(name, value):
    # user/group as a name or a number, equal to who runs portico (gunicorn's default).
    import grp, pwd
    try:
        if isinstance(value, str) and not value.isdigit():
            value = (pwd.getpwnam(value).pw_uid if name == "user" else grp.getgrnam(value).gr_gid)
        return int(value) == (os.geteuid() if name == "user" else os.getegid())
    except (KeyError, ValueError, TypeError):
        return False

def words(namespace, path, shown):
    lines = lines_of(path) if os.path.exists(str(path)) else {}
    where = lambda name: "%s:%d" % (shown, lines[name]) if name in lines else shown
    out, refused = [], []
    for name, value in namespace.items():
        if name.startswith("__"):
            continue
        line = lines.get(name, 0)
        if name in HOOKS:
            if callable(value):
                refused.append("%s: %r is a gunicorn server hook; portico does not run server "
                               "hooks yet (remove it, or do its work in the app's module)"
                               % (where(name), name))
            continue
        if name in ("user", "group") and same_account(name, value):
            continue  # gunicorn's default: who runs it
        if name in UNSUPPORTED:
            if value != UNSUPPORTED[name] and value is not None:
                refused.append("%s: the setting %r is not supported by portico yet (%s = %r)"
                               % (where(name), name, name, value))
            continue
        if name not in FLAGS or value is None:
            continue  # not a setting: gunicorn ignores it too
        flag, kind = FLAGS[name]
        if kind == "bool":
            if not isinstance(value, bool):
                refused.append("%s: %s must be True or False, not %r" % (where(name), name, value))
            elif value:
                out.append((line, flag))
        elif kind == "list":
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)):
                refused.append("%s: %s must be a string or a list of strings, not %r"
                               % (where(name), name, value))
                continue
            out.extend((line, "%s=%s" % (flag, item)) for item in items)
        elif kind == "csv":
            text = ",".join(value) if isinstance(value, (list, tuple)) else str(value)
            out.append((line, "%s=%s" % (flag, text)))
        elif kind == "app":
            out.append((line, str(value)))
        else:
            out.append((line, "%s=%s" % (flag, value)))
    return out, refused

def portico_read(source, shown):
    try:
        namespace, path = load(source, shown)
    except FileNotFoundError as error:
        if source.startswith("python:"):
            raise
        return b"ERROR\n" + str(error).encode()
    except BaseException as error:
        import traceback
        # The file's frames only, not this reader's.
        tb = error.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
            tb = tb.tb_next
        text = "".join(traceback.format_exception(type(error), error, tb))
        return b"ERROR\nFailed to read the configuration file %s:\n%s" % (
            shown.encode(), text.encode())
    out, refused = words(namespace, path, shown)
    if refused:
        return b"ERROR\n" + "\n".join(refused).encode()
    payload = [b"OK\n"]
    for line, word in out:
        data = word.encode("utf-8", "surrogateescape")
        payload.append(b"%d %d\n%s" % (line, len(data), data))
    return b"".join(payload)
)PY";

// The reader's answer; the calling thread holds the GIL. Its names live in a dictionary of
// their own (a preloaded app's __main__ is left alone).
std::string runReader(const std::string& source, const std::string& shown) {
  PyRef globals = PyRef::steal(PyDict_New());
  if (!globals || PyDict_SetItemString(globals.get(), "__builtins__", PyEval_GetBuiltins()) != 0) {
    return "ERROR\n" + Interpreter::takeTraceback();
  }
  PyRef ran = PyRef::steal(PyRun_String(kReader, Py_file_input, globals.get(), globals.get()));
  PyObject* read = ran ? PyDict_GetItemString(globals.get(), "portico_read") : nullptr;  // borrowed
  PyRef result = read ? PyRef::steal(PyObject_CallFunction(read, "ss", source.c_str(), shown.c_str())) : PyRef();
  char* data = nullptr;
  Py_ssize_t size = 0;
  if (!result || PyBytes_AsStringAndSize(result.get(), &data, &size) != 0) {
    return "ERROR\n" + Interpreter::takeTraceback();
  }
  return std::string(data, static_cast<size_t>(size));
}

// The child: an interpreter of its own, the reader, its answer on `fd`. Never returns.
[[noreturn]] void readInChild(const std::string& source, const std::string& shown, int fd) {
  std::string answer;
  InterpreterOptions options;
  std::error_code ec;
  options.appDirectory = std::filesystem::current_path(ec).string();
  auto* interpreter = new Interpreter(options);  // never finalized: the child _exits
  if (!interpreter->ok()) {
    answer = "ERROR\n" + interpreter->error();
  } else {
    GilGuard gil;
    answer = runReader(source, shown);
  }
  writeAll(fd, answer);
  std::fflush(nullptr);
  ::_exit(0);
}

bool parseAnswer(const std::string& answer, std::vector<config::ConfigWord>& words, std::string& error) {
  if (answer.starts_with("ERROR\n")) {
    error = answer.substr(6);
    while (!error.empty() && error.back() == '\n') error.pop_back();
    return false;
  }
  if (!answer.starts_with("OK\n")) {
    error = "the configuration reader gave no answer";
    return false;
  }
  for (size_t at = 3; at < answer.size();) {
    size_t eol = answer.find('\n', at);
    int line = 0;
    size_t length = 0;
    if (eol == std::string::npos ||
        std::sscanf(answer.substr(at, eol - at).c_str(), "%d %zu", &line, &length) != 2 ||
        eol + 1 + length > answer.size()) {
      error = "the configuration reader's answer is malformed";
      return false;
    }
    words.push_back({answer.substr(eol + 1, length), line});
    at = eol + 1 + length;
  }
  return true;
}

}  // namespace

bool readGunicornConfig(const std::string& source, const std::string& shown,
                        std::vector<config::ConfigWord>& words, std::string& error) {
  std::string answer;
  if (Py_IsInitialized()) {
    // A master that preloaded the app (a reload): its interpreter reads the file. A forked
    // child could not start one of its own over it.
    GilGuard gil;
    answer = runReader(source, shown);
  } else {
    ChildOutput child = runInChild([&](int fd) { readInChild(source, shown, fd); });
    if (!child.exitedZero()) {
      error = "reading " + shown + " failed: " + child.howItEnded();
      return false;
    }
    answer = std::move(child.output);
  }
  words.clear();
  return parseAnswer(answer, words, error);
}

}  // namespace portico::python
