// SPDX-License-Identifier: GPL-2.0
//
// hvio run CONFIG.json [--socket PATH]: the I/O daemon; and hvio check
// CONFIG.json, which stops where run would start creating things.
//
// Startup does everything that can fail before it prints "hvio: ready":
// the config, every image and every TAP are checked or opened before
// /dev/hvio is touched (exit 2), then zones, devices, mappings, eventfds
// and one probe QUEUE_RUN per queue (exit 1 on failure, with everything
// created so far undone).  Then one thread per blk queue (lib/queue.h) and
// one per net device (lib/net_queue.h) serve I/O, a small thread answers
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
#include "blk.h"
#include "check.h"
#include "cli.h"
#include "commands.h"
#include "config.h"
#include "console_queue.h"
#include "control.h"
#include "device.h"
#include "guest_memory.h"
#include "latency.h"
#include "log.h"
#include "net.h"
#include "net_queue.h"
#include "notify.h"
#include "queue.h"
#include "status_socket.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <endian.h>
#include <linux/virtio_config.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>
#include <memory>
#include <net/if.h>
#include <optional>
#include <poll.h>
#include <pthread.h>
#include <string>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace hvio {

namespace {

using json = nlohmann::ordered_json;

// How long the queues may take to finish their I/O after SIGTERM.
constexpr int kDefaultDrainTimeoutS = 30;

// How long to wait for a dying daemon to let go of a device: 5 s.
constexpr int kAttachRetries = 100;
constexpr auto kAttachRetryDelay = std::chrono::milliseconds(50);

// The kernel side of one queue of a device fd.
class DeviceQueueBackend final : public QueueBackend {
  public:
    DeviceQueueBackend(const DeviceFd &dev, const Mapping &ops, uint16_t queue)
        : dev_(dev), ops_(ops), queue_(queue) {}
    int run(hvio_queue_run &r) override {
        auto ret = dev_.queue_run(r);
        return ret ? 0 : -ret.error();
    }
    const hvio_op &op(uint16_t tag) const override {
        return static_cast<const hvio_op *>(ops_.get())[tag];
    }
    int uring_fd() const override { return dev_.fd(); }
    int unpark() override {
        auto ret = dev_.queue_unpark(queue_);
        return ret ? 0 : -ret.error();
    }

  private:
    const DeviceFd &dev_;
    const Mapping &ops_;
    const uint16_t queue_;
};

// The kernel and TAP side of one net device.
class DeviceNetBackend final : public NetBackend {
  public:
    DeviceNetBackend(const DeviceFd &dev, const Mapping *ops, int tap, std::string tap_name)
        : dev_(dev), ops_(ops), tap_(tap), tap_name_(std::move(tap_name)) {}
    int run(hvio_queue_run &r) override {
        auto ret = dev_.queue_run(r);
        return ret ? 0 : -ret.error();
    }
    const hvio_op &op(uint16_t queue, uint16_t tag) const override {
        return static_cast<const hvio_op *>(ops_[queue].get())[tag];
    }
    int get_events(hvio_dev_events &ev) override {
        auto r = dev_.events();
        if (!r)
            return -r.error();
        ev = *r;
        return 0;
    }
    int driver_features(uint64_t *f) override {
        auto r = dev_.info();
        if (!r)
            return -r.error();
        *f = r->driver_features;
        return 0;
    }
    int set_config(uint32_t off, const void *data, uint32_t len, uint32_t flags) override {
        auto r = dev_.set_config(off, data, len, flags);
        return r ? 0 : -r.error();
    }
    int set_offload(unsigned flags) override { return tap_set_offload(tap_, flags); }
    int link_flags(unsigned *f) override {
        auto r = hvio::link_flags(tap_name_);
        if (!r)
            return -r.error();
        *f = *r;
        return 0;
    }
    int uring_fd() const override { return dev_.fd(); }
    int unpark(uint16_t queue) override {
        auto ret = dev_.queue_unpark(queue);
        return ret ? 0 : -ret.error();
    }

  private:
    const DeviceFd &dev_;
    const Mapping *ops_; // [2]: RX, TX
    int tap_;
    std::string tap_name_;
};

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

// What the console offers: SIZE, the ring features, VERSION_1.
constexpr uint64_t kConsoleFeatures =
    (1ULL << VIRTIO_CONSOLE_F_SIZE) | (1ULL << 28) /* VIRTIO_RING_F_INDIRECT_DESC */ |
    (1ULL << 29) /* VIRTIO_RING_F_EVENT_IDX */ | (1ULL << VIRTIO_F_VERSION_1);

std::string mac_text(const std::array<uint8_t, 6> &m) {
    char buf[18];
    std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                  m[5]);
    return buf;
}

const char *zone_add_hint(int err) {
    switch (err) {
    case EEXIST:
        return " (the zone is already registered: is another hvio running?)";
    case EBUSY:
        return " (a host range overlaps another zone's RAM)";
    case EPERM:
        return " (the provider refuses this RAM: with hvisor it must not be root Linux's System "
               "RAM; with hypervisor=sim it must lie inside sim_ram)";
    case EINVAL:
        return " (a range the kernel refuses: alignment to its page size, or limits)";
    case ENOSPC:
        return " (too many zones)";
    default:
        return "";
    }
}

const char *dev_create_hint(int err) {
    switch (err) {
    case EBUSY:
        return " (the window overlaps another device of the zone: is another hvio running?)";
    case ENOSPC:
        return " (too many devices, or its irq would be the zone's 8th distinct one: hvisor's "
               "pending-interrupt list holds 7 per zone CPU (hvio.ko max_pending_irqs), so let "
               "devices share an irq)";
    case EINVAL:
        return " (refused by hvio.ko: see Documentation/abi.md, HVIO_DEV_CREATE)";
    default:
        return "";
    }
}

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
    int load();
    int check_limits(const hvio_version &ver);
    int open_images();
    int open_taps();
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
    int open_consoles();
    int create_console_device(ConsoleDevice &d);
    int start_threads();
    void wait_for_stop();
    int stop_and_drain();
    [[noreturn]] void exit_now(const char *why);
    std::string in_flight();
    void thread_done(int result, const std::string &what);
    void teardown();
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

