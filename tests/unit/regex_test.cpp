#include "core/regex.h"

#include <gtest/gtest.h>

namespace portico {
namespace {

TEST(Regex, CompilesAndMatches) {
  std::string error;
  auto re = Regex::compile(R"(\.(jpg|png)$)", false, error);
  ASSERT_TRUE(re) << error;
  EXPECT_TRUE(re->matches("/img/a.png"));
  EXPECT_FALSE(re->matches("/img/a.PNG"));
  EXPECT_FALSE(re->matches("/img/a.png/x"));
}

TEST(Regex, CaselessAndCaptures) {
  std::string error;
  auto re = Regex::compile(R"(^/users/(?<id>\d+)/(\w+)?)", true, error);
  ASSERT_TRUE(re) << error;
  Regex::Match m;
  ASSERT_TRUE(re->match("/USERS/42/", m));
  ASSERT_EQ(m.groups.size(), 3u);
  EXPECT_EQ(m.groups[0], "/USERS/42/");
  EXPECT_EQ(m.groups[1], "42");
  EXPECT_EQ(m.groups[2], "");  // unset group
  ASSERT_EQ(m.named.size(), 1u);
  EXPECT_EQ(m.named[0].first, "id");
  EXPECT_EQ(m.named[0].second, "42");
  EXPECT_EQ(re->captureCount(), 2);
}

TEST(Regex, InvalidPatternIsAnError) {
  std::string error;
  EXPECT_FALSE(Regex::compile("(unclosed", false, error));
  EXPECT_NE(error.find("offset"), std::string::npos) << error;
}

TEST(Regex, CopiesShareTheProgram) {
  std::string error;
  auto re = Regex::compile("a+b", false, error);
  ASSERT_TRUE(re);
  Regex copy = *re;
  re.reset();
  EXPECT_TRUE(copy.matches("xaab"));
}

}  // namespace
}  // namespace portico
