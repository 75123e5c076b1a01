#include "process/privileges.h"

#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace portico::process {

namespace {

// nginx's "(errno: text)" suffix.
std::string failed(const std::string& call) {
  int saved = errno;
  return call + " failed (" + std::to_string(saved) + ": " + std::strerror(saved) + ")";
}

}  // namespace

bool createTempPaths(const std::vector<std::string>& paths, const std::string& user,
                     std::string& error) {
  for (const std::string& path : paths) {
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
      error = failed("mkdir() \"" + path + "\"");
      return false;
    }
    if (user.empty() || ::geteuid() != 0) continue;
    errno = 0;
    const passwd* pw = ::getpwnam(user.c_str());
    if (!pw) {
      error = failed("getpwnam(\"" + user + "\")");
      return false;
    }
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      error = failed("stat() \"" + path + "\"");
      return false;
    }
    if (st.st_uid != pw->pw_uid && ::chown(path.c_str(), pw->pw_uid, static_cast<gid_t>(-1)) != 0) {
      error = failed("chown(\"" + path + "\", " + std::to_string(pw->pw_uid) + ")");
      return false;
    }
  }
  return true;
}

namespace {

bool allDigits(const std::string& text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

bool dropPrivileges(const std::string& user, const std::string& group, bool keepGroup,
                    std::string& error) {
  if (user.empty() || ::geteuid() != 0) return true;
  // A name, or a number (gunicorn's --user 10001: a container's user may have no passwd entry).
  errno = 0;
  const passwd* pw = ::getpwnam(user.c_str());
  if (!pw && allDigits(user)) pw = ::getpwuid(static_cast<uid_t>(std::stoul(user)));
  if (!pw && !allDigits(user)) {
    error = failed("getpwnam(\"" + user + "\")");
    return false;
  }
  uid_t uid = pw ? pw->pw_uid : static_cast<uid_t>(std::stoul(user));
  std::string userName = pw ? pw->pw_name : std::string();
  gid_t gid = ::getegid();
  if (!keepGroup) {
    // nginx's `user NAME`: the group of the same name; gunicorn's --group: a name or a number.
    const std::string& groupName = group.empty() ? user : group;
    errno = 0;
    const struct group* gr = ::getgrnam(groupName.c_str());
    if (gr) {
      gid = gr->gr_gid;
    } else if (allDigits(groupName)) {
      gid = static_cast<gid_t>(std::stoul(groupName));
    } else {
      error = failed("getgrnam(\"" + groupName + "\")");
      return false;
    }
  }
  if (::setgid(gid) != 0) {
    error = failed("setgid(" + std::to_string(gid) + ")");
    return false;
  }
  // The user's groups (nginx always, gunicorn with --initgroups); a user without a passwd
  // entry has only its group.
  if (!userName.empty() ? ::initgroups(userName.c_str(), gid) != 0 : ::setgroups(1, &gid) != 0) {
    error = failed("initgroups(" + user + ", " + std::to_string(gid) + ")");
    return false;
  }
  if (::setuid(uid) != 0) {
    error = failed("setuid(" + std::to_string(uid) + ")");
    return false;
  }
  if (::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) {
    error = failed("prctl(PR_SET_DUMPABLE)");
    return false;
  }
  return true;
}

}  // namespace portico::process