int Daemon::open_images() {
    for (const ZoneConfig &z : cfg_.zones) {
        for (const BlkDeviceConfig &c : z.blk) {
            auto d = std::make_unique<BlkDevice>();
            d->cfg = &c;
            d->zone_id = z.id;
            std::string why;
            auto img = open_blk_image(c, &why);
            if (!img)
                return fail_config(c.where + ".img", why);
            d->img = std::move(*img);
            if (d->img.size % 512)
                std::fprintf(stderr,
                             "hvio: %s: warning: %s: %s is %llu bytes, not a multiple of 512; "
                             "the last %llu bytes are not visible to the guest\n",
                             config_path_.c_str(), c.where.c_str(), c.path.c_str(),
                             static_cast<unsigned long long>(d->img.size),
                             static_cast<unsigned long long>(d->img.size % 512));
            BlkTarget &t = d->target;
            t.where = "zone " + std::to_string(z.id) + " " + c.where;
            t.fd = d->img.fd.get();
            t.buffered_fd = d->img.buffered.get();
            t.no_direct = d->img.no_direct;
            t.direct_align = d->img.blk_size;
            t.block_device = d->img.block_device;
            t.readonly = c.readonly;
            t.discard = c.discard;
            t.size = d->img.size & ~uint64_t(511);
            devs_.push_back(std::move(d));
        }
    }
    return kExitOk;
}

int Daemon::open_taps() {
    for (const ZoneConfig &z : cfg_.zones) {
        for (const NetDeviceConfig &c : z.net) {
            auto d = std::make_unique<NetDevice>();
            d->cfg = &c;
            d->zone_id = z.id;
            d->where = "zone " + std::to_string(z.id) + " " + c.where;
            // The watcher first: no link change between the query of the
            // TAP's state (in open_tap) and the watch is lost.
            auto link = open_link_watch();
            if (!link)
                return fail_config(c.where + ".tap",
                                   "rtnetlink socket for the link state: " + link.message());
            d->link = std::move(*link);
            std::string why;
            auto tap = open_tap(c.tap, &why);
            if (!tap)
                return fail_config(c.where + ".tap", why);
            d->tap = std::move(*tap);
            if (d->tap.mtu && d->tap.mtu != c.mtu)
                std::fprintf(stderr,
                             "hvio: %s: warning: %s: %s has MTU %u, the guest is told %u "
                             "(ip link set %s mtu %u)\n",
                             config_path_.c_str(), c.where.c_str(), d->tap.name.c_str(), d->tap.mtu,
                             c.mtu, d->tap.name.c_str(), c.mtu);
            if (!(d->tap.flags & IFF_UP))
                log_line(LogLevel::kWarning,
                         "%s: %s: %s is down: the guest sees its link down until "
                         "`ip link set %s up`",
                         config_path_.c_str(), c.where.c_str(), d->tap.name.c_str(),
                         d->tap.name.c_str());
            nets_.push_back(std::move(d));
        }
    }
    return kExitOk;
}

int Daemon::open_consoles() {
    for (const ZoneConfig &z : cfg_.zones) {
        for (const ConsoleDeviceConfig &c : z.console) {
            auto d = std::make_unique<ConsoleDevice>();
            d->cfg = &c;
            d->zone_id = z.id;
            d->where = "zone " + std::to_string(z.id) + " " + c.where;
            std::string why;
            if (!c.socket.empty()) {
                if (d->socket.open(c.socket, &why) < 0)
                    return fail_config(c.where + ".socket", why);
            } else if (d->pty.open(c.pty, &why) < 0) {
                return fail_config(c.where + (c.pty.empty() ? "" : ".pty"), "PTY: " + why);
            }
            cons_.push_back(std::move(d));
        }
    }
    return kExitOk;
}

int Daemon::add_zones() {
    for (const ZoneConfig &z : cfg_.zones) {
        hvio_zone_add za{};
        za.zone_id = z.id;
        za.flags = HVIO_ZONE_F_REUSE;
        za.nr_regions = static_cast<uint32_t>(z.regions.size());
        for (size_t i = 0; i < z.regions.size(); i++) {
            za.regions[i].zone0_ipa = z.regions[i].zone0_ipa;
            za.regions[i].zonex_ipa = z.regions[i].zonex_ipa;
            za.regions[i].size = z.regions[i].size;
        }
        auto r = ctl_->zone_add(za);
        if (!r) {
            std::fprintf(stderr, "hvio: zone %u (%s): HVIO_ZONE_ADD: %s%s\n", z.id,
                         z.where.empty() ? "the file" : z.where.c_str(), r.message().c_str(),
                         zone_add_hint(r.error()));
            return kExitError;
        }
        if (*r)
            log_line(LogLevel::kInfo, "zone %u: registered already (an earlier daemon's)", z.id);
        zones_added_.push_back(z.id);
    }
    return kExitOk;
}

// Zone RAM, through the device fd: the only guest memory I/O may touch.
int Daemon::map_zone_ram(const DeviceFd &dev, uint32_t zone_id, const std::string &where,
                         std::vector<Mapping> &ram, GuestMemory &mem, std::vector<uint8_t> *modes) {
    // How hvio.ko maps each region, in HVIO_ZONE_ADD (= config) order.  A
    // kernel that does not say (0) is tried: O_DIRECT learns from EFAULT.
    auto info = dev.info();
    for (const ZoneConfig &z : cfg_.zones) {
        if (z.id != zone_id)
            continue;
        for (size_t i = 0; i < z.regions.size(); i++) {
            const MemRegionConfig &m = z.regions[i];
            const uint8_t mode = info && i < HVIO_MAX_REGIONS ? info->ram_mode[i] : 0;
            if (modes)
                modes->push_back(mode);
            auto map = dev.map_ram(m.zonex_ipa, m.size);
            if (!map) {
                std::fprintf(stderr, "hvio: %s: mmap of zone RAM [0x%llx, +0x%llx): %s\n",
                             where.c_str(), static_cast<unsigned long long>(m.zonex_ipa),
                             static_cast<unsigned long long>(m.size), map.message().c_str());
                return kExitError;
            }
            mem.add(m.zonex_ipa, m.size, map->get(), mode != HVIO_RAM_PFNMAP);
            ram.push_back(std::move(*map));
        }
    }
    return kExitOk;
}

