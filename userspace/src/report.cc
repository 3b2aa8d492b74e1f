// SPDX-License-Identifier: GPL-2.0
//
// The daemon's report, the JSON document that every connection to the
// status socket receives (`hvio status`): per device its config, the
// kernel's state, counters and latencies, and the queue loops' counters.
#include "daemon.h"
#include "latency.h"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>
#include <vector>

namespace hvio {

namespace {

using json = nlohmann::ordered_json;

std::string mac_text(const std::array<uint8_t, 6> &m) {
    char buf[18];
    std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                  m[5]);
    return buf;
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
           {"hold_entries_max", s.hold_entries_max},
           {"hold_ns_max", s.hold_ns_max},
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

// A counter's value, whichever kind it is.
template <class T> T value(const std::atomic<T> &a) { return a.load(std::memory_order_relaxed); }
uint64_t value(const Tally &t) { return t.load(); }

json net_counters_json(const NetCounters &c) {
    auto v = [](const auto &a) { return value(a); };
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
                {"rx_bounced", v(c.rx_bounced)},
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
    auto v = [](const auto &a) { return value(a); };
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

} // namespace

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
        auto v = [](const auto &a) { return value(a); };
        json j{{"where", c.where},           {"zone", d->zone_id},
               {"type", "console"},          {"mmio_base", c.addr},
               {"mmio_len", c.len},          {"irq", c.irq},
               {"pty", d->pty.path},         {"link", d->pty.link},
               {"socket", d->socket.path},   {"reattached", d->reattached},
               {"queue_size", c.queue_size}, {"stall_ms", c.stall_ms}};
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
                           {"tx_dropped", v(cc.tx_dropped)},
                           {"stalls", v(cc.stalls)},
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

} // namespace hvio
