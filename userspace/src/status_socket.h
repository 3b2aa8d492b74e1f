// SPDX-License-Identifier: GPL-2.0
//
// The daemon's status socket: a UNIX stream socket (default
// /run/hvio.sock, mode 0600) on which every connection receives one JSON
// document (the daemon's report) and is closed.  `hvio status` is the
// client.
#pragma once

#include "result.h"
#include "unique_fd.h"

#include <functional>
#include <string>
#include <sys/types.h>
#include <thread>

namespace hvio {

inline constexpr const char *kDefaultSocket = "/run/hvio.sock";

class StatusServer {
  public:
    StatusServer() = default;
    ~StatusServer();
    StatusServer(const StatusServer &) = delete;
    StatusServer &operator=(const StatusServer &) = delete;

    // Binds and listens on path.  A stale socket file (nobody listening) is
    // replaced; a live one means another daemon: EADDRINUSE.
    Result<void> open(const std::string &path);

    // Serves connections from a thread until stop(); report() is called
    // for each one, on that thread.  An exception from report() is caught
    // there: that client gets error_report(), the thread goes on.
    Result<void> start(std::function<std::string()> report);

    // Stops the thread and removes the socket file.
    void stop();

  private:
    void serve();

    std::string path_;
    UniqueFd listen_;
    UniqueFd stop_efd_;
    std::function<std::string()> report_;
    std::thread thread_;
};

// Connects to path and returns everything the daemon sent.  With peer, also
// the pid of the process serving the socket (SO_PEERCRED).
Result<std::string> status_fetch(const std::string &path, pid_t *peer = nullptr);

// The document a connection gets when the report could not be made: one
// JSON object {"error": "..."} naming what.
std::string error_report(const std::string &what);

} // namespace hvio