// Takes over the orphan an earlier daemon left at the device's window, or
// creates the device (recoverable).  An orphan must be the device dc
// describes: same type, window, interrupt, queues and offered features.
int Daemon::open_device(const hvio_dev_create &dc, const std::string &where, DeviceFd &dev,
                        bool &reattached) {
    const char *w = where.c_str();
    // A daemon that was just killed holds its devices until its last
    // thread (io_uring workers included) is gone: give it a moment.
    auto att = ctl_->dev_attach(dc.zone_id, dc.mmio_base);
    for (int i = 0; !att && att.error() == EBUSY && i < kAttachRetries; i++) {
        std::this_thread::sleep_for(kAttachRetryDelay);
        att = ctl_->dev_attach(dc.zone_id, dc.mmio_base);
    }
    if (att) {
        DeviceFd old(std::move(*att));
        auto info = old.info();
        if (!info) {
            std::fprintf(stderr, "hvio: %s: HVIO_DEV_GET_INFO: %s\n", w, info.message().c_str());
            return kExitError;
        }
        if (info->device_id != dc.device_id || info->mmio_len != dc.mmio_len ||
            info->irq != dc.irq || info->num_queues != dc.num_queues ||
            info->queue_size_max != dc.queue_size_max || info->device_features != dc.features) {
            std::fprintf(stderr,
                         "hvio: %s: the device an earlier daemon left at 0x%llx is not the one "
                         "the config describes (type, window, irq, queues or features differ); "
                         "remove it with `hvio stop CONFIG` first\n",
                         w, static_cast<unsigned long long>(dc.mmio_base));
            return kExitError;
        }
        dev = std::move(old);
        reattached = true;
        log_line(LogLevel::kInfo, "%s: taken over from an earlier daemon", w);
        return kExitOk;
    }
    if (att.error() != ENOENT) {
        std::fprintf(stderr, "hvio: %s: HVIO_DEV_ATTACH: %s%s\n", w, att.message().c_str(),
                     att.error() == EBUSY ? " (another hvio serves this device)" : "");
        return kExitError;
    }
    hvio_dev_create rc = dc;
    rc.flags |= HVIO_DEV_F_RECOVERABLE;
    auto fd = ctl_->dev_create(rc);
    if (!fd) {
        std::fprintf(stderr, "hvio: %s: HVIO_DEV_CREATE: %s%s\n", w, fd.message().c_str(),
                     dev_create_hint(fd.error()));
        return kExitError;
    }
    dev = DeviceFd(std::move(*fd));
    return kExitOk;
}

// Polling is a speed-up: a module without it (ENOTTY) serves the device
// all the same.  Set on every start, so a takeover applies the new config.
void Daemon::set_poll(const DeviceFd &dev, unsigned poll_us, const std::string &where) {
    if (auto r = dev.set_poll(poll_us); !r && poll_us)
        std::fprintf(stderr, "hvio: %s: poll_us %u not applied: HVIO_DEV_SET_POLL: %s%s\n",
                     where.c_str(), poll_us, r.message().c_str(),
                     r.error() == ENOTTY ? " (this hvio.ko cannot poll)" : "");
}

// Orphans in the config's zones that no configured device took over: the
// config no longer has them, so they go.
void Daemon::remove_stale_orphans() {
    for (const ZoneConfig &z : cfg_.zones) {
        for (;;) {
            auto att = ctl_->dev_attach(z.id, HVIO_ATTACH_ANY);
            if (!att)
                break;
            DeviceFd dev(std::move(*att));
            auto info = dev.info();
            (void)dev.destroy_on_close();
            std::fprintf(stderr,
                         "hvio: zone %u: removed the device at 0x%llx (not in the config)\n", z.id,
                         info ? static_cast<unsigned long long>(info->mmio_base) : 0ULL);
        }
    }
}

int Daemon::create_device(BlkDevice &d) {
    const BlkDeviceConfig &c = *d.cfg;
    const char *w = d.target.where.c_str();
    std::vector<uint8_t> config = blk_config_space(c, d.img);

    hvio_dev_create dc{};
    dc.zone_id = d.zone_id;
    dc.device_id = VIRTIO_ID_BLOCK;
    dc.mmio_base = c.addr;
    dc.mmio_len = c.len;
    dc.irq = c.irq;
    dc.num_queues = static_cast<uint16_t>(c.queues);
    dc.queue_size_max = c.queue_size;
    dc.config_len = static_cast<uint32_t>(config.size());
    dc.features = blk_features(c);
    dc.config_addr = reinterpret_cast<uintptr_t>(config.data());
    std::memcpy(dc.serial, c.serial.data(), std::min(c.serial.size(), sizeof(dc.serial)));
    if (int r = open_device(dc, d.target.where, d.dev, d.reattached))
        return r;
    set_poll(d.dev, c.poll_us, d.target.where);

    if (int r = map_zone_ram(d.dev, d.zone_id, d.target.where, d.ram, d.mem, &d.ram_modes))
        return r;

    for (uint16_t q = 0; q < c.queues; q++) {
        auto rt = std::make_unique<QueueRt>();
        // Blocking eventfd: io_uring reads of a non-blocking one fail with
        // EAGAIN instead of waiting.
        rt->efd.reset(::eventfd(0, EFD_CLOEXEC));
        if (!rt->efd) {
            std::fprintf(stderr, "hvio: %s: eventfd: %s\n", w, std::strerror(errno));
            return kExitError;
        }
        auto ops = d.dev.map_ops(q, c.queue_size);
        if (!ops) {
            std::fprintf(stderr, "hvio: %s: mmap of queue %u's op slots: %s\n", w, q,
                         ops.message().c_str());
            return kExitError;
        }
        rt->ops = std::move(*ops);
        if (auto r = d.dev.set_queue_eventfd(q, rt->efd.get()); !r) {
            std::fprintf(stderr, "hvio: %s: HVIO_DEV_SET_QUEUE_EVENTFD: %s\n", w,
                         r.message().c_str());
            return kExitError;
        }
        // One empty QUEUE_RUN: a kernel without the queue engine fails here,
        // before "ready", not in the queue thread.
        hvio_queue_run probe{};
        probe.queue = q;
        if (auto r = d.dev.queue_run(probe); !r) {
            std::fprintf(stderr, "hvio: %s: HVIO_DEV_QUEUE_RUN: %s%s\n", w, r.message().c_str(),
                         r.error() == ENOTTY ? " (this hvio.ko has no queue engine)" : "");
            return kExitError;
        }
        rt->backend = std::make_unique<DeviceQueueBackend>(d.dev, rt->ops, q);
        rt->queue = std::make_unique<BlkQueue>(*rt->backend, d.target, d.mem, q, c.queue_size,
                                               rt->efd.get(), stop_);
        if (auto r = rt->queue->init(); !r) {
            std::fprintf(stderr, "hvio: %s: io_uring setup: %s\n", w, r.message().c_str());
            return kExitError;
        }
        d.queues.push_back(std::move(rt));
    }
    return kExitOk;
}

