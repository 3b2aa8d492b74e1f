// SPDX-License-Identifier: GPL-2.0
//
// hvio status [--socket PATH] [--json]: ask the running daemon for its
// report (one JSON document on the status socket) and print it per device:
// identity, status byte, negotiated features, device counters, and per
// queue the kernel's and the daemon's counters (net: the daemon's
// counters are per device, one thread serves both queues).
#include "blk.h"
#include "cli.h"
#include "commands.h"
#include "net.h"
#include "status_socket.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <string>
#include <vector>

namespace hvio {

namespace {

using json = nlohmann::ordered_json;

std::string status_names(uint64_t s) {
    if (!s)
        return "(reset)";
    const std::pair<uint64_t, const char *> bits[] = {
        {VIRTIO_CONFIG_S_ACKNOWLEDGE, "ACKNOWLEDGE"}, {VIRTIO_CONFIG_S_DRIVER, "DRIVER"},
        {VIRTIO_CONFIG_S_FEATURES_OK, "FEATURES_OK"}, {VIRTIO_CONFIG_S_DRIVER_OK, "DRIVER_OK"},
        {VIRTIO_CONFIG_S_NEEDS_RESET, "NEEDS_RESET"}, {VIRTIO_CONFIG_S_FAILED, "FAILED"}};
    std::string out;
    for (auto [bit, name] : bits)
        if (s & bit) {
            out += out.empty() ? "" : " ";
            out += name;
            s &= ~bit;
        }
    if (s)
        out += " 0x" + std::to_string(s);
    return out;
}

const char *net_feature_name(unsigned bit) {
    switch (bit) {
    case kNetFCsum:
        return "CSUM";
    case kNetFGuestCsum:
        return "GUEST_CSUM";
    case kNetFMtu:
        return "MTU";
    case kNetFMac:
        return "MAC";
    case kNetFGuestTso4:
        return "GUEST_TSO4";
    case kNetFGuestTso6:
        return "GUEST_TSO6";
    case kNetFGuestEcn:
        return "GUEST_ECN";
    case kNetFGuestUfo:
        return "GUEST_UFO";
    case kNetFHostTso4:
        return "HOST_TSO4";
    case kNetFHostTso6:
        return "HOST_TSO6";
    case kNetFHostEcn:
        return "HOST_ECN";
    case kNetFHostUfo:
        return "HOST_UFO";
    case kNetFMrgRxbuf:
        return "MRG_RXBUF";
    case kNetFStatus:
        return "STATUS";
    case kVirtioRingIndirectDesc:
        return "INDIRECT_DESC";
    case kVirtioRingEventIdx:
        return "EVENT_IDX";
    case VIRTIO_F_VERSION_1:
        return "VERSION_1";
    }
    return nullptr;
}

// Device-specific bits overlap (blk SIZE_MAX is net GUEST_CSUM): names
// depend on the type.
std::string feature_names(uint64_t f, bool net) {
    if (!f)
        return "(none)";
    std::string out;
    for (unsigned bit = 0; bit < 64; bit++) {
        if (!(f & (1ULL << bit)))
            continue;
        const char *name = nullptr;
        if (net) {
            name = net_feature_name(bit);
            out += out.empty() ? "" : " ";
            out += name ? name : "bit" + std::to_string(bit);
            continue;
        }
        switch (bit) {
        case VIRTIO_BLK_F_SIZE_MAX:
            name = "SIZE_MAX";
            break;
        case VIRTIO_BLK_F_SEG_MAX:
            name = "SEG_MAX";
            break;
        case VIRTIO_BLK_F_GEOMETRY:
            name = "GEOMETRY";
            break;
        case VIRTIO_BLK_F_RO:
            name = "RO";
            break;
        case VIRTIO_BLK_F_BLK_SIZE:
            name = "BLK_SIZE";
            break;
        case VIRTIO_BLK_F_FLUSH:
            name = "FLUSH";
            break;
        case VIRTIO_BLK_F_TOPOLOGY:
            name = "TOPOLOGY";
            break;
        case VIRTIO_BLK_F_CONFIG_WCE:
            name = "CONFIG_WCE";
            break;
        case VIRTIO_BLK_F_MQ:
            name = "MQ";
            break;
        case VIRTIO_BLK_F_DISCARD:
            name = "DISCARD";
            break;
        case VIRTIO_BLK_F_WRITE_ZEROES:
            name = "WRITE_ZEROES";
            break;
        case kVirtioRingIndirectDesc:
            name = "INDIRECT_DESC";
            break;
        case kVirtioRingEventIdx:
            name = "EVENT_IDX";
            break;
        case VIRTIO_F_VERSION_1:
            name = "VERSION_1";
            break;
        }
        out += out.empty() ? "" : " ";
        out += name ? name : "bit" + std::to_string(bit);
    }
    return out;
}

std::string human_bytes(uint64_t b) {
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(b);
    unsigned u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    char buf[32];
    std::snprintf(buf, sizeof(buf), u ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

uint64_t u64(const json &j, const char *key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

// "  label  k1 v1  k2 v2 ..." for every number in an object (arrays of
// counters only where non-zero).
void print_counters(const char *label, const json &obj) {
    std::string line =
        std::string("    ") + label + std::string(6 - std::min<size_t>(6, std::strlen(label)), ' ');
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        if (it->is_array()) {
            std::string a;
            for (size_t i = 0; i < it->size(); i++)
                if ((*it)[i].is_number() && (*it)[i].get<uint64_t>())
                    a += " " + std::to_string(i) + ":" + std::to_string((*it)[i].get<uint64_t>());
            if (!a.empty())
                line += "  " + it.key() + "[" + a.substr(1) + "]";
        } else if (it->is_number()) {
            line += "  " + it.key() + " " + it->dump();
        }
    }
    std::printf("%s\n", line.c_str());
}

// Which loop serves a queue: io_uring commands or QUEUE_RUN.
void print_path(const json &daemon) {
    if (daemon.contains("path"))
        std::printf("    path    %s (ring %s)\n", daemon.value("path", std::string("?")).c_str(),
                    daemon.value("ring", std::string("?")).c_str());
}

void print_report(const json &r) {
    std::printf("hvio daemon pid %" PRIu64 ", config %s, up %" PRIu64 " s, %zu device(s)\n",
                u64(r, "pid"), r.value("config", std::string("?")).c_str(), u64(r, "uptime_s"),
                r.contains("devices") ? r["devices"].size() : size_t(0));
    if (!r.contains("devices"))
        return;
    for (const json &d : r["devices"]) {
        std::printf("\nzone %" PRIu64 " %s at 0x%" PRIx64 " irq %" PRIu64 " (%s)\n", u64(d, "zone"),
                    d.value("type", std::string("?")).c_str(), u64(d, "mmio_base"), u64(d, "irq"),
                    d.value("where", std::string("?")).c_str());
        const bool net = d.value("type", std::string()) == "net";
        const bool console = d.value("type", std::string()) == "console";
        if (console && !d.value("socket", std::string()).empty()) {
            std::printf("  socket   %s, %s (%" PRIu64 " accepted)\n",
                        d.value("socket", std::string()).c_str(),
                        d.contains("daemon") && d["daemon"].value("connected", 0)
                            ? "a client connected"
                            : "no client",
                        d.contains("daemon") ? u64(d["daemon"], "clients") : 0);
        } else if (console) {
            const std::string link = d.value("link", std::string());
            std::printf("  pty      %s%s%s%s\n", d.value("pty", std::string("?")).c_str(),
                        link.empty() ? "" : " (link ", link.c_str(), link.empty() ? "" : ")");
        } else if (net)
            std::printf("  tap      %s (ifindex %" PRIu64 "), mac %s, mtu %" PRIu64
                        ", link %s, offloads%s%s, TUNSETOFFLOAD 0x%" PRIx64 "\n",
                        d.value("tap", std::string("?")).c_str(), u64(d, "ifindex"),
                        d.value("mac", std::string("?")).c_str(), u64(d, "mtu"),
                        d.value("link", std::string("?")).c_str(),
                        d.value("offloads", false) ? " offered" : " off",
                        d.value("mrg_rxbuf", false) ? ", mergeable RX buffers" : "",
                        u64(d, "tun_offload"));
        else
            std::printf("  image    %s, %s, %s%s%s, blk_size %" PRIu64 ", serial \"%s\"\n",
                        d.value("img", std::string("?")).c_str(),
                        human_bytes(u64(d, "size")).c_str(),
                        d.value("readonly", false) ? "read-only" : "read-write",
                        d.value("direct", false) ? ", O_DIRECT" : "",
                        d.value("buffered_fallback", false) ? " (fell back to buffered)" : "",
                        u64(d, "blk_size"), d.value("serial", std::string()).c_str());
        if (!net && !console && d.value("direct", false)) {
            std::string modes;
            if (d.contains("ram_modes"))
                for (const auto &m : d["ram_modes"])
                    modes += (modes.empty() ? "" : " ") + m.get<std::string>();
            std::string why;
            uint64_t total = 0;
            if (d.contains("direct_fallbacks")) {
                const json &f = d["direct_fallbacks"];
                total = u64(f, "total");
                for (const auto &[k, v] : f.items())
                    if (k != "total" && v.is_number_unsigned() && v.get<uint64_t>())
                        why += " " + k + " " + std::to_string(v.get<uint64_t>());
            }
            std::printf(
                "  direct   zone RAM mapped as %s; %" PRIu64 " I/Os fell back to buffered%s%s\n",
                modes.empty() ? "?" : modes.c_str(), total, why.empty() ? "" : ":", why.c_str());
        }
        if (d.contains("info")) {
            const json &i = d["info"];
            uint64_t st = u64(i, "status");
            std::printf("  status   0x%02" PRIx64 " %s, generation %" PRIu64 "\n", st,
                        status_names(st).c_str(), u64(i, "generation"));
            std::printf("  offered  0x%09" PRIx64 " %s\n", u64(i, "device_features"),
                        feature_names(u64(i, "device_features"), net).c_str());
            if (st & VIRTIO_CONFIG_S_FEATURES_OK)
                std::printf("  features 0x%09" PRIx64 " %s\n", u64(i, "driver_features"),
                            feature_names(u64(i, "driver_features"), net).c_str());
            else
                std::printf("  features (not negotiated yet)\n");
        } else {
            std::printf("  info     unavailable: %s\n",
                        d.value("info_error", std::string("?")).c_str());
        }
        if (d.contains("stats")) {
            print_counters("device", d["stats"]);
        } else {
            std::printf("    device  unavailable: %s\n",
                        d.value("stats_error", std::string("?")).c_str());
        }
        if (!d.contains("queues"))
            continue;
        for (const json &q : d["queues"]) {
            uint64_t idx = u64(q, "index");
            std::string ring = "";
            if (d.contains("info") && d["info"].contains("queues") &&
                idx < d["info"]["queues"].size()) {
                const json &qi = d["info"]["queues"][idx];
                ring = ", num " + std::to_string(u64(qi, "num")) +
                       (u64(qi, "ready") ? ", ready" : ", not ready");
            }
            std::string qname = q.value("name", std::string());
            std::printf("  queue %" PRIu64 "%s%s (size %" PRIu64 "%s)\n", idx,
                        qname.empty() ? "" : " ", qname.c_str(), u64(d, "queue_size"),
                        ring.c_str());
            if (q.contains("kernel"))
                print_counters("kernel", q["kernel"]);
            else
                std::printf("    kernel  unavailable: %s\n",
                            q.value("kernel_error", std::string("?")).c_str());
            if (q.contains("latency") && u64(q["latency"], "count")) {
                const json &l = q["latency"];
                std::printf("    latency %" PRIu64 " requests: mean %" PRIu64 " us, p50 <= %" PRIu64
                            " us, p99 <= %" PRIu64 " us, p99.9 <= %" PRIu64 " us, max %" PRIu64
                            " us\n",
                            u64(l, "count"), u64(l, "mean_us"), u64(l, "p50_us"), u64(l, "p99_us"),
                            u64(l, "p999_us"), u64(l, "max_us"));
            }
            if (q.contains("daemon")) {
                const json &dm = q["daemon"];
                print_counters("daemon", dm);
                print_path(dm);
                std::printf("    moved   read %s, written %s\n",
                            human_bytes(u64(dm, "bytes_read")).c_str(),
                            human_bytes(u64(dm, "bytes_written")).c_str());
            }
        }
        if (d.contains("daemon")) {
            const json &dm = d["daemon"];
            std::printf("  daemon (both queues)\n");
            print_counters("daemon", dm);
            print_path(dm);
            if (console)
                std::printf("    moved   tx %s, rx %s; discarded %s in %" PRIu64
                            " stalls (nobody read)\n",
                            human_bytes(u64(dm, "tx_bytes")).c_str(),
                            human_bytes(u64(dm, "rx_bytes")).c_str(),
                            human_bytes(u64(dm, "tx_dropped")).c_str(), u64(dm, "stalls"));
            else
                std::printf("    moved   tx %" PRIu64 " packets %s, rx %" PRIu64 " packets %s\n",
                            u64(dm, "tx_packets"), human_bytes(u64(dm, "tx_bytes")).c_str(),
                            u64(dm, "rx_packets"), human_bytes(u64(dm, "rx_bytes")).c_str());
        }
    }
}

} // namespace

int cmd_status(int argc, char **argv) {
    std::string socket = kDefaultSocket;
    bool raw = false;
    static const option opts[] = {
        {"socket", required_argument, nullptr, 's'}, {"json", no_argument, nullptr, 'j'}, {}};
    std::vector<const char *> operands;
    auto on = [&](int c, const char *arg) {
        if (c == 's')
            socket = arg;
        else
            raw = true;
        return 0;
    };
    if (auto r = parse_options(argc, argv, opts, on, &operands, 0))
        return *r;
    auto text = status_fetch(socket);
    if (!text) {
        int err = text.error();
        std::fprintf(stderr, "hvio: no daemon answers on %s: %s%s\n", socket.c_str(),
                     std::strerror(err),
                     err == ENOENT || err == ECONNREFUSED ? " (is `hvio run` running?)" : "");
        return kExitError;
    }
    if (raw) {
        std::fputs(text->c_str(), stdout);
        return kExitOk;
    }
    json r = json::parse(*text, nullptr, false);
    if (r.is_discarded() || !r.is_object()) {
        std::fprintf(stderr, "hvio: %s: the daemon's answer is not a status report\n",
                     socket.c_str());
        return kExitError;
    }
    if (r.contains("error") && r["error"].is_string()) {
        std::fprintf(stderr, "hvio: %s: %s\n", socket.c_str(),
                     r["error"].get<std::string>().c_str());
        return kExitError;
    }
    print_report(r);
    return kExitOk;
}

} // namespace hvio
