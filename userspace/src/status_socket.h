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
    // for each one, on that thread.
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

// Connects to path and returns everything the daemon sent.
Result<std::string> status_fetch(const std::string &path);

} // namespace hvio