int Daemon::create_net_device(NetDevice &d) {
    const NetDeviceConfig &c = *d.cfg;
    const char *w = d.where.c_str();
    std::vector<uint8_t> config = net_config_space(c, net_link_status(d.tap.flags));

    hvio_dev_create dc{};
    dc.zone_id = d.zone_id;
    dc.device_id = VIRTIO_ID_NET;
    dc.mmio_base = c.addr;
    dc.mmio_len = c.len;
    dc.irq = c.irq;
    dc.num_queues = 2;
    dc.queue_size_max = c.queue_size;
    dc.config_len = static_cast<uint32_t>(config.size());
    dc.features = net_features(c);
    dc.config_addr = reinterpret_cast<uintptr_t>(config.data());
    if (int r = open_device(dc, d.where, d.dev, d.reattached))
        return r;
    set_poll(d.dev, c.poll_us, d.where);
    if (int r = map_zone_ram(d.dev, d.zone_id, d.where, d.ram, d.mem))
        return r;

    for (uint16_t q = 0; q < 2; q++) {
        const char *name = q == HVIO_NET_RX_QUEUE ? "RX" : "TX";
        // Blocking eventfd, as for blk: io_uring reads of it wait.
        d.efd[q].reset(::eventfd(0, EFD_CLOEXEC));
        if (!d.efd[q]) {
            std::fprintf(stderr, "hvio: %s: eventfd: %s\n", w, std::strerror(errno));
            return kExitError;
        }
        auto ops = d.dev.map_ops(q, c.queue_size);
        if (!ops) {
            std::fprintf(stderr, "hvio: %s: mmap of the %s queue's op slots: %s\n", w, name,
                         ops.message().c_str());
            return kExitError;
        }
        d.ops[q] = std::move(*ops);
        if (auto r = d.dev.set_queue_eventfd(q, d.efd[q].get()); !r) {
            std::fprintf(stderr, "hvio: %s: HVIO_DEV_SET_QUEUE_EVENTFD (%s): %s\n", w, name,
                         r.message().c_str());
            return kExitError;
        }
        hvio_queue_run probe{};
        probe.queue = q;
        if (auto r = d.dev.queue_run(probe); !r) {
            std::fprintf(stderr, "hvio: %s: HVIO_DEV_QUEUE_RUN (%s): %s%s\n", w, name,
                         r.message().c_str(),
                         r.error() == ENOTTY       ? " (this hvio.ko has no queue engine)"
                         : r.error() == EOPNOTSUPP ? " (this hvio.ko cannot run virtio-net queues)"
                                                   : "");
            return kExitError;
        }
    }
    d.backend = std::make_unique<DeviceNetBackend>(d.dev, d.ops, d.tap.fd.get(), d.tap.name);
    NetQueueFds fds;
    fds.tap = d.tap.fd.get();
    fds.rx_kick = d.efd[HVIO_NET_RX_QUEUE].get();
    fds.tx_kick = d.efd[HVIO_NET_TX_QUEUE].get();
    fds.dev = d.dev.fd();
    fds.link = d.link.get();
    fds.ifindex = d.tap.ifindex;
    d.queue = std::make_unique<NetQueue>(*d.backend, d.mem, c.queue_size, fds, d.tap.flags, stop_,
                                         d.where);
    if (auto r = d.queue->init(); !r) {
        std::fprintf(stderr, "hvio: %s: io_uring setup: %s\n", w, r.message().c_str());
        return kExitError;
    }
    if (d.reattached)
        d.queue->taken_over();
    return kExitOk;
}

int Daemon::create_console_device(ConsoleDevice &d) {
    const ConsoleDeviceConfig &c = *d.cfg;
    const char *w = d.where.c_str();
    virtio_console_config config{};
    uint16_t cols = 0, rows = 0;
    if (d.pty.master)
        d.pty.window(&cols, &rows);
    config.cols = cols;
    config.rows = rows;

    hvio_dev_create dc{};
    dc.zone_id = d.zone_id;
    dc.device_id = VIRTIO_ID_CONSOLE;
    dc.mmio_base = c.addr;
    dc.mmio_len = c.len;
    dc.irq = c.irq;
    dc.num_queues = 2;
    dc.queue_size_max = c.queue_size;
    dc.config_len = sizeof(config);
    dc.features = kConsoleFeatures;
    dc.config_addr = reinterpret_cast<uintptr_t>(&config);
    if (int r = open_device(dc, d.where, d.dev, d.reattached))
        return r;
    if (int r = map_zone_ram(d.dev, d.zone_id, d.where, d.ram, d.mem))
        return r;
    for (uint16_t q = 0; q < 2; q++) {
        auto ops = d.dev.map_ops(q, c.queue_size);
        if (!ops) {
            std::fprintf(stderr, "hvio: %s: mmap of queue %u's op slots: %s\n", w, q,
                         ops.message().c_str());
            return kExitError;
        }
        d.ops[q] = std::move(*ops);
    }
    const bool sock = d.socket.listen.valid();
    d.queue = std::make_unique<ConsoleQueue>(
        d.dev.fd(), static_cast<const hvio_op *>(d.ops[kConsoleRxQueue].get()),
        static_cast<const hvio_op *>(d.ops[kConsoleTxQueue].get()), d.mem, c.queue_size,
        sock ? d.socket.listen.get() : d.pty.master.get(), sock, stop_, d.where);
    if (!sock)
        d.queue->watch_size(d.pty.slave.get(), cols, rows, [&d](uint16_t cs, uint16_t rs) {
            // cols, then rows: the first 4 bytes of virtio_console_config
            const uint16_t v[2] = {htole16(cs), htole16(rs)};
            auto r = d.dev.set_config(0, v, sizeof(v), HVIO_CONFIG_F_NOTIFY);
            return r ? 0 : -r.error();
        });
    if (sock)
        std::printf("hvio: %s: console on socket %s\n", w, d.socket.path.c_str());
    else
        std::printf("hvio: %s: console on %s%s%s%s\n", w, d.pty.path.c_str(),
                    d.pty.link.empty() ? "" : " (link ", d.pty.link.c_str(),
                    d.pty.link.empty() ? "" : ")");
    return kExitOk;
}

