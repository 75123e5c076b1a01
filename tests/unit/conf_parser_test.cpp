#include "config/conf_parser.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace portico::config {
namespace {

const std::string kFile = "/etc/p/site.conf";

// The first error marker anywhere in the tree, or "" when the text parsed.
std::string firstError(const std::vector<ConfDirective>& tree) {
  for (const ConfDirective& d : tree) {
    if (d.error) return *d.error;
    std::string inner = firstError(d.children);
    if (!inner.empty()) return inner;
  }
  return "";
}

std::vector<ConfDirective> parseOk(const std::string& text) {
  auto tree = parseConf(text, kFile);
  EXPECT_EQ(firstError(tree), "") << text;
  return tree;
}

TEST(ConfParser, DirectivesBlocksAndLines) {
  auto tree = parseOk("worker_processes 2;\n\nevents {\n  worker_connections 10;\n}\nhttp { }\n");
  ASSERT_EQ(tree.size(), 3u);
  EXPECT_EQ(tree[0].name, "worker_processes");
  EXPECT_EQ(tree[0].args, std::vector<std::string>{"2"});
  EXPECT_FALSE(tree[0].hasBlock);
  EXPECT_EQ(tree[0].source.line, 1);
  EXPECT_EQ(tree[0].source.file, kFile);
  EXPECT_EQ(tree[1].name, "events");
  EXPECT_TRUE(tree[1].hasBlock);
  EXPECT_EQ(tree[1].source.line, 3);
  ASSERT_EQ(tree[1].children.size(), 1u);
  EXPECT_EQ(tree[1].children[0].source.line, 4);
  EXPECT_TRUE(tree[2].hasBlock);
  EXPECT_TRUE(tree[2].children.empty());
}

TEST(ConfParser, LineIsWhereTheDirectiveEnds) {
  // nginx reports a multi-line directive at its `;`.
  auto tree = parseOk("log_format main\n  'a'\n  'b';\n");
  ASSERT_EQ(tree.size(), 1u);
  EXPECT_EQ(tree[0].source.line, 3);
  EXPECT_EQ(tree[0].args, (std::vector<std::string>{"main", "a", "b"}));
}

TEST(ConfParser, QuotesEscapesCommentsVariables) {
  struct Case {
    std::string text;
    std::vector<std::string> args;
  };
  const Case cases[] = {
      {R"(x "a b" 'c d';)", {"a b", "c d"}},
      {R"(x "say \"hi\"";)", {"say \"hi\""}},
      {R"(x 'it\'s';)", {"it's"}},
      {R"(x "back\\slash";)", {"back\\slash"}},
      {R"(x "t\tn\nr\r";)", {"t\tn\nr\r"}},
      {R"(x "keep\d";)", {"keep\\d"}},  // other escapes keep the backslash
      {R"(x a\ b;)", {"a\\ b"}},  // an escaped space joins the word; the backslash stays
      {"x a#b; # comment ; {\n", {"a#b"}},
      {"x ${uri}x $host;", {"${uri}x", "$host"}},
      {"x a}b;", {"a}b"}},  // `}` inside a word is part of it
      {"x \"\";", {""}},
      {"x \"a\";", {"a"}},
      {"x \"a\")\n;", {"a", ")"}},  // `)` may follow a quote and starts a word
      {"x\t\r\na;", {"a"}},
  };
  for (const Case& c : cases) {
    auto tree = parseOk(c.text);
    ASSERT_FALSE(tree.empty()) << c.text;
    EXPECT_EQ(tree[0].name, "x") << c.text;
    EXPECT_EQ(tree[0].args, c.args) << c.text;
  }
}

