#include "http/mime_types.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace portico::http {
namespace {

// conf/mime.types of the source tree, found relative to this file.
std::string confMimeTypes() {
  return (std::filesystem::path(__FILE__).parent_path() / "../../conf/mime.types").string();
}

TEST(MimeTypesTest, BuiltinLookups) {
  const MimeTypes& m = MimeTypes::builtin();
  struct Case {
    const char* path;
    const char* type;
  } cases[] = {
      {"index.html", "text/html"},
      {"/static/a/b/page.htm", "text/html"},
      {"site.css", "text/css"},
      {"app.js", "application/javascript"},
      {"data.json", "application/json"},
      {"logo.svg", "image/svg+xml"},
      {"logo.svgz", "image/svg+xml"},
      {"photo.JPG", "image/jpeg"},        // case-insensitive, as nginx
      {"photo.JpEg", "image/jpeg"},
      {"font.woff2", "font/woff2"},
      {"notes.txt", "text/plain"},        // no charset added, as nginx
      {"module.wasm", "application/wasm"},
      {"doc.docx",
       "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
      {"movie.mp4", "video/mp4"},
      {"a.tar.gz", "application/octet-stream"},  // nginx has no gz type
      {"archive.zip", "application/zip"},
      {"icon.ico", "image/x-icon"},
      {"Makefile", "application/octet-stream"},
      {".bashrc", "application/octet-stream"},   // a leading dot is no extension
      {"dir/.html", "application/octet-stream"},
      {"file.", "application/octet-stream"},
      {"dir.css/file", "application/octet-stream"},  // only the last segment counts
      {"", "application/octet-stream"},
      {"x.averyveryveryveryveryveryverylongextensionthatisnotknown", "application/octet-stream"},
  };
  for (const Case& c : cases) EXPECT_EQ(m.lookup(c.path), c.type) << c.path;
}

TEST(MimeTypesTest, BuiltinMatchesShippedConfFile) {
  MimeTypes loaded;
  std::string error;
  ASSERT_TRUE(loaded.loadFile(confMimeTypes(), error)) << error;
  EXPECT_EQ(loaded.size(), MimeTypes::builtin().size());
  EXPECT_EQ(loaded.size(), 110u);  // nginx 1.22's table
  // Every extension in the file resolves identically through the builtin table.
  std::ifstream in(confMimeTypes());
  std::string word;
  std::string type;
  bool inside = false;
  while (in >> word) {
    if (word == "{") {
      inside = true;
      continue;
    }
    if (!inside || word == "}") continue;
    bool last = word.back() == ';';
    if (last) word.pop_back();
    if (type.empty()) {
      type = word;
    } else {
      EXPECT_EQ(MimeTypes::builtin().lookup("f." + word), type) << word;
      EXPECT_EQ(loaded.lookup("f." + word), type) << word;
    }
    if (last) type.clear();
  }
}

TEST(MimeTypesTest, EmptyTableAndDefaultType) {
  MimeTypes m;
  EXPECT_EQ(m.lookup("a.html"), "application/octet-stream");
  m.setDefaultType("text/plain");
  EXPECT_EQ(m.lookup("a.html"), "text/plain");
  m.add("text/html", "HTML");
  EXPECT_EQ(m.lookup("a.html"), "text/html");
  m.add("application/xhtml+xml", "html");  // a later mapping replaces, as nginx
  EXPECT_EQ(m.lookup("a.Html"), "application/xhtml+xml");
}

TEST(MimeTypesTest, LoadStringParsesNginxSyntax) {
  MimeTypes m;
  std::string error;
  ASSERT_TRUE(m.loadString(
      "# comment\n"
      "types {\n"
      "  text/html html htm; # trailing comment\n"
      "  \"application/x-thing\" 'thing' THG;\n"
      "  image/png png;image/gif gif;\n"
      "}\n"
      "types { text/css css; }\n",
      "inline", error))
      << error;
  EXPECT_EQ(m.size(), 7u);
  EXPECT_EQ(m.lookup("x.htm"), "text/html");
  EXPECT_EQ(m.lookup("x.thing"), "application/x-thing");
  EXPECT_EQ(m.lookup("x.thg"), "application/x-thing");
  EXPECT_EQ(m.lookup("x.gif"), "image/gif");
  EXPECT_EQ(m.lookup("x.css"), "text/css");
}

TEST(MimeTypesTest, LoadStringErrorsNameFileAndLineAndKeepTable) {
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"", "f:1: no \"types\" block found"},
      {"# only a comment\n", "f:1: no \"types\" block found"},
      {"typo {\n}", "f:1: unknown directive \"typo\", expecting \"types\""},
      {"types\n text/html html;", "f:2: expecting \"{\" after \"types\", got \"text/html\""},
      {"types {\n text/html html;\n", "f:3: unexpected end of file, expecting \"}\""},
      {"types {\n\n text/html;\n}", "f:3: type \"text/html\" lists no extensions"},
      {"types {\n text/html html\n}", "f:3: unexpected \"}\", expecting \";\""},
      {"types {\n text/html { html; }\n}", "f:2: unexpected \"{\", expecting \";\""},
      {"types {\n ; \n}", "f:2: unexpected \";\""},
      {"types {\n text/html \"html;\n}", "f:2: unterminated quoted string"},
      {"types {\n text/html \"ht\"ml;\n}", "f:2: unexpected \"m\" after quoted string"},
      {"types {\n text/html a/b;\n}", "f:2: invalid extension \"a/b\""},
      {"}", "f:1: unexpected \"}\""},
  };
  for (const Case& c : cases) {
    MimeTypes m;
    m.add("text/css", "css");
    std::string error;
    EXPECT_FALSE(m.loadString(c.text, "f", error)) << c.text;
    EXPECT_EQ(error, c.error) << c.text;
    EXPECT_EQ(m.size(), 1u);
    EXPECT_EQ(m.lookup("a.css"), "text/css");
  }
}

TEST(MimeTypesTest, LoadFileMissing) {
  MimeTypes m;
  std::string error;
  EXPECT_FALSE(m.loadFile("/nonexistent/portico/mime.types", error));
  EXPECT_NE(error.find("/nonexistent/portico/mime.types"), std::string::npos) << error;
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;
}

TEST(MimeTypesTest, LoadFileReplacesTable) {
  std::string path = testing::TempDir() + "/portico_mime_test.types";
  {
    std::ofstream out(path);
    out << "types {\n  text/x-custom custom;\n}\n";
  }
  MimeTypes m;
  m.add("text/css", "css");
  std::string error;
  ASSERT_TRUE(m.loadFile(path, error)) << error;
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.lookup("a.custom"), "text/x-custom");
  EXPECT_EQ(m.lookup("a.css"), "application/octet-stream");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace portico::http
