// SPDX-License-Identifier: GPL-2.0
//
// systemd's readiness protocol (sd_notify(3)) without libsystemd: one
// datagram of "KEY=value" lines to the AF_UNIX socket named by
// $NOTIFY_SOCKET, a path or, with a leading '@', a name in the abstract
// namespace.  Without $NOTIFY_SOCKET (not started by systemd with
// Type=notify) every call does nothing.
//
// What `hvio run` sends: READY=1 with STATUS=serving N devices in M zones
// once every device answers the guest, STOPPING=1 when the drain starts.
#pragma once

#include "unique_fd.h"

#include <cstddef>
#include <string>
#include <string_view>

namespace hvio {

class Notifier {
  public:
    // From $NOTIFY_SOCKET (left in the environment); disabled without it.
    static Notifier from_env();
    // To socket (a path, or '@' and an abstract name); empty: disabled.
    explicit Notifier(std::string socket) : socket_(std::move(socket)) {}

    bool enabled() const { return !socket_.empty(); }
    // Sends msg as one datagram: 0, -errno, or 0 when disabled.
    int send(std::string_view msg);

    // "READY=1\nSTATUS=serving 3 devices in 1 zone".
    int ready(size_t devices, size_t zones);
    // "STOPPING=1\nSTATUS=stopping: finishing I/O in flight".
    int stopping();

  private:
    std::string socket_;
    UniqueFd fd_; // opened at the first send
};

// The STATUS= text of ready(): "serving 1 device in 2 zones".
std::string serving_status(size_t devices, size_t zones);

} // namespace hvio
