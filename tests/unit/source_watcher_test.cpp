#include "python/source_watcher.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace portico::python {
namespace {

TEST(ReloadEngineTest, GunicornsNames) {
  EXPECT_EQ(parseReloadEngine("auto"), ReloadEngine::kAuto);
  EXPECT_EQ(parseReloadEngine("inotify"), ReloadEngine::kInotify);
  EXPECT_EQ(parseReloadEngine("poll"), ReloadEngine::kPoll);
  EXPECT_FALSE(parseReloadEngine("bogus"));
  EXPECT_FALSE(parseReloadEngine(""));
  EXPECT_FALSE(parseReloadEngine("Poll"));
}

TEST(SourceFileOfTest, CompiledFilesAreWatchedByTheirSource) {
  EXPECT_EQ(sourceFileOf("/srv/app/views.py", "/x"), "/srv/app/views.py");
  EXPECT_EQ(sourceFileOf("/srv/app/views.pyc", "/x"), "/srv/app/views.py");
  EXPECT_EQ(sourceFileOf("/srv/app/views.pyo", "/x"), "/srv/app/views.py");
  EXPECT_EQ(sourceFileOf("/usr/lib/x/_speedups.cpython-311-x86_64-linux-gnu.so", "/x"),
            "/usr/lib/x/_speedups.cpython-311-x86_64-linux-gnu.so");
  // A relative __file__ (a module found through a relative sys.path entry) is the worker's.
  EXPECT_EQ(sourceFileOf("app.py", "/srv/site"), "/srv/site/app.py");
  EXPECT_EQ(sourceFileOf("./pkg/../app.py", "/srv/site"), "/srv/site/app.py");
}

TEST(WatchedFilesTest, FilesAreWatchedThroughTheirDirectories) {
  WatchedFiles files;
  EXPECT_TRUE(files.add("/srv/app/views.py"));
  EXPECT_FALSE(files.add("/srv/app/views.py"));
  EXPECT_TRUE(files.add("/srv/app/urls.py"));
  EXPECT_TRUE(files.add("/srv/conf/site.ini"));
  EXPECT_TRUE(files.add("/top.py"));
  EXPECT_FALSE(files.add("relative.py"));  // never relative: sourceFileOf made it absolute
  EXPECT_FALSE(files.add(""));
  EXPECT_EQ(files.files().size(), 4u);
  std::vector<std::string> directories = files.unwatchedDirectories();
  std::sort(directories.begin(), directories.end());
  EXPECT_EQ(directories, (std::vector<std::string>{"/", "/srv/app", "/srv/conf"}));

  files.setWatch("/srv/app", 1);
  files.setWatch("/srv/conf", -1);  // could not be watched: not asked again
  files.setWatch("/", 3);
  EXPECT_TRUE(files.unwatchedDirectories().empty());
  // A new file in a watched directory needs no new watch.
  EXPECT_TRUE(files.add("/srv/app/models.py"));
  EXPECT_TRUE(files.unwatchedDirectories().empty());
  EXPECT_TRUE(files.add("/srv/lib/util.py"));
  EXPECT_EQ(files.unwatchedDirectories(), (std::vector<std::string>{"/srv/lib"}));

  ASSERT_NE(files.match(1, "views.py"), nullptr);
  EXPECT_EQ(*files.match(1, "views.py"), "/srv/app/views.py");
  EXPECT_EQ(*files.match(1, "models.py"), "/srv/app/models.py");
  EXPECT_EQ(*files.match(3, "top.py"), "/top.py");
  // Other entries of a watched directory (a log, the app's SQLite file, __pycache__) are not.
  EXPECT_EQ(files.match(1, "db.sqlite3"), nullptr);
  EXPECT_EQ(files.match(1, "__pycache__"), nullptr);
  EXPECT_EQ(files.match(7, "views.py"), nullptr);
  // The directory itself deleted or moved.
  ASSERT_NE(files.match(1, ""), nullptr);
  EXPECT_EQ(*files.match(1, ""), "/srv/app");
}

TEST(WatchedFilesTest, DirectoryOf) {
  EXPECT_EQ(WatchedFiles::directoryOf("/a/b/c.py"), "/a/b");
  EXPECT_EQ(WatchedFiles::directoryOf("/c.py"), "/");
}

// A temporary directory removed at the end.
struct TempDir {
  TempDir() {
    char pattern[] = "/tmp/portico-watch-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

// What the watcher reported, waited for from the test's thread.
struct Reports {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> files;

  int refuse = 0;  // reports answered "not taken" (the watch goes on), before one is taken

  std::function<bool(const std::string&)> sink() {
    return [this](const std::string& file) {
      std::lock_guard<std::mutex> lock(mutex);
      files.push_back(file);
      changed.notify_all();
      return static_cast<int>(files.size()) > refuse;
    };
  }
  bool waitFor(int ms, size_t count = 1) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, std::chrono::milliseconds(ms),
                            [this, count] { return files.size() >= count; });
  }
};

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

// No interpreter runs in this test: the watcher sees only its extra files.
TEST(SourceWatcherTest, InotifyReportsAnExtraFileWrittenAndIgnoresItsNeighbours) {
  TempDir dir;
  std::string watched = dir.path + "/settings.ini";
  writeFile(watched, "a = 1\n");
  Reports reports;
  SourceWatcher watcher(ReloadEngine::kInotify, {watched}, reports.sink());
  std::string error;
  ASSERT_TRUE(watcher.start(error)) << error;
  writeFile(dir.path + "/other.log", "noise\n");
  EXPECT_FALSE(reports.waitFor(400));
  writeFile(watched, "a = 2\n");
  ASSERT_TRUE(reports.waitFor(10000));
  EXPECT_EQ(reports.files, (std::vector<std::string>{watched}));
}

TEST(SourceWatcherTest, AutoReportsAChange) {
  TempDir dir;
  std::string watched = dir.path + "/wsgi.py";
  writeFile(watched, "x = 1\n");
  Reports reports;
  SourceWatcher watcher(ReloadEngine::kAuto, {watched}, reports.sink());
  std::string error;
  ASSERT_TRUE(watcher.start(error)) << error;
  writeFile(watched, "x = 2\n");
  ASSERT_TRUE(reports.waitFor(10000));
  EXPECT_EQ(reports.files, (std::vector<std::string>{watched}));
}

TEST(SourceWatcherTest, InotifySeesAFileReplacedByARename) {
  TempDir dir;
  std::string watched = dir.path + "/app.py";
  writeFile(watched, "x = 1\n");
  Reports reports;
  SourceWatcher watcher(ReloadEngine::kInotify, {watched}, reports.sink());
  std::string error;
  ASSERT_TRUE(watcher.start(error)) << error;
  writeFile(dir.path + "/.app.py.swp", "x = 2\n");
  std::filesystem::rename(dir.path + "/.app.py.swp", watched);
  ASSERT_TRUE(reports.waitFor(10000));
  EXPECT_EQ(reports.files.front(), watched);
}

TEST(SourceWatcherTest, PollReportsAChangedMtimeOnce) {
  TempDir dir;
  std::string watched = dir.path + "/urls.py";
  writeFile(watched, "x = 1\n");
  Reports reports;
  SourceWatcher watcher(ReloadEngine::kPoll, {watched, dir.path + "/missing.py"}, reports.sink());
  std::string error;
  ASSERT_TRUE(watcher.start(error)) << error;
  EXPECT_FALSE(reports.waitFor(1300));  // a whole poll round without a change
  struct timespec times[2] = {{0, UTIME_OMIT}, {1234567890, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, watched.c_str(), times, 0), 0);
  ASSERT_TRUE(reports.waitFor(10000));
  EXPECT_EQ(reports.files, (std::vector<std::string>{watched}));
}

TEST(SourceWatcherTest, AFileChangedWhileTheAppWasImportedIsReportedAtOnce) {
  TempDir dir;
  std::string early = dir.path + "/settings.py";
  std::string edited = dir.path + "/views.py";
  std::string future = dir.path + "/skewed.py";
  writeFile(early, "");
  writeFile(edited, "");
  writeFile(future, "");
  auto setMtime = [](const std::string& path, int64_t ns) {
    struct timespec times[2] = {{0, UTIME_OMIT}, {ns / 1000000000, ns % 1000000000}};
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  };
  int64_t booted = SourceWatcher::wallClockNs() - 5000000000;  // the import began 5 s ago
  setMtime(early, booted - 60000000000);                        // before it: imported as is
  setMtime(future, SourceWatcher::wallClockNs() + 3600000000000);  // an hour ahead: skew
  {
    Reports reports;
    SourceWatcher watcher(ReloadEngine::kPoll, {early, future}, reports.sink());
    std::string error;
    ASSERT_TRUE(watcher.start(error, booted)) << error;
    EXPECT_FALSE(reports.waitFor(300));
  }
  setMtime(edited, booted + 2000000000);  // saved during the import
  Reports reports;
  SourceWatcher watcher(ReloadEngine::kInotify, {early, future, edited}, reports.sink());
  std::string error;
  ASSERT_TRUE(watcher.start(error, booted)) << error;
  ASSERT_TRUE(reports.waitFor(5000));
  EXPECT_EQ(reports.files, (std::vector<std::string>{edited}));
}

TEST(SourceWatcherTest, StopsAtOnceWithoutAChange) {
  TempDir dir;
  std::string watched = dir.path + "/a.py";
  writeFile(watched, "");
  Reports reports;
  auto started = std::chrono::steady_clock::now();
  {
    SourceWatcher watcher(ReloadEngine::kInotify, {watched}, reports.sink());
    std::string error;
    ASSERT_TRUE(watcher.start(error)) << error;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
  EXPECT_TRUE(reports.files.empty());
}

TEST(SourceWatcherTest, AChangeNotTakenKeepsTheWatchGoing) {
  // --reload's syntax-error rule: the worker refuses a change that does not compile and keeps
  // watching; the fix is the next report (both engines).
  for (ReloadEngine engine : {ReloadEngine::kInotify, ReloadEngine::kPoll}) {
    TempDir dir;
    std::string watched = dir.path + "/views.py";
    writeFile(watched, "x = 1\n");
    Reports reports;
    reports.refuse = 1;
    SourceWatcher watcher(engine, {watched}, reports.sink());
    std::string error;
    ASSERT_TRUE(watcher.start(error)) << error;
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a new mtime second
    writeFile(watched, "x = (\n");
    ASSERT_TRUE(reports.waitFor(10000, 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    writeFile(watched, "x = 2\n");
    ASSERT_TRUE(reports.waitFor(10000, 2));
    EXPECT_EQ(reports.files, (std::vector<std::string>{watched, watched}));
  }
}

TEST(SourceWatcherTest, SyntaxErrorOfNeedsNoInterpreterForOtherFiles) {
  // Without Python (this test binary) or for a file that is no .py, nothing is said.
  EXPECT_EQ(syntaxErrorOf("/nonexistent/settings.ini"), "");
}

}  // namespace
}  // namespace portico::python