int Daemon::start_threads() {
    for (auto &d : devs_) {
        for (auto &rt : d->queues) {
            QueueRt *q = rt.get();
            BlkDevice *dev = d.get();
            q->thread = std::thread([this, q, dev] {
                q->result = q->queue->run();
                thread_done(q->result,
                            dev->target.where + " queue " + std::to_string(q->queue->index()));
            });
            char name[16];
            std::snprintf(name, sizeof(name), "hvio-z%ud%zuq%u", d->zone_id,
                          static_cast<size_t>(&d - devs_.data()), q->queue->index());
            pthread_setname_np(q->thread.native_handle(), name);
        }
    }
    for (auto &n : nets_) {
        NetDevice *d = n.get();
        d->thread = std::thread([this, d] {
            d->result = d->queue->run();
            thread_done(d->result, d->where);
        });
        char name[16];
        std::snprintf(name, sizeof(name), "hvio-z%un%zu", d->zone_id,
                      static_cast<size_t>(&n - nets_.data()));
        pthread_setname_np(d->thread.native_handle(), name);
    }
    for (auto &cd : cons_) {
        ConsoleDevice *d = cd.get();
        d->thread = std::thread([this, d] {
            d->result = d->queue->run();
            thread_done(d->result, d->where);
        });
        char name[16];
        std::snprintf(name, sizeof(name), "hvio-z%uc%zu", d->zone_id,
                      static_cast<size_t>(&cd - cons_.data()));
        pthread_setname_np(d->thread.native_handle(), name);
    }
    return kExitOk;
}

// A queue thread's run() returned (on its own only after a fatal error).
void Daemon::thread_done(int result, const std::string &what) {
    uint64_t one = 1;
    if (result < 0) {
        std::fprintf(stderr, "hvio: %s: %s; stopping\n", what.c_str(), std::strerror(-result));
        (void)!::write(fatal_efd_.get(), &one, sizeof(one));
    }
    threads_done_.fetch_add(1, std::memory_order_release);
    (void)!::write(done_efd_.get(), &one, sizeof(one));
}

// The next signal: SIGTERM or SIGINT (returned), SIGHUP (ignored, 0
// returned), or none readable (0).
int read_signal(int sigfd) {
    signalfd_siginfo si;
    if (::read(sigfd, &si, sizeof(si)) != sizeof(si))
        return 0;
    const int sig = static_cast<int>(si.ssi_signo);
    if (sig == SIGHUP) {
        log_line(LogLevel::kInfo, "SIGHUP ignored (SIGTERM stops the daemon)");
        return 0;
    }
    return sig;
}

void Daemon::wait_for_stop() {
    for (;;) {
        pollfd p[2] = {{sigfd_.get(), POLLIN, 0}, {fatal_efd_.get(), POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (p[0].revents) {
            if (int sig = read_signal(sigfd_.get())) {
                std::string limit = drain_timeout_s_
                                        ? "at most " + std::to_string(drain_timeout_s_) + " s"
                                        : "no time limit";
                log_line(LogLevel::kInfo,
                         "%s: finishing I/O in flight (%s; a second SIGTERM or SIGINT exits at "
                         "once), then exiting",
                         strsignal(sig), limit.c_str());
                return;
            }
        }
        if (p[1].revents)
            return;
    }
}

// What the queues still have in flight, for the last words of exit_now().
std::string Daemon::in_flight() {
    std::string out;
    auto add = [&out](const std::string &what, uint64_t n, const char *unit) {
        if (!n)
            return;
        out += (out.empty() ? "" : ", ") + what + ": " + std::to_string(n) + " " + unit;
    };
    for (const auto &d : devs_)
        for (const auto &q : d->queues)
            if (q->thread.joinable())
                add(d->target.where + " queue " + std::to_string(q->queue->index()),
                    q->queue->counters().inflight.load(), "ops in flight");
    for (const auto &n : nets_) {
        if (!n->thread.joinable())
            continue;
        const NetCounters &c = n->queue->counters();
        add(n->where + " TX", c.tx_inflight.load(), "ops in flight");
        add(n->where + " RX", c.rx_armed.load(), "buffers armed");
    }
    for (const auto &d : cons_) {
        if (!d->thread.joinable())
            continue;
        add(d->where + " TX", d->queue->counters().tx_held.load(), "ops in flight");
        add(d->where + " RX", d->queue->counters().rx_held.load(), "buffers held");
    }
    return out.empty() ? "no op counted, a queue thread is stuck" : out;
}

// Ends the process without waiting for the queues: their devices are not
// destroyed, so the kernel keeps them for the next `hvio run` (recovery),
// which hands it the ops still in flight.
void Daemon::exit_now(const char *why) {
    std::fprintf(stderr,
                 "hvio: %s: exiting now with I/O in flight (%s); the devices stay for the next "
                 "`hvio run` (or `hvio stop CONFIG`)\n",
                 why, in_flight().c_str());
    status_.stop();
    std::fflush(nullptr);
    std::_Exit(kExitError);
}

int Daemon::stop_and_drain() {
    (void)notify_.stopping();
    stop_.store(true, std::memory_order_release);
    for (auto &d : devs_)
        for (auto &q : d->queues) {
            // The QUEUE_RUN loop sleeps on the eventfd, the io_uring loop
            // on its parked FETCH.
            uint64_t one = 1;
            (void)!::write(q->efd.get(), &one, sizeof(one));
            (void)q->backend->unpark();
        }
    for (auto &n : nets_) {
        for (auto &efd : n->efd) {
            uint64_t one = 1;
            if (efd)
                (void)!::write(efd.get(), &one, sizeof(one));
        }
        for (uint16_t q = 0; q < 2 && n->backend; q++)
            (void)n->backend->unpark(q);
    }
    for (auto &d : cons_)
        for (uint16_t q = 0; q < 2 && d->queue; q++)
            (void)d->dev.queue_unpark(q);
    // Wait for the queues while still reading signals: a second SIGTERM or
    // SIGINT, or the drain timeout, ends the process now.
    unsigned threads = 0;
    for (auto &d : devs_)
        for (auto &q : d->queues)
            threads += q->thread.joinable();
    for (auto &n : nets_)
        threads += n->thread.joinable();
    for (auto &d : cons_)
        threads += d->thread.joinable();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(drain_timeout_s_);
    while (threads_done_.load(std::memory_order_acquire) < threads) {
        int ms = -1;
        if (drain_timeout_s_) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                std::string why = "drain timeout (" + std::to_string(drain_timeout_s_) + " s)";
                exit_now(why.c_str());
            }
            ms = static_cast<int>(left.count());
        }
        pollfd p[2] = {{sigfd_.get(), POLLIN, 0}, {done_efd_.get(), POLLIN, 0}};
        if (::poll(p, 2, ms) < 0 && errno != EINTR)
            break;
        if (p[0].revents & POLLIN)
            if (int sig = read_signal(sigfd_.get())) {
                std::string why = std::string(strsignal(sig)) + " again";
                exit_now(why.c_str());
            }
        if (p[1].revents & POLLIN) {
            uint64_t n;
            (void)!::read(done_efd_.get(), &n, sizeof(n));
        }
    }
    int ret = kExitOk;
    for (auto &d : devs_)
        for (auto &q : d->queues) {
            if (q->thread.joinable())
                q->thread.join();
            if (q->result < 0)
                ret = kExitError;
        }
    for (auto &n : nets_) {
        if (n->thread.joinable())
            n->thread.join();
        if (n->result < 0)
            ret = kExitError;
    }
    for (auto &d : cons_) {
        if (d->thread.joinable())
            d->thread.join();
        if (d->result < 0)
            ret = kExitError;
    }
    return ret;
}

