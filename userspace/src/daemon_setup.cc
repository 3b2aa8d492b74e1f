// SPDX-License-Identifier: GPL-2.0
//
// The daemon's startup, before its threads: the config and its checks
// against hvio.ko, images, TAPs and consoles, zones, and each device
// created or taken over from a dead daemon, with its RAM, op slots and
// eventfds; the hints that explain the kernel's errnos.
#include "daemon.h"
#include "log.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <endian.h>
#include <linux/virtio_config.h>
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>
#include <net/if.h>
#include <sys/eventfd.h>
#include <thread>

namespace hvio {

namespace {

// How long to wait for a dying daemon to let go of a device: 5 s.
constexpr int kAttachRetries = 100;
constexpr auto kAttachRetryDelay = std::chrono::milliseconds(50);

// What the console offers: SIZE, the ring features, VERSION_1.
constexpr uint64_t kConsoleFeatures =
    (1ULL << VIRTIO_CONSOLE_F_SIZE) | (1ULL << 28) /* VIRTIO_RING_F_INDIRECT_DESC */ |
    (1ULL << 29) /* VIRTIO_RING_F_EVENT_IDX */ | (1ULL << VIRTIO_F_VERSION_1);

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

} // namespace

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
    d.queue->set_stall_ms(c.stall_ms);
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

} // namespace hvio
