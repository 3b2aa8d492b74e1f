// SPDX-License-Identifier: GPL-2.0
//
// hvio stop [CONFIG.json] [--socket PATH]: orderly teardown.
//
// A running daemon (one answering the status socket) is sent SIGTERM and
// waited for: it finishes its I/O, destroys its devices and zones.  Its pid
// is the one the kernel names as the socket's peer (SO_PEERCRED), not what
// the report says; it is signalled and waited for through a pidfd
// (pidfd_open, pidfd_send_signal, poll), so a pid reused meanwhile is never
// signalled; kernels without pidfds (before 5.3) get kill() and a poll of
// /proc every 10 ms.  Then
// devices that a daemon which died left behind for recovery (orphans) are
// destroyed: those of CONFIG's zones, whose zones are removed too, or,
// without CONFIG, every orphan there is.  Last, the TAPs hvio created for
// them (persistent so that they outlive a crash) are removed.
#include "cli.h"
#include "commands.h"
#include "config.h"
#include "control.h"
#include "device.h"
#include "net.h"
#include "status_socket.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <poll.h>
#include <string>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace hvio {

namespace {

// How long a zone whose devices a dying daemon still holds is retried.
constexpr int kZoneDelRetries = 100;
constexpr std::chrono::milliseconds kZoneDelRetryDelay{50};
// How long to wait beyond the daemon's own drain timeout.
constexpr int kStopSlackS = 10;
// For a daemon whose report names no drain timeout (no limit, or older).
constexpr int kStopWaitDefaultS = 40;

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

int pidfd_send_signal(int pidfd, int sig) {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// Has the process exited?  A zombie counts: its parent (a shell, a test)
// may be waiting for us before it reaps it.
bool gone(long pid) {
    if (::kill(static_cast<pid_t>(pid), 0) < 0 && errno == ESRCH)
        return true;
    std::string path = "/proc/" + std::to_string(pid) + "/stat";
    FILE *f = std::fopen(path.c_str(), "r");
    if (!f)
        return true;
    char state = 0;
    int n = std::fscanf(f, "%*d (%*[^)]) %c", &state);
    std::fclose(f);
    return n == 1 && (state == 'Z' || state == 'X');
}

// SIGTERM the daemon behind the socket and wait for it to go.  Returns
// false if one answered and did not exit in time.
bool stop_daemon(const std::string &socket) {
    pid_t peer = 0;
    auto text = status_fetch(socket, &peer);
    if (!text)
        return true; // nobody there
    const long pid = peer;
    if (pid <= 0) {
        std::fprintf(stderr, "hvio: %s: the kernel names no process behind the socket\n",
                     socket.c_str());
        return false;
    }
    // The daemon drains for at most its drain timeout, then exits anyway.
    int wait_s = kStopWaitDefaultS;
    auto report = nlohmann::json::parse(*text, nullptr, false);
    if (report.is_object() && report.value("drain_timeout_s", 0) > 0)
        wait_s = report.value("drain_timeout_s", 0) + kStopSlackS;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(wait_s);

    UniqueFd pidfd(pidfd_open(static_cast<pid_t>(pid)));
    if (!pidfd && errno != ENOSYS) {
        if (errno == ESRCH)
            return true; // gone since
        std::fprintf(stderr, "hvio: pidfd_open %ld: %s\n", pid, std::strerror(errno));
        return false;
    }
    if (pidfd) {
        if (pidfd_send_signal(pidfd.get(), SIGTERM) < 0 && errno != ESRCH) {
            std::fprintf(stderr, "hvio: SIGTERM to %ld: %s\n", pid, std::strerror(errno));
            return false;
        }
        // Readable once the process has exited (all its threads: its
        // files and mappings are released by then).
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now());
            pollfd p{pidfd.get(), POLLIN, 0};
            int r = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
            if (r < 0 && errno == EINTR)
                continue;
            if (r > 0) {
                std::fprintf(stderr, "hvio: daemon %ld stopped\n", pid);
                return true;
            }
            if (r < 0)
                std::fprintf(stderr, "hvio: poll of daemon %ld: %s\n", pid, std::strerror(errno));
            break;
        }
    } else {
        if (::kill(static_cast<pid_t>(pid), SIGTERM) < 0) {
            std::fprintf(stderr, "hvio: kill %ld: %s\n", pid, std::strerror(errno));
            return false;
        }
        while (std::chrono::steady_clock::now() < until) {
            if (gone(pid)) {
                std::fprintf(stderr, "hvio: daemon %ld stopped\n", pid);
                return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    std::fprintf(stderr, "hvio: daemon %ld did not exit within %ds of SIGTERM\n", pid, wait_s);
    return false;
}

// Destroy the orphans of one zone (0: of every zone); how many went.
int destroy_orphans(const Control &ctl, uint32_t zone) {
    int n = 0;
    for (;;) {
        auto att = ctl.dev_attach(zone, zone ? HVIO_ATTACH_ANY : 0);
        if (!att)
            return n;
        DeviceFd dev(std::move(*att));
        auto info = dev.info();
        if (auto r = dev.destroy_on_close(); !r) {
            std::fprintf(stderr, "hvio: HVIO_DEV_DESTROY: %s\n", r.message().c_str());
            return n;
        }
        std::fprintf(stderr, "hvio: zone %u: destroyed the device at 0x%llx\n",
                     info ? info->zone_id : zone,
                     info ? static_cast<unsigned long long>(info->mmio_base) : 0ULL);
        n++;
    }
}

// TAPs hvio created (lib/net.h) that no daemon holds any more: CONFIG's,
// or without CONFIG every one of this network namespace.
void remove_created_taps(const Config &cfg, bool all) {
    std::vector<std::string> names;
    if (all) {
        if (auto r = created_taps())
            names = std::move(*r);
    }
    for (const ZoneConfig &z : cfg.zones)
        for (const NetDeviceConfig &c : z.net)
            names.push_back(c.tap);
    for (const std::string &n : names) {
        int r = tap_remove_created(n);
        if (r > 0)
            std::fprintf(stderr, "hvio: removed TAP %s (created by hvio)\n", n.c_str());
        else if (r < 0)
            std::fprintf(stderr, "hvio: TAP %s: %s\n", n.c_str(), std::strerror(-r));
    }
}

} // namespace

int cmd_stop(int argc, char **argv) {
    const char *config = nullptr;
    std::string socket = kDefaultSocket;
    static const option opts[] = {{"socket", required_argument, nullptr, 's'}, {}};
    std::vector<const char *> operands;
    auto on = [&socket](int, const char *arg) {
        socket = arg;
        return 0;
    };
    if (auto r = parse_options(argc, argv, opts, on, &operands, 1))
        return *r;
    if (!operands.empty())
        config = operands[0];
    ConfigResult cfg = config ? load_config(config) : ConfigResult(Config{});
    if (!cfg) {
        std::fprintf(stderr, "hvio: %s: %s\n", config, cfg.error().text().c_str());
        return kExitUsage;
    }
    int ret = stop_daemon(socket) ? kExitOk : kExitError;

    auto ctl = Control::open();
    if (!ctl) {
        std::fprintf(stderr, "hvio: cannot open %s: %s\n", kControlPath, ctl.message().c_str());
        return kExitError;
    }
    if (!config) {
        destroy_orphans(*ctl, 0);
        remove_created_taps(cfg.value(), true);
        return ret;
    }
    for (const ZoneConfig &z : cfg->zones) {
        // A daemon killed just before holds its devices until its last
        // thread (io_uring workers included) is gone; only then are they
        // orphans to destroy.  Give it the moment hvio run gives it.
        destroy_orphans(*ctl, z.id);
        auto r = ctl->zone_del(z.id);
        for (int i = 0; !r && r.error() == EBUSY && i < kZoneDelRetries; i++) {
            std::this_thread::sleep_for(kZoneDelRetryDelay);
            destroy_orphans(*ctl, z.id);
            r = ctl->zone_del(z.id);
        }
        if (!r && r.error() != ENOENT) {
            std::fprintf(stderr, "hvio: zone %u: HVIO_ZONE_DEL: %s%s\n", z.id, r.message().c_str(),
                         r.error() == EBUSY ? " (a daemon still serves devices in it)" : "");
            ret = kExitError;
        }
    }
    remove_created_taps(cfg.value(), false);
    return ret;
}

} // namespace hvio
