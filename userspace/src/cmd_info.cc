// SPDX-License-Identifier: GPL-2.0
//
// hvio info: HVIO_GET_VERSION and HVIO_GET_STATS in readable form.
#include "cli.h"
#include "commands.h"
#include "control.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <vector>

namespace hvio {

namespace {

void print_version(const hvio_version &v) {
    std::printf("hvio.ko: api version %u, provider %s (%u)\n", v.api_version,
                provider_name(v.provider), v.provider);
    std::printf("limits:\n");
    std::printf("  %-22s %u\n", "zones", v.max_zones);
    std::printf("  %-22s %u\n", "regions per zone", v.max_regions);
    std::printf("  %-22s %u\n", "devices", v.max_devs);
    std::printf("  %-22s %u\n", "queues per device", v.max_queues);
    std::printf("  %-22s %u\n", "queue size", v.max_queue_size);
    std::printf("  %-22s %u bytes\n", "config space", v.max_config_len);
}

void print_stats(const hvio_stats &s) {
    struct Row {
        const char *name;
        __u64 value;
        const char *what;
    };
    const Row rows[] = {
        {"zones", s.zones, "zones registered"},
        {"devs", s.devs, "devices created"},
        {"irqs", s.irqs, "root IRQs handled"},
        {"reqs", s.reqs, "requests consumed"},
        {"acks", s.acks, "register accesses answered"},
        {"unknown_addr", s.unknown_addr, "accesses to no device"},
        {"bad_cpu", s.bad_cpu, "requests with a bad src_cpu"},
        {"bad_index", s.bad_index, "ring index resyncs"},
        {"res_pushed", s.res_pushed, "interrupts queued"},
        {"res_full", s.res_full, "interrupts deferred (res_list full)"},
        {"finish_calls", s.finish_calls, "FINISH_REQ hypercalls"},
        {"sleeps", s.sleeps, "need_wakeup set"},
        {"empty_irqs", s.empty_irqs, "root IRQs with nothing for hvio"},
    };
    std::printf("stats:\n");
    for (const Row &r : rows)
        std::printf("  %-14s %12" PRIu64 "  %s\n", r.name, static_cast<uint64_t>(r.value), r.what);
}

} // namespace

int cmd_info(int argc, char **argv) {
    const char *path = kControlPath;
    static const option opts[] = {{"device", required_argument, nullptr, 'd'}, {}};
    std::vector<const char *> operands;
    auto on = [&path](int, const char *arg) {
        path = arg;
        return 0;
    };
    if (auto r = parse_options(argc, argv, opts, on, &operands, 0))
        return *r;

    auto ctl = Control::open(path);
    if (!ctl) {
        std::fprintf(stderr, "hvio: cannot open %s: %s%s\n", path, ctl.message().c_str(),
                     ctl.error() == ENOENT ? " (is hvio.ko loaded?)" : "");
        return kExitError;
    }
    auto ver = ctl->version();
    if (!ver) {
        std::fprintf(stderr, "hvio: HVIO_GET_VERSION on %s: %s\n", path, ver.message().c_str());
        return kExitError;
    }
    print_version(*ver);
    if (ver->api_version != HVIO_API_VERSION)
        std::printf("warning: this tool speaks api version %u\n", HVIO_API_VERSION);

    auto st = ctl->stats();
    if (!st) {
        std::fprintf(stderr, "hvio: HVIO_GET_STATS on %s: %s\n", path, st.message().c_str());
        return kExitError;
    }
    print_stats(*st);
    return kExitOk;
}

} // namespace hvio
