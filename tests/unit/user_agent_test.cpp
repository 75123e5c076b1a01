#include "http/user_agent.h"

#include <gtest/gtest.h>

#include "config/site.h"

namespace portico::http {
namespace {

using config::LocationSettings;

TEST(UserAgent, RecognisesOldMsieAsNginxDoes) {
  EXPECT_TRUE(classifyUserAgent("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)").msie6);
  EXPECT_TRUE(classifyUserAgent("Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)").msie6);
  EXPECT_FALSE(classifyUserAgent("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)").msie6);
  EXPECT_FALSE(classifyUserAgent("Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)").msie6);
  EXPECT_FALSE(classifyUserAgent("Mozilla/4.0 (compatible; MSIE 6.0; Opera 8.5)").msie6);
  EXPECT_FALSE(classifyUserAgent("MSIE 6.").msie6);  // nginx wants a byte past "MSIE N."
  EXPECT_TRUE(classifyUserAgent("MSIE 6.0").msie6);
}

TEST(UserAgent, RecognisesSafariOnMacOnly) {
  EXPECT_TRUE(classifyUserAgent("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15) "
                                "AppleWebKit/605 (KHTML, like Gecko) Safari/605").safari);
  EXPECT_FALSE(classifyUserAgent("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15) "
                                 "AppleWebKit/537 Chrome/120 Safari/537").safari);
  EXPECT_FALSE(classifyUserAgent("Mozilla/5.0 (Windows) AppleWebKit/605 Safari/605").safari);
  EXPECT_FALSE(classifyUserAgent("Mozilla/5.0 (Mac OS X) Gecko/2010 Safari/1").safari);
}

TEST(UserAgent, ErrorPaddingForMsieAndChrome) {
  EXPECT_TRUE(wantsErrorPadding("Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1)"));
  EXPECT_TRUE(wantsErrorPadding("Mozilla/5.0 (X11) AppleWebKit/537 (KHTML, like Gecko) "
                                "Chrome/120 Safari/537"));
  EXPECT_FALSE(wantsErrorPadding("Mozilla/5.0 (X11; rv:120.0) Gecko/20100101 Firefox/120.0"));
  EXPECT_FALSE(wantsErrorPadding("Opera/9.80 (MSIE 6.0) Presto"));
  EXPECT_FALSE(wantsErrorPadding(""));
}

TEST(UserAgent, KeepaliveDisableMask) {
  const char* msie6 = "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)";
  const char* safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15) Safari/605";
  unsigned dflt = LocationSettings{}.keepaliveDisable;
  EXPECT_TRUE(keepaliveDisabled(dflt, msie6, true));
  EXPECT_FALSE(keepaliveDisabled(dflt, msie6, false));  // only after a POST
  EXPECT_FALSE(keepaliveDisabled(dflt, safari, true));
  EXPECT_FALSE(keepaliveDisabled(LocationSettings::kKeepaliveDisableNone, msie6, true));
  EXPECT_TRUE(keepaliveDisabled(LocationSettings::kKeepaliveDisableSafari, safari, false));
  EXPECT_FALSE(keepaliveDisabled(LocationSettings::kKeepaliveDisableSafari, msie6, true));
}

}  // namespace
}  // namespace portico::http
