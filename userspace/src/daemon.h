// SPDX-License-Identifier: GPL-2.0
//
// The daemon behind `hvio run` and `hvio check`: the Daemon class and the
// per-device state (queues, mappings, threads) that its files share.
// cmd_run.cc runs it; daemon_setup.cc, daemon_threads.cc,
// daemon_signals.cc and report.cc hold its parts.
#pragma once

#include "backends.h"
#include "blk.h"
#include "commands.h"
#include "config.h"
#include "console_queue.h"
#include "control.h"
#include "device.h"
#include "guest_memory.h"
#include "mapping.h"
#include "net.h"
#include "net_queue.h"
#include "notify.h"
#include "queue.h"
#include "status_socket.h"
#include "unique_fd.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace hvio {

struct QueueRt {
    UniqueFd efd;
    Mapping ops;
    std::unique_ptr<DeviceQueueBackend> backend;
    std::unique_ptr<BlkQueue> queue;
    std::thread thread;
    int result = 0;
};

// One block device.  Members are destroyed in reverse order: queues (and
// their op mappings), zone RAM mappings, then the device fd, so the
// device really goes away at close.
struct BlkDevice {
    const BlkDeviceConfig *cfg = nullptr;
    uint32_t zone_id = 0;
    bool reattached = false; // taken over from a daemon that died
    BlkImage img;
    BlkTarget target;
    DeviceFd dev;
    std::vector<uint8_t> ram_modes; // HVIO_RAM_* per config region
    std::vector<Mapping> ram;
    GuestMemory mem;
    std::vector<std::unique_ptr<QueueRt>> queues;
};

// One net device: both queues are served by one thread.  Members are
// destroyed in reverse order: the loop, the op mappings, zone RAM, the
// device fd, then the TAP.
struct NetDevice {
    const NetDeviceConfig *cfg = nullptr;
    uint32_t zone_id = 0;
    bool reattached = false; // taken over from a daemon that died
    std::string where;       // "zone 1 zones[0].devices[1]"
    NetTap tap;
    UniqueFd link; // rtnetlink watcher
    DeviceFd dev;
    std::vector<Mapping> ram;
    GuestMemory mem;
    UniqueFd efd[2];
    Mapping ops[2];
    std::unique_ptr<DeviceNetBackend> backend;
    std::unique_ptr<NetQueue> queue;
    std::thread thread;
    int result = 0;
};

// One console: both queues are served by one thread.  Members are
// destroyed in reverse order: the loop, the op mappings, zone RAM, the
// device fd, then the PTY.
struct ConsoleDevice {
    const ConsoleDeviceConfig *cfg = nullptr;
    uint32_t zone_id = 0;
    bool reattached = false;
    std::string where;    // "zone 1 zones[0].devices[2]"
    ConsolePty pty;       // the backend unless "socket" is given
    ConsoleSocket socket; // ... when it is
    DeviceFd dev;
    std::vector<Mapping> ram;
    GuestMemory mem;
    Mapping ops[2];
    std::unique_ptr<ConsoleQueue> queue;
    std::thread thread;
    int result = 0;
};

