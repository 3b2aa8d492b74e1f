// SPDX-License-Identifier: GPL-2.0
//
// hvio run CONFIG.json [--socket PATH]: the I/O daemon; and hvio check
// CONFIG.json, which stops where run would start creating things.
//
// Daemon::run() takes the daemon (daemon.h, which describes its startup,
// shutdown and recovery) from its config to "hvio: ready" and back to
// exit; Daemon::check() is hvio check.
#include "check.h"
#include "cli.h"
#include "commands.h"
#include "daemon.h"
#include "log.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace hvio {

namespace {

// How long the queues may take to finish their I/O after SIGTERM.
constexpr int kDefaultDrainTimeoutS = 30;

} // namespace

int Daemon::check() {
    if (int r = load())
        return r;
    std::string where, why;
    if (check_backends(cfg_, &where, &why))
        return fail_config(where, why);
    std::string limits = "hvio.ko not loaded, its limits not checked";
    auto ctl = Control::open();
    if (!ctl && ctl.error() != ENOENT)
        limits =
            std::string("hvio.ko's limits not checked: ") + kControlPath + ": " + ctl.message();
    if (ctl) {
        auto ver = ctl->version();
        if (!ver) {
            std::fprintf(stderr, "hvio: HVIO_GET_VERSION: %s\n", ver.message().c_str());
            return kExitError;
        }
        if (int r = check_limits(*ver))
            return r;
        limits = "within hvio.ko's limits";
    }
    std::printf("hvio: %s: ok (%s; %s)\n", config_path_.c_str(),
                serving_status(cfg_.device_count(), cfg_.zones.size()).c_str(), limits.c_str());
    return kExitOk;
}

int Daemon::run() {
    started_ = std::chrono::steady_clock::now();
    if (int r = load())
        return r;
    if (int r = open_taps())
        return r;
    if (int r = open_consoles())
        return r;

    auto ctl = Control::open();
    if (!ctl) {
        std::fprintf(stderr, "hvio: cannot open %s: %s%s\n", kControlPath, ctl.message().c_str(),
                     ctl.error() == ENOENT ? " (is hvio.ko loaded?)" : "");
        return kExitError;
    }
    ctl_.emplace(std::move(*ctl));
    auto ver = ctl_->version();
    if (!ver) {
        std::fprintf(stderr, "hvio: HVIO_GET_VERSION: %s\n", ver.message().c_str());
        return kExitError;
    }
    if (int r = check_limits(*ver))
        return r;

    if (auto r = status_.open(socket_path_); !r) {
        std::fprintf(
            stderr, "hvio: status socket %s: %s%s\n", socket_path_.c_str(), r.message().c_str(),
            r.error() == EADDRINUSE ? " (another hvio daemon is running; use --socket)" : "");
        return kExitError;
    }

    if (int r = open_signals())
        return r;

    if (int r = add_zones())
        return r;
    for (auto &d : devs_)
        if (int r = create_device(*d))
            return r;
    for (auto &d : nets_)
        if (int r = create_net_device(*d))
            return r;
    for (auto &d : cons_)
        if (int r = create_console_device(*d))
            return r;
    remove_stale_orphans();
    ready_ = true;
    start_threads();
    if (auto r = status_.start([this] { return report(); }); !r) {
        std::fprintf(stderr, "hvio: status thread: %s\n", r.message().c_str());
        stop_and_drain();
        return kExitError;
    }

    const size_t ndevs = devs_.size() + nets_.size() + cons_.size();
    std::printf("hvio: ready (%zu devices)\n", ndevs);
    std::fflush(stdout);
    if (int r = notify_.ready(ndevs, cfg_.zones.size()); r < 0)
        log_line(LogLevel::kWarning, "NOTIFY_SOCKET: %s", std::strerror(-r));

    wait_for_stop();
    int ret = stop_and_drain();
    teardown();
    if (ret == kExitOk)
        log_line(LogLevel::kInfo, "stopped");
    return ret;
}

int cmd_run(int argc, char **argv) {
    std::string socket = kDefaultSocket;
    int drain = kDefaultDrainTimeoutS;
    static const option opts[] = {{"socket", required_argument, nullptr, 's'},
                                  {"drain-timeout", required_argument, nullptr, 'd'},
                                  {}};
    auto on = [&](int c, const char *arg) {
        if (c == 's') {
            socket = arg;
            return kExitOk;
        }
        char *end;
        errno = 0;
        long v = std::strtol(arg, &end, 10);
        if (errno || end == arg || *end || v < 0 || v > 86400) {
            std::fprintf(stderr, "hvio: --drain-timeout: 0..86400 seconds (0: no limit)\n");
            return kExitUsage;
        }
        drain = static_cast<int>(v);
        return kExitOk;
    };
    std::vector<const char *> operands;
    if (auto r = parse_options(argc, argv, opts, on, &operands, 1))
        return *r;
    if (operands.empty()) {
        std::fprintf(stderr, "hvio run: CONFIG.json missing (`hvio run --help` explains)\n");
        return kExitUsage;
    }
    Daemon d(operands[0], socket, drain);
    return d.run();
}

int cmd_check(int argc, char **argv) {
    std::vector<const char *> operands;
    if (auto r = parse_options(argc, argv, nullptr, nullptr, &operands, 1))
        return *r;
    if (operands.empty()) {
        std::fprintf(stderr, "hvio check: CONFIG.json missing (`hvio check --help` explains)\n");
        return kExitUsage;
    }
    Daemon d(operands[0], kDefaultSocket, kDefaultDrainTimeoutS);
    return d.check();
}

} // namespace hvio