// Undo what startup did, in reverse: devices (mappings, then fds), then
// zones, then the socket.  Safe to call twice.
void Daemon::teardown() {
    status_.stop();
    bool running = false;
    for (auto &d : devs_)
        for (auto &q : d->queues)
            running |= q->thread.joinable();
    for (auto &n : nets_)
        running |= n->thread.joinable();
    for (auto &d : cons_)
        running |= d->thread.joinable();
    if (running)
        stop_and_drain();
    // After startup every device goes; a failed startup leaves the orphans
    // it took over for the next try (the guest still has them).
    bool kept = false;
    auto settle = [&](const DeviceFd &dev, bool reattached) {
        if (dev.fd() < 0)
            return;
        if (ready_ || !reattached)
            (void)dev.destroy_on_close();
        else
            kept = true;
    };
    for (auto &d : devs_)
        settle(d->dev, d->reattached);
    for (auto &n : nets_) {
        settle(n->dev, n->reattached);
        // A TAP hvio created goes with its device (kept with an orphan).
        if (int r = ready_ || !n->reattached ? tap_release(n->tap) : 0; r < 0)
            std::fprintf(stderr, "hvio: %s: TUNSETPERSIST 0 on %s: %s\n", n->where.c_str(),
                         n->tap.name.c_str(), std::strerror(-r));
    }
    for (auto &d : cons_) {
        settle(d->dev, d->reattached);
        d->pty.remove_link();
        d->socket.remove();
    }
    devs_.clear();
    nets_.clear();
    cons_.clear();
    if (ctl_ && kept)
        zones_added_.clear(); // they hold the orphans
    if (ctl_) {
        for (auto it = zones_added_.rbegin(); it != zones_added_.rend(); ++it)
            if (auto r = ctl_->zone_del(*it); !r)
                std::fprintf(stderr, "hvio: zone %u: HVIO_ZONE_DEL: %s\n", *it,
                             r.message().c_str());
        zones_added_.clear();
    }
}

json dev_stats_json(const hvio_dev_stats &s) {
    return json{{"reg_reads", s.reg_reads},
                {"reg_writes", s.reg_writes},
                {"notifies", s.notifies},
                {"irqs", s.irqs},
                {"resets", s.resets},
                {"bad_width", s.bad_width},
                {"bad_offset", s.bad_offset},
                {"bad_queue", s.bad_queue},
                {"bad_state", s.bad_state},
                {"features_refused", s.features_refused},
                {"queue_refused", s.queue_refused},
                {"config_writes", s.config_writes},
                {"reset_waits", s.reset_waits},
                {"reset_timeouts", s.reset_timeouts},
                {"poll_ns", s.poll_ns}};
}

json queue_stats_json(const hvio_queue_stats &s, bool net = false) {
    json vq = json::array();
    for (uint64_t v : s.vq_errors)
        vq.push_back(v);
    json j{{"kicks", s.kicks},
           {"reqs", s.reqs},
           {"ops", s.ops},
           {"done_in_kernel", s.done_in_kernel},
           {"completed", s.completed},
           {"stale", s.stale},
           {"irqs", s.irqs},
           {"irqs_suppressed", s.irqs_suppressed},
           {"bad_request", s.bad_request},
           {"poll_hits", s.poll_hits},
           {"vq_errors", vq}};
    if (net) {
        j["packets"] = s.packets;
        j["bytes"] = s.bytes;
        j["errors"] = s.errors;
        j["rx_dropped"] = s.rx_dropped;
        j["rx_chains"] = s.rx_chains;
        j["budget_stops"] = s.budget_stops;
    }
    return j;
}

// The kernel's counters and request latencies of queue @q into @qj.
void add_kernel_queue_json(json &qj, const DeviceFd &dev, uint16_t q, bool net) {
    if (auto ks = dev.queue_stats(q))
        qj["kernel"] = queue_stats_json(*ks, net);
    else
        qj["kernel_error"] = ks.message();
    if (auto lat = dev.queue_latency(q))
        qj["latency"] = latency_json(*lat);
}