TEST(ConfParser, MalformedInputsGiveNginxMessages) {
  struct Case {
    std::string text;
    std::string error;
  };
  const Case cases[] = {
      {"}", "unexpected \"}\" in /etc/p/site.conf:1"},
      {"a {\n}\n}", "unexpected \"}\" in /etc/p/site.conf:3"},
      {"x y }", "unexpected \"}\" in /etc/p/site.conf:1"},
      {";", "unexpected \";\" in /etc/p/site.conf:1"},
      {"\n{", "unexpected \"{\" in /etc/p/site.conf:2"},
      {"a {\n", "unexpected end of file, expecting \"}\" in /etc/p/site.conf:2"},
      {"a {\n b {", "unexpected end of file, expecting \"}\" in /etc/p/site.conf:2"},
      {"x y", "unexpected end of file, expecting \";\" or \"}\" in /etc/p/site.conf:1"},
      {"x \"y;\n", "unexpected end of file, expecting \";\" or \"}\" in /etc/p/site.conf:2"},
      {"x 'y;", "unexpected end of file, expecting \";\" or \"}\" in /etc/p/site.conf:1"},
      {"x \"a\"b;", "unexpected \"b\" in /etc/p/site.conf:1"},
      {"x 'a'\"b\";", "unexpected \"\"\" in /etc/p/site.conf:1"},
      {"x\\", "unexpected end of file, expecting \";\" or \"}\" in /etc/p/site.conf:1"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(firstError(parseConf(c.text, kFile)), c.error) << c.text;
    // Every truncation of a malformed input parses to something (a tree or an error).
    for (size_t n = 0; n < c.text.size(); ++n) {
      auto tree = parseConf(c.text.substr(0, n), kFile);
      if (n > 0 && c.text.find_first_not_of(" \n", 0) < n) {
        EXPECT_FALSE(tree.empty()) << c.text.substr(0, n);
      }
    }
  }
}

TEST(ConfParser, ErrorMarkerComesAfterWhatParsed) {
  auto tree = parseConf("a 1;\nhttp {\n b 2;\n c \"x\"y;\n}\n", kFile);
  ASSERT_EQ(tree.size(), 2u);
  EXPECT_EQ(tree[0].name, "a");
  ASSERT_EQ(tree[1].children.size(), 2u);
  EXPECT_EQ(tree[1].children[0].name, "b");
  ASSERT_TRUE(tree[1].children[1].error);
  EXPECT_EQ(*tree[1].children[1].error, "unexpected \"y\" in /etc/p/site.conf:4");
}

TEST(ConfParser, CommandLineText) {
  auto tree = parseConf("daemon off; pid /x;", "", ConfSourceKind::kCommandLine);
  ASSERT_EQ(tree.size(), 2u);
  EXPECT_EQ(describeSource(tree[1].source), "command line");
  EXPECT_EQ(firstError(parseConf("daemon off", "", ConfSourceKind::kCommandLine)),
            "unexpected end of parameter, expecting \";\" in command line");
  EXPECT_EQ(firstError(parseConf("events {}", "", ConfSourceKind::kCommandLine)),
            "block directives are not supported in -g option in command line");
}

TEST(ConfParser, TruncationsAndMutationsNeverCrash) {
  const std::string samples[] = {
      "user www-data;\nevents { worker_connections 64; }\nhttp {\n include mime.types;\n"
      " log_format main '$remote_addr \"$request\"';\n server {\n listen 80 default_server;\n"
      "  location ~* \\.(png|jpg)$ { expires 30d; }\n  location / { try_files $uri @app; }\n"
      "  location @app { wsgi_app app:application; }\n }\n}\n",
      "x 'a\\'b' \"c\\\"d\" ${e}f # g\n{ h; } } ; {",
  };
  std::mt19937 rng(42);
  size_t parsed = 0;
  for (const std::string& sample : samples) {
    for (size_t n = 0; n <= sample.size(); ++n) {
      parseConf(sample.substr(0, n), kFile);
      ++parsed;
    }
    for (int round = 0; round < 2000; ++round) {
      std::string mutated = sample;
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        size_t at = rng() % mutated.size();
        static const char kBytes[] = "{};'\"\\#$ \n\0x";
        mutated[at] = kBytes[rng() % (sizeof kBytes - 1)];
      }
      parseConf(mutated, kFile);
      ++parsed;
    }
  }
  EXPECT_GT(parsed, 4000u);
}

}  // namespace
}  // namespace portico::config
