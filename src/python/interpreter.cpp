#include "python/interpreter.h"

#include "python/py_ref.h"

namespace portico::python {

namespace {

// Runs a few lines of Python in __main__'s namespace; false (and the traceback) on error.
bool runSetup(const std::string& code, std::string& error) {
  PyObject* main = PyImport_AddModule("__main__");  // borrowed
  if (!main) {
    error = Interpreter::takeTraceback();
    return false;
  }
  PyObject* globals = PyModule_GetDict(main);  // borrowed
  PyRef result = PyRef::steal(PyRun_String(code.c_str(), Py_file_input, globals, globals));
  if (!result) {
    error = Interpreter::takeTraceback();
    return false;
  }
  return true;
}

PyRef toStrList(const std::vector<std::string>& items) {
  PyRef list = PyRef::steal(PyList_New(0));
  for (const auto& item : items) {
    PyRef s = PyRef::steal(PyUnicode_DecodeFSDefaultAndSize(item.data(),
                                                            static_cast<Py_ssize_t>(item.size())));
    if (!s) return PyRef();
    PyList_Append(list.get(), s.get());
  }
  return list;
}

}  // namespace

Interpreter::Interpreter(const InterpreterOptions& options) {
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  // Debian's layout: with /usr/bin/python3 as the program, sys.prefix is /usr and site adds
  // /usr/lib/python3/dist-packages (Django, psycopg2) — whatever python3 is first on PATH.
  PyStatus status = PyConfig_SetString(&config, &config.program_name, L"/usr/bin/python3");
  if (!PyStatus_Exception(status)) {
    config.install_signal_handlers = 0;  // signals belong to the server's signalfd
    config.parse_argv = 0;
    status = Py_InitializeFromConfig(&config);
  }
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    error_ = std::string("cannot start Python: ") + (status.err_msg ? status.err_msg : "unknown");
    return;
  }

  {
    // sys.path: --pythonpath entries first, then the app's directory (gunicorn puts the
    // working directory first so "myapp.wsgi" imports from it), then the virtualenv's
    // site-packages through site.addsitedir (which also runs its .pth files).
    std::vector<std::string> front = options.pythonPath;
    if (!options.appDirectory.empty()) front.push_back(options.appDirectory);
    PyRef paths = toStrList(front);
    PyRef venv = toStrList(options.virtualenv.empty() ? std::vector<std::string>{}
                                                      : std::vector<std::string>{options.virtualenv});
    PyObject* main = PyImport_AddModule("__main__");
    PyObject* globals = main ? PyModule_GetDict(main) : nullptr;
    if (!paths || !venv || !globals ||
        PyDict_SetItemString(globals, "_portico_paths", paths.get()) != 0 ||
        PyDict_SetItemString(globals, "_portico_venvs", venv.get()) != 0) {
      error_ = takeTraceback();
    } else if (!runSetup(
                   "import sys, site, glob, os\n"
                   "for _p in reversed(_portico_paths):\n"
                   "    if _p in sys.path: sys.path.remove(_p)\n"
                   "    sys.path.insert(0, _p)\n"
                   "for _v in _portico_venvs:\n"
                   "    _sp = glob.glob(os.path.join(_v, 'lib', 'python3*', 'site-packages'))\n"
                   "    if not _sp: raise RuntimeError('virtualenv %s has no lib/python3*/site-packages' % _v)\n"
                   "    for _d in _sp: site.addsitedir(_d)\n"
                   "    sys.prefix = _v\n"
                   "del _portico_paths, _portico_venvs\n",
                   error_)) {
      // error_ is set
    }
  }
  // The main thread lets go of the GIL; executor threads (and start-up code through GilGuard)
  // take it when they need it.
  mainState_ = PyEval_SaveThread();
}

Interpreter::~Interpreter() {
  if (!mainState_) return;
  PyEval_RestoreThread(static_cast<PyThreadState*>(mainState_));
  // Finalizing runs atexit hooks and frees modules; skipped when other threads may still be
  // inside Python (the executor joins its threads before this runs).
  Py_FinalizeEx();
}

std::string Interpreter::takeTraceback() {
  if (!PyErr_Occurred()) return "unknown Python error";
  PyObject* type = nullptr;
  PyObject* value = nullptr;
  PyObject* tb = nullptr;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  PyRef typeRef = PyRef::steal(type), valueRef = PyRef::steal(value), tbRef = PyRef::steal(tb);
  if (tb && value) PyException_SetTraceback(value, tb);
  std::string text;
  PyRef module = PyRef::steal(PyImport_ImportModule("traceback"));
  PyRef lines;
  if (module) {
    lines = PyRef::steal(PyObject_CallMethod(module.get(), "format_exception", "OOO",
                                             type ? type : Py_None, value ? value : Py_None,
                                             tb ? tb : Py_None));
  }
  if (lines && PyList_Check(lines.get())) {
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(lines.get()); ++i) {
      const char* s = PyUnicode_AsUTF8(PyList_GET_ITEM(lines.get(), i));
      if (s) text += s;
    }
  } else {
    PyErr_Clear();
    PyRef str = PyRef::steal(value ? PyObject_Str(value) : nullptr);
    const char* s = str ? PyUnicode_AsUTF8(str.get()) : nullptr;
    text = s ? s : "unprintable Python error";
  }
  PyErr_Clear();
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

}  // namespace portico::python
