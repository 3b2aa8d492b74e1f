// SPDX-License-Identifier: GPL-2.0
//
// The backend checks of `hvio check`: see check.h.
#include "check.h"

#include "unique_fd.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/stat.h>

namespace hvio {

namespace {

int fail(std::string *why, const std::string &what, int err) {
    *why = what + ": " + std::strerror(err);
    return -err;
}

int check_tap(const std::string &name, std::string *why) {
    if (::if_nametoindex(name.c_str())) {
        // tun_flags exists only for TUN/TAP interfaces.
        std::ifstream f("/sys/class/net/" + name + "/tun_flags");
        unsigned flags = 0;
        if (!(f >> std::hex >> flags) || !(flags & IFF_TAP))
            return fail(why, name + " exists and is not a TAP", EEXIST);
        return 0;
    }
    UniqueFd tun(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
    if (!tun)
        return fail(why, name + " does not exist and cannot be created: /dev/net/tun", errno);
    return 0;
}

// path's directory exists (a PTY link's may be missing: run() makes it,
// so its nearest existing ancestor must be a directory); what is at path
// is of a kind run() replaces.
int check_path(const std::string &path, bool socket, std::string *why) {
    std::string dir = path.substr(0, path.rfind('/'));
    struct stat st;
    while (::stat(dir.empty() ? "/" : dir.c_str(), &st) < 0) {
        if (errno != ENOENT || socket || dir.empty())
            return fail(why, dir, errno);
        size_t up = dir.rfind('/');
        dir = up == std::string::npos ? std::string() : dir.substr(0, up);
    }
    if (!S_ISDIR(st.st_mode))
        return fail(why, dir, ENOTDIR);
    if (::lstat(path.c_str(), &st) < 0)
        return errno == ENOENT ? 0 : fail(why, path, errno);
    if (socket && !S_ISSOCK(st.st_mode))
        return fail(why, path + " (not a socket)", EEXIST);
    if (!socket && S_ISDIR(st.st_mode))
        return fail(why, path, EISDIR);
    return 0;
}

} // namespace

int check_backends(const Config &cfg, std::string *where, std::string *why) {
    for (const ZoneConfig &z : cfg.zones) {
        for (const NetDeviceConfig &c : z.net)
            if (int r = check_tap(c.tap, why); r < 0) {
                *where = c.where + ".tap";
                return r;
            }
        for (const ConsoleDeviceConfig &c : z.console) {
            bool socket = !c.socket.empty();
            if (!socket && c.pty.empty())
                continue;
            if (int r = check_path(socket ? c.socket : c.pty, socket, why); r < 0) {
                *where = c.where + (socket ? ".socket" : ".pty");
                return r;
            }
        }
    }
    return 0;
}

} // namespace hvio
