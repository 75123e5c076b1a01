#include "process/privileges.h"

#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace portico::process {

namespace {

// nginx's "(errno: text)" suffix.
std::string failed(const std::string& call) {
  int saved = errno;
  return call + " failed (" + std::to_string(saved) + ": " + std::strerror(saved) + ")";
}

}  // namespace

bool dropPrivileges(const std::string& user, const std::string& group, std::string& error) {
  if (user.empty() || ::geteuid() != 0) return true;
  errno = 0;
  const passwd* pw = ::getpwnam(user.c_str());
  if (!pw) {
    error = failed("getpwnam(\"" + user + "\")");
    return false;
  }
  uid_t uid = pw->pw_uid;
  const std::string& groupName = group.empty() ? user : group;
  errno = 0;
  const struct group* gr = ::getgrnam(groupName.c_str());
  if (!gr) {
    error = failed("getgrnam(\"" + groupName + "\")");
    return false;
  }
  gid_t gid = gr->gr_gid;
  if (::setgid(gid) != 0) {
    error = failed("setgid(" + std::to_string(gid) + ")");
    return false;
  }
  if (::initgroups(user.c_str(), gid) != 0) {
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
