#include "config/conf_loader.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace portico::config {
namespace {

namespace fs = std::filesystem;

// A temporary directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    char templ[] = "/tmp/portico-conf-XXXXXX";
    path_ = ::mkdtemp(templ);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string path() const { return path_; }
  std::string write(const std::string& relative, const std::string& text) const {
    fs::path p = fs::path(path_) / relative;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }

 private:
  std::string path_;
};

TEST(ConfLoader, ReadsAndRecordsFilesOnce) {
  TempDir dir;
  std::string a = dir.write("a.conf", "events {}\n");
  ConfLoader loader;
  std::string text, error;
  ASSERT_TRUE(loader.readFile(a, text, error)) << error;
  EXPECT_EQ(text, "events {}\n");
  ASSERT_TRUE(loader.readFile(a, text, error));
  ASSERT_EQ(loader.files().size(), 1u);
  EXPECT_EQ(loader.files()[0].path, a);
  EXPECT_EQ(loader.files()[0].text, "events {}\n");
}

TEST(ConfLoader, MissingFileAndDirectoryMessages) {
  TempDir dir;
  ConfLoader loader;
  std::string text, error;
  EXPECT_FALSE(loader.readFile(dir.path() + "/nope.conf", text, error));
  EXPECT_EQ(error, "open() \"" + dir.path() + "/nope.conf\" failed (2: No such file or directory)");
  bool readFailed = false;
  EXPECT_FALSE(loader.readFile(dir.path(), text, error, &readFailed));
  EXPECT_EQ(error, "pread() \"" + dir.path() + "\" failed (21: Is a directory)");
  EXPECT_TRUE(readFailed);
  EXPECT_TRUE(loader.files().empty());
}

TEST(ConfLoader, IncludeResolvesAgainstTheConfPrefix) {
  TempDir dir;
  ConfLoader loader;
  std::vector<std::string> paths;
  std::string error;
  ASSERT_TRUE(loader.expandInclude("mime.types", dir.path() + "/", paths, error));
  EXPECT_EQ(paths, std::vector<std::string>{dir.path() + "/mime.types"});
  ASSERT_TRUE(loader.expandInclude("/etc/x.conf", dir.path() + "/", paths, error));
  EXPECT_EQ(paths, std::vector<std::string>{"/etc/x.conf"});  // not checked until read
}

TEST(ConfLoader, GlobsAreSortedAndMayMatchNothing) {
  TempDir dir;
  dir.write("sites/b.conf", "");
  dir.write("sites/a.conf", "");
  dir.write("sites/c.txt", "");
  dir.write("sites/.hidden.conf", "");
  ConfLoader loader;
  std::vector<std::string> paths;
  std::string error;
  ASSERT_TRUE(loader.expandInclude("sites/*.conf", dir.path() + "/", paths, error)) << error;
  EXPECT_EQ(paths, (std::vector<std::string>{dir.path() + "/sites/a.conf",
                                             dir.path() + "/sites/b.conf"}));
  ASSERT_TRUE(loader.expandInclude("none/*.conf", dir.path() + "/", paths, error));
  EXPECT_TRUE(paths.empty());
  ASSERT_TRUE(loader.expandInclude("sites/[ab].conf", dir.path() + "/", paths, error));
  EXPECT_EQ(paths.size(), 2u);
}

TEST(ConfLoader, MemoryFilesForTests) {
  ConfLoader loader;
  loader.addMemoryFile("/c/site.conf", "x;");
  loader.addMemoryFile("/c/conf.d/b.conf", "b;");
  loader.addMemoryFile("/c/conf.d/a.conf", "a;");
  std::vector<std::string> paths;
  std::string error, text;
  ASSERT_TRUE(loader.expandInclude("conf.d/*.conf", "/c/", paths, error));
  EXPECT_EQ(paths, (std::vector<std::string>{"/c/conf.d/a.conf", "/c/conf.d/b.conf"}));
  EXPECT_TRUE(loader.readFile("/c/site.conf", text, error));
  EXPECT_FALSE(loader.readFile("/c/other.conf", text, error));
  EXPECT_EQ(error, "open() \"/c/other.conf\" failed (2: No such file or directory)");
}

}  // namespace
}  // namespace portico::config