// Which loop serves a queue (kPath*).
const char *path_name(int path) {
    return path == kPathUring ? "uring" : path == kPathQueueRun ? "queue_run" : "starting";
}

json net_counters_json(const NetCounters &c) {
    auto v = [](const auto &a) { return a.load(std::memory_order_relaxed); };
    // "dev_events" first: tests find the net counters after it.
    return json{{"dev_events", v(c.dev_events)},
                {"path", path_name(v(c.path))},
                {"ring", v(c.ring_mode)},
                {"runs", v(c.runs)},
                {"fetches", v(c.fetches)},
                {"commits", v(c.commits)},
                {"wakeups", v(c.wakeups)},
                {"tx_packets", v(c.tx_packets)},
                {"tx_bytes", v(c.tx_bytes)},
                {"tx_errors", v(c.tx_errors)},
                {"rx_packets", v(c.rx_packets)},
                {"rx_bytes", v(c.rx_bytes)},
                {"rx_truncated", v(c.rx_truncated)},
                {"rx_errors", v(c.rx_errors)},
                {"rx_canceled", v(c.rx_canceled)},
                {"rx_csum_fixed", v(c.rx_csum_fixed)},
                {"rx_offload_dropped", v(c.rx_offload_dropped)},
                {"eagain", v(c.eagain)},
                {"rx_reads", v(c.rx_reads)},
                {"rx_rounds", v(c.rx_rounds)},
                {"rx_batch", v(c.rx_batch)},
                {"syscalls", v(c.syscalls)},
                {"enters", v(c.enters)},
                {"ioctls", v(c.ioctls)},
                {"waits", v(c.waits)},
                {"polls", v(c.polls)},
                {"link_changes", v(c.link_changes)},
                {"offload_sets", v(c.offload_sets)},
                {"resets", v(c.resets)},
                {"rx_armed", v(c.rx_armed)},
                {"tx_inflight", v(c.tx_inflight)},
                {"last_error", v(c.last_error)}};
}

json counters_json(const QueueCounters &c) {
    auto v = [](const std::atomic<uint64_t> &a) { return a.load(std::memory_order_relaxed); };
    const int path = c.path.load(std::memory_order_relaxed);
    return json{{"path", path_name(path)},
                {"ring", c.ring_mode.load(std::memory_order_relaxed)},
                {"syscalls", v(c.runs) + v(c.enters)},
                {"enters", v(c.enters)},
                {"fetches", v(c.fetches)},
                {"commits", v(c.commits)},
                {"runs", v(c.runs)},
                {"wakeups", v(c.wakeups)},
                {"ops", v(c.ops)},
                {"reads", v(c.reads)},
                {"writes", v(c.writes)},
                {"flushes", v(c.flushes)},
                {"discards", v(c.discards)},
                {"write_zeroes", v(c.write_zeroes)},
                {"other", v(c.other)},
                {"errors", v(c.errors)},
                {"last_error", c.last_error.load(std::memory_order_relaxed)},
                {"bytes_read", v(c.bytes_read)},
                {"bytes_written", v(c.bytes_written)},
                {"resubmits", v(c.resubmits)},
                {"inflight", v(c.inflight)},
                {"stale", v(c.stale)},
                {"offloaded", v(c.offloaded)}};
}

// Reads and writes of a direct device that went through the page cache,
// by reason (total under "total").
json direct_fallbacks_json(const BlkTarget &t) {
    json j;
    uint64_t total = 0;
    for (unsigned i = 0; i < kFallbackCount; i++) {
        uint64_t n = t.fallbacks[i].load(std::memory_order_relaxed);
        j[blk_fallback_name(i)] = n;
        total += n;
    }
    j["total"] = total;
    return j;
}

json ram_modes_json(const std::vector<uint8_t> &modes) {
    static const char *const names[] = {"unknown", "pfnmap", "pages", "devmap"};
    json a = json::array();
    for (uint8_t m : modes)
        a.push_back(m < std::size(names) ? names[m] : "?");
    return a;
}

// The kernel's view of a device for `hvio status`: state as the guest set
// it up, and the device counters.
void add_device_state(json &j, const DeviceFd &dev, unsigned nq) {
    if (auto info = dev.info()) {
        json qs = json::array();
        for (unsigned q = 0; q < nq; q++)
            qs.push_back({{"num", info->queues[q].num}, {"ready", info->queues[q].ready}});
        j["info"] = {{"status", info->status},
                     {"device_features", info->device_features},
                     {"driver_features", info->driver_features},
                     {"generation", info->generation},
                     {"interrupt_status", info->interrupt_status},
                     {"queues", qs}};
    } else {
        j["info_error"] = info.message();
    }
    if (auto st = dev.stats())
        j["stats"] = dev_stats_json(*st);
    else
        j["stats_error"] = st.message();
}

