#pragma once

#include <string>
#include <vector>

namespace portico::process {

// nginx's `user NAME [GROUP]` in a worker: when the process runs as root, switches to the
// group (setgid), the user's supplementary groups (initgroups) and the user (setuid), then makes
// the process dumpable again (prctl(PR_SET_DUMPABLE, 1), as nginx, so cores and /proc stay
// usable). Nothing to do when `user` is empty or the process is not root (the loader has warned).
// gunicorn's --user/--group too: each a name or a number; `keepGroup` (--user without --group)
// keeps the master's group, as gunicorn does. False with nginx's message, e.g.
// "setuid(33) failed (1: Operation not permitted)".
bool dropPrivileges(const std::string& user, const std::string& group, bool keepGroup,
                    std::string& error);

// nginx's ngx_create_paths for the *_temp_path directories: each is created (0700) when missing
// and, when the process is root and `user` is set, given to that user so the workers can write
// there. The parent must exist, as in nginx. False with nginx's message, e.g.
// `mkdir() "/x/y" failed (2: No such file or directory)`.
bool createTempPaths(const std::vector<std::string>& paths, const std::string& user,
                     std::string& error);

}  // namespace portico::process