// Startup does everything that can fail before it prints "hvio: ready":
// the config, every image and every TAP are checked or opened before
// /dev/hvio is touched (exit 2), then zones, devices, mappings, eventfds
// and one probe QUEUE_RUN per queue (exit 1 on failure, with everything
// created so far undone).  Then one thread per blk queue (lib/queue.h), one
// per net device (lib/net_queue.h) and one per console
// (lib/console_queue.h) serve I/O, a small thread answers
// the status socket, and the main thread waits for SIGTERM/SIGINT or a
// queue thread's fatal error.  SIGHUP is ignored (with a line on stderr).
// Under systemd it says READY=1 when ready and STOPPING=1 when the drain
// starts (lib/notify.h).
//
// Shutdown: the stop flag is set and every queue's eventfd written; each
// queue stops fetching, waits for its ops in flight and commits them (net:
// the TX ring's last packets are sent, armed RX buffers given back), and
// leaves nothing in its io_uring (lib/ring.h).  Then every device is told
// HVIO_DEV_DESTROY and its fd closed (with its mappings: the kernel
// destroys a device when its last reference goes), the zones deleted, the
// socket removed.  Exit 0, or 1 if a queue failed.  The main thread keeps
// reading signals while the queues drain: a second SIGTERM/SIGINT, or a
// drain longer than --drain-timeout (default 30 s), ends the process at
// once with exit 1, naming what was still in flight; its devices are then
// left for recovery like a killed daemon's.
//
// Recovery: devices are created recoverable.  If the daemon dies without
// that shutdown (SIGKILL, a crash), the kernel keeps each device for the
// guest as an orphan, and the next `hvio run` takes it over
// (HVIO_DEV_ATTACH) instead of creating it: the guest sees only delay,
// and the ops the dead daemon had not committed are handed out again.
// Orphans of the config's zones that the config no longer has are
// destroyed.  A failed startup leaves orphans it took over as they were.
// A TAP the daemon created is persistent (lib/net.h, kTapAlias) so that
// it survives with the device; it goes when its device is destroyed.
class Daemon {
  public:
    Daemon(std::string config_path, std::string socket_path, int drain_timeout_s)
        : config_path_(std::move(config_path)), socket_path_(std::move(socket_path)),
          drain_timeout_s_(drain_timeout_s) {}
    ~Daemon() { teardown(); }

    int run();
    // hvio check: load() and what else run() checks before it creates
    // anything.
    int check();

  private:
    int fail_config(const std::string &where, const std::string &what) {
        std::fprintf(stderr, "hvio: %s: %s%s%s\n", config_path_.c_str(), where.c_str(),
                     where.empty() ? "" : ": ", what.c_str());
        return kExitUsage;
    }
    // daemon_setup.cc: config, backends, zones, devices.
    int load();
    int check_limits(const hvio_version &ver);
    int open_images();
    int open_taps();
    int open_consoles();
    int add_zones();
    int map_zone_ram(const DeviceFd &dev, uint32_t zone_id, const std::string &where,
                     std::vector<Mapping> &ram, GuestMemory &mem,
                     std::vector<uint8_t> *modes = nullptr);
    int open_device(const hvio_dev_create &dc, const std::string &where, DeviceFd &dev,
                    bool &reattached);
    void set_poll(const DeviceFd &dev, unsigned poll_us, const std::string &where);
    void remove_stale_orphans();
    int create_device(BlkDevice &d);
    int create_net_device(NetDevice &d);
    int create_console_device(ConsoleDevice &d);
    // daemon_threads.cc: the queue threads, teardown.
    int start_threads();
    void thread_done(int result, const std::string &what);
    void teardown();
    // daemon_signals.cc: signals, stop and drain.
    int open_signals();
    void wait_for_stop();
    int stop_and_drain();
    [[noreturn]] void exit_now(const char *why);
    std::string in_flight();
    // report.cc: the status socket's JSON document.
    std::string report();

    std::string config_path_;
    std::string socket_path_;
    const int drain_timeout_s_; // 0: no limit
    Config cfg_;
    std::vector<std::unique_ptr<BlkDevice>> devs_;
    std::vector<std::unique_ptr<NetDevice>> nets_;
    std::vector<std::unique_ptr<ConsoleDevice>> cons_;
    std::optional<Control> ctl_;
    std::vector<uint32_t> zones_added_;
    StatusServer status_;
    bool ready_ = false; // startup finished: teardown destroys every device
    UniqueFd sigfd_;
    UniqueFd fatal_efd_; // a queue thread failed
    UniqueFd done_efd_;  // a queue thread returned
    std::atomic<unsigned> threads_done_{0};
    std::atomic<bool> stop_{false};
    std::chrono::steady_clock::time_point started_;
    Notifier notify_ = Notifier::from_env(); // systemd's, when it started us
};

} // namespace hvio