std::string Daemon::report() {
    json devs = json::array();
    for (const auto &d : devs_) {
        const BlkDeviceConfig &c = *d->cfg;
        json j{{"where", c.where},
               {"zone", d->zone_id},
               {"type", "blk"},
               {"mmio_base", c.addr},
               {"mmio_len", c.len},
               {"irq", c.irq},
               {"img", c.path},
               {"size", d->img.size},
               {"block_device", d->img.block_device},
               {"readonly", c.readonly},
               {"direct", c.direct},
               {"poll_us", c.poll_us},
               {"buffered_fallback", d->target.use_buffered.load()},
               {"direct_fallbacks", direct_fallbacks_json(d->target)},
               {"ram_modes", ram_modes_json(d->ram_modes)},
               {"discard", c.discard},
               {"serial", c.serial},
               {"reattached", d->reattached},
               {"blk_size", d->img.blk_size},
               {"queue_size", c.queue_size}};
        add_device_state(j, d->dev, c.queues);
        json queues = json::array();
        for (const auto &q : d->queues) {
            json qj{{"index", q->queue->index()}};
            add_kernel_queue_json(qj, d->dev, q->queue->index(), false);
            qj["daemon"] = counters_json(q->queue->counters());
            queues.push_back(std::move(qj));
        }
        j["queues"] = std::move(queues);
        devs.push_back(std::move(j));
    }
    for (const auto &d : nets_) {
        const NetDeviceConfig &c = *d->cfg;
        const NetCounters &nc = d->queue->counters();
        json j{{"where", c.where},
               {"zone", d->zone_id},
               {"type", "net"},
               {"mmio_base", c.addr},
               {"mmio_len", c.len},
               {"irq", c.irq},
               {"tap", d->tap.name},
               {"ifindex", d->tap.ifindex},
               {"reattached", d->reattached},
               {"mac", mac_text(c.mac)},
               {"mtu", c.mtu},
               {"offloads", c.offloads},
               {"mrg_rxbuf", c.mrg_rxbuf},
               {"poll_us", c.poll_us},
               {"link", nc.link_status.load() & kNetSLinkUp ? "up" : "down"},
               {"tun_offload", nc.offload_flags.load()},
               {"queue_size", c.queue_size}};
        add_device_state(j, d->dev, 2);
        json queues = json::array();
        for (uint16_t q = 0; q < 2; q++) {
            json qj{{"index", q}, {"name", q == HVIO_NET_RX_QUEUE ? "rx" : "tx"}};
            add_kernel_queue_json(qj, d->dev, q, true);
            queues.push_back(std::move(qj));
        }
        j["queues"] = std::move(queues);
        j["daemon"] = net_counters_json(nc);
        devs.push_back(std::move(j));
    }
    for (const auto &d : cons_) {
        const ConsoleDeviceConfig &c = *d->cfg;
        const ConsoleCounters &cc = d->queue->counters();
        auto v = [](const std::atomic<uint64_t> &a) { return a.load(std::memory_order_relaxed); };
        json j{{"where", c.where},          {"zone", d->zone_id},
               {"type", "console"},         {"mmio_base", c.addr},
               {"mmio_len", c.len},         {"irq", c.irq},
               {"pty", d->pty.path},        {"link", d->pty.link},
               {"socket", d->socket.path},  {"reattached", d->reattached},
               {"queue_size", c.queue_size}};
        add_device_state(j, d->dev, 2);
        json queues = json::array();
        for (uint16_t q = 0; q < 2; q++) {
            json qj{{"index", q}, {"name", q == kConsoleRxQueue ? "rx" : "tx"}};
            add_kernel_queue_json(qj, d->dev, q, true);
            queues.push_back(std::move(qj));
        }
        j["queues"] = std::move(queues);
        j["daemon"] = json{{"fetches", v(cc.fetches)},
                           {"commits", v(cc.commits)},
                           {"enters", v(cc.enters)},
                           {"tx_ops", v(cc.tx_ops)},
                           {"tx_bytes", v(cc.tx_bytes)},
                           {"tx_short", v(cc.tx_short)},
                           {"tx_eagain", v(cc.tx_eagain)},
                           {"rx_ops", v(cc.rx_ops)},
                           {"rx_bytes", v(cc.rx_bytes)},
                           {"errors", v(cc.errors)},
                           {"stale", v(cc.stale)},
                           {"resets", v(cc.resets)},
                           {"tx_held", v(cc.tx_held)},
                           {"rx_held", v(cc.rx_held)},
                           {"clients", v(cc.clients)},
                           {"size_changes", v(cc.size_changes)},
                           {"connected", cc.connected.load(std::memory_order_relaxed)},
                           {"last_error", cc.last_error.load(std::memory_order_relaxed)}};
        devs.push_back(std::move(j));
    }
    auto up = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                               started_);
    json zones = json::array();
    for (const ZoneConfig &z : cfg_.zones)
        zones.push_back(z.id);
    std::string config = config_path_;
    if (char *real = ::realpath(config_path_.c_str(), nullptr)) {
        config = real;
        std::free(real);
    }
    json root{{"pid", ::getpid()},
              {"config", config},
              {"uptime_s", up.count()},
              {"zones", zones},
              {"devices", devs}};
    root["drain_timeout_s"] = drain_timeout_s_; // what `hvio stop` waits for
    // Paths are bytes, not necessarily UTF-8: what is not becomes U+FFFD
    // instead of an exception.
    return root.dump(1, ' ', false, json::error_handler_t::replace) + "\n";
}

// The config, its warnings, the images: what run() and check() share.
int Daemon::load() {
    ConfigResult parsed = load_config(config_path_);
    if (!parsed)
        return fail_config(parsed.error().where, parsed.error().what);
    cfg_ = std::move(parsed.value());
    for (const std::string &w : cfg_.warnings)
        log_line(LogLevel::kWarning, "%s: %s", config_path_.c_str(), w.c_str());
    return open_images();
}

// The config against the loaded hvio.ko's API version and limits.
int Daemon::check_limits(const hvio_version &ver) {
    if (ver.api_version != HVIO_API_VERSION) {
        std::fprintf(stderr, "hvio: hvio.ko speaks api version %u, this daemon %u\n",
                     ver.api_version, HVIO_API_VERSION);
        return kExitError;
    }
    for (const ZoneConfig &z : cfg_.zones)
        for (const BlkDeviceConfig &c : z.blk)
            if (c.queue_size > ver.max_queue_size || c.queues > ver.max_queues) {
                std::fprintf(stderr,
                             "hvio: %s: queues/queue_size beyond hvio.ko's limits (%u x %u)\n",
                             c.where.c_str(), ver.max_queues, ver.max_queue_size);
                return kExitError;
            }
    for (const ZoneConfig &z : cfg_.zones)
        for (const NetDeviceConfig &c : z.net)
            if (c.queue_size > ver.max_queue_size || ver.max_queues < 2) {
                std::fprintf(stderr, "hvio: %s: queue_size beyond hvio.ko's limits (%u x %u)\n",
                             c.where.c_str(), ver.max_queues, ver.max_queue_size);
                return kExitError;
            }
    return kExitOk;
}

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

    // Signals arrive through a signalfd, in the main thread only: block
    // them before any thread starts (threads inherit the mask).
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    sigfd_.reset(::signalfd(-1, &set, SFD_CLOEXEC));
    fatal_efd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    done_efd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!sigfd_ || !fatal_efd_ || !done_efd_) {
        std::fprintf(stderr, "hvio: signalfd/eventfd: %s\n", std::strerror(errno));
        return kExitError;
    }

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

} // namespace

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
