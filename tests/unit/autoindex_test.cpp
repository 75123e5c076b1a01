// ngx_http_autoindex_module's output, byte for byte (the integration test compares whole
// listings with Debian's nginx; these pin the corners: padding, truncation, escaping, sizes).

#include "http/autoindex.h"

#include <gtest/gtest.h>

namespace portico::http {
namespace {

AutoindexEntry file(std::string name, int64_t size, int64_t mtime = 86400 * 365) {
  AutoindexEntry e;
  e.name = std::move(name);
  e.file = true;
  e.size = size;
  e.mtime = mtime;
  return e;
}

AutoindexEntry dir(std::string name) {
  AutoindexEntry e;
  e.name = std::move(name);
  e.dir = true;
  e.mtime = 0;
  return e;
}

TEST(Autoindex, SortsDirectoriesFirstThenBytes) {
  std::vector<AutoindexEntry> v = {file("b", 1), dir("z"), file("B", 1), dir("a"), file("a", 1)};
  sortAutoindexEntries(v);
  std::vector<std::string> names;
  for (const auto& e : v) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "z", "B", "a", "b"}));
}

TEST(Autoindex, HtmlRowsPadTruncateAndEscape) {
  std::string html = renderAutoindexHtml("/d<ir>/", {dir("sub"), file("a b&c.txt", 5)}, true, 0);
  EXPECT_EQ(html,
            "<html>\r\n<head><title>Index of /d&lt;ir&gt;/</title></head>\r\n<body>\r\n"
            "<h1>Index of /d&lt;ir&gt;/</h1><hr><pre><a href=\"../\">../</a>\r\n"
            "<a href=\"sub/\">sub/</a>" + std::string(46, ' ') +
            " 01-Jan-1970 00:00                   -\r\n"
            "<a href=\"a%20b%26c.txt\">a b&amp;c.txt</a>" + std::string(41, ' ') +
            " 01-Jan-1971 00:00                   5\r\n"
            "</pre><hr></body>\r\n</html>\r\n");
  std::string longName(60, 'x');
  html = renderAutoindexHtml("/", {file(longName, 1)}, true, 0);
  EXPECT_NE(html.find(">" + std::string(47, 'x') + "..&gt;</a> 01-Jan-1971"), std::string::npos);
}

TEST(Autoindex, ApproximateSizes) {
  auto row = [](int64_t size) {
    std::string html = renderAutoindexHtml("/", {file("f", size)}, false, 0);
    size_t at = html.find("00:00 ");
    return html.substr(at + 6, html.find("\r\n", at) - at - 6);
  };
  EXPECT_EQ(row(9999), "   9999");
  EXPECT_EQ(row(10000), "    10K");
  EXPECT_EQ(row(10752), "    11K");  // 10.5 KiB rounds up
  EXPECT_EQ(row(3 * 1024 * 1024 + 700 * 1024), "     4M");
  EXPECT_EQ(row(int64_t{5} * 1024 * 1024 * 1024), "     5G");
  std::string html = renderAutoindexHtml("/", {dir("d")}, false, 0);
  EXPECT_NE(html.find("00:00       -\r\n"), std::string::npos);
}

TEST(Autoindex, XmlAndJson) {
  std::vector<AutoindexEntry> v = {dir("d"), file("a\"<b", 42)};
  EXPECT_EQ(renderAutoindexXml(v),
            "<?xml version=\"1.0\"?>\r\n<list>\r\n"
            "<directory mtime=\"1970-01-01T00:00:00Z\">d</directory>\r\n"
            "<file mtime=\"1971-01-01T00:00:00Z\" size=\"42\">a&quot;&lt;b</file>\r\n"
            "</list>\r\n");
  EXPECT_EQ(renderAutoindexJson(v, nullptr),
            "[\r\n{ \"name\":\"d\", \"type\":\"directory\", \"mtime\":\"Thu, 01 Jan 1970 00:00:00 "
            "GMT\" },\r\n{ \"name\":\"a\\\"<b\", \"type\":\"file\", \"mtime\":\"Fri, 01 Jan 1971 "
            "00:00:00 GMT\", \"size\":42 }\r\n]");
  std::string cb = "f";
  EXPECT_EQ(renderAutoindexJson({}, &cb), "/* callback */\r\nf([\r\n]);");
}

TEST(Autoindex, JsonpCallback) {
  std::string error;
  EXPECT_EQ(*jsonpCallback("a=1&callback=my.cb_1", error), "my.cb_1");
  EXPECT_EQ(*jsonpCallback("a=1", error), "");
  EXPECT_FALSE(jsonpCallback("callback=a-b", error));
  EXPECT_EQ(error, "client sent invalid callback name: \"a-b\"");
  EXPECT_FALSE(jsonpCallback("callback=" + std::string(129, 'a'), error));
}

}  // namespace
}  // namespace portico::http
