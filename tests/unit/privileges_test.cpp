#include "process/privileges.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace portico::process {
namespace {

TEST(PrivilegesTest, NoUserIsNothingToDo) {
  std::string error;
  EXPECT_TRUE(dropPrivileges("", "", false, error));
  EXPECT_EQ(error, "");
}

TEST(PrivilegesTest, RootSwitchesToTheUserAndGroupAndStaysDumpable) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  const passwd* pw = ::getpwnam("nobody");
  const group* gr = ::getgrnam("nogroup");
  if (!pw || !gr) GTEST_SKIP() << "no nobody/nogroup account";
  uid_t uid = pw->pw_uid;
  gid_t gid = gr->gr_gid;
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string error;
    bool ok = dropPrivileges("nobody", "nogroup", false, error);
    gid_t groups[64];
    int count = ::getgroups(64, groups);
    bool onlyUsersGroups = count >= 0;
    for (int i = 0; i < count; ++i) onlyUsersGroups &= groups[i] != 0;
    bool right = ok && ::getuid() == uid && ::geteuid() == uid && ::getgid() == gid &&
                 ::getegid() == gid && onlyUsersGroups && ::prctl(PR_GET_DUMPABLE) == 1 &&
                 ::setuid(0) != 0;  // and there is no way back
    ::_exit(right ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(PrivilegesTest, UnknownUserIsNginxsMessage) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  std::string error;
  EXPECT_FALSE(dropPrivileges("no-such-user-7q", "nogroup", false, error));
  EXPECT_EQ(error.rfind("getpwnam(\"no-such-user-7q\") failed", 0), 0u) << error;
}

// gunicorn's --user 65534 --group 65534, and --user alone (the group stays the master's); a
// number without a passwd entry (a container's uid) switches too, with only its group.
TEST(PrivilegesTest, NumbersAndKeptGroup) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  struct Case {
    const char* user;
    const char* group;
    bool keepGroup;
    uid_t uid;
    gid_t gid;
  };
  for (const Case& c : {Case{"65534", "65534", false, 65534, 65534},
                        Case{"nobody", "", true, 65534, 0},
                        Case{"54321", "54321", false, 54321, 54321}}) {
    SCOPED_TRACE(c.user);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      std::string error;
      bool ok = dropPrivileges(c.user, c.group, c.keepGroup, error);
      ::_exit(ok && ::getuid() == c.uid && ::getgid() == c.gid ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
}

}  // namespace
}  // namespace portico::process
