// SPDX-License-Identifier: GPL-2.0
//
// sd_notify(3)'s protocol, written out: see notify.h.
#include "notify.h"

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>

namespace hvio {

Notifier Notifier::from_env() {
    const char *s = std::getenv("NOTIFY_SOCKET");
    return Notifier(s ? s : "");
}

int Notifier::send(std::string_view msg) {
    if (!enabled())
        return 0;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    // The name must fit with its NUL (a path) or its leading NUL
    // (abstract); systemd's own names are far shorter.
    if (socket_.size() >= sizeof(sa.sun_path) || (socket_[0] != '/' && socket_[0] != '@'))
        return -EINVAL;
    std::memcpy(sa.sun_path, socket_.data(), socket_.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_.size());
    if (socket_[0] == '@')
        sa.sun_path[0] = '\0'; // abstract: exactly the name's bytes, no NUL after
    else
        len += 1;
    if (!fd_) {
        fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        if (!fd_)
            return -errno;
    }
    ssize_t n = ::sendto(fd_.get(), msg.data(), msg.size(), MSG_NOSIGNAL,
                         reinterpret_cast<const sockaddr *>(&sa), len);
    if (n < 0)
        return -errno;
    return static_cast<size_t>(n) == msg.size() ? 0 : -EMSGSIZE;
}

std::string serving_status(size_t devices, size_t zones) {
    return "serving " + std::to_string(devices) + (devices == 1 ? " device" : " devices") + " in " +
           std::to_string(zones) + (zones == 1 ? " zone" : " zones");
}

int Notifier::ready(size_t devices, size_t zones) {
    return send("READY=1\nSTATUS=" + serving_status(devices, zones));
}

int Notifier::stopping() { return send("STOPPING=1\nSTATUS=stopping: finishing I/O in flight"); }

} // namespace hvio
