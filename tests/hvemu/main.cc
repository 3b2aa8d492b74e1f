// SPDX-License-Identifier: GPL-2.0
//
// hvemu: options, the threads and the watchdog.
//
//   vCPU thread (one per zone): KVM_RUN; an MMIO exit inside a virtio
//                        window is one bridge access with the zone's id
//                        and CPU (the vCPU waits for cfg_flags, as on
//                        hvisor); other exits go to the architecture.
//   interrupt thread:    waits for FINISH_REQ, drains res_list and puts
//                        each entry into the pending list of its
//                        target_zone's CPU as hvisor does (and fails where
//                        hvisor's assertion would panic); the list is
//                        injected at once, or after that vCPU's bridge
//                        access if one is under way.
//   watchdog:            after --timeout seconds kicks every vCPU still
//                        running out of KVM_RUN and hvemu exits 3: a hung
//                        zone never hangs the test.
// The main thread waits for every zone's end, then reports each zone.
#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <getopt.h>
#include <memory>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <thread>
#include <time.h>
#include <unistd.h>

#include "hvemu.h"

namespace hvemu {

// "zone N: " before die()'s and warn()'s words in a zone's vCPU thread when
// hvemu runs several zones.
static thread_local const char *t_zone_tag = "";

void die(const char *fmt, ...) {
    va_list ap;
    consoles_flush();
    va_start(ap, fmt);
    fprintf(stderr, "hvemu: %s", t_zone_tag);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void warn(const char *fmt, ...) {
    va_list ap;
    consoles_flush();
    va_start(ap, fmt);
    fprintf(stderr, "hvemu: %s", t_zone_tag);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

uint64_t now_ms() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

// Every console, for consoles_flush(); g_out_mu keeps one line whole on
// stdout.  Lock order: a console's mu_, then g_out_mu.
static std::mutex g_consoles_mu, g_out_mu;
static std::vector<Console *> g_consoles;

Console::Console(std::string prefix) : prefix_(std::move(prefix)) {
    std::lock_guard<std::mutex> g(g_consoles_mu);
    g_consoles.push_back(this);
}

Console::~Console() {
    flush();
    std::lock_guard<std::mutex> g(g_consoles_mu);
    std::erase(g_consoles, this);
}

void Console::put(uint8_t c) {
    if (c == '\r')
        return;
    std::lock_guard<std::mutex> g(mu_);
    line_[len_++] = (char)c;
    if (c == '\n' || len_ == sizeof(line_))
        flush_locked();
}

void Console::flush() {
    std::lock_guard<std::mutex> g(mu_);
    flush_locked();
}

void Console::flush_locked() {
    if (!len_)
        return;
    if (memmem(line_, len_, "reboot: Restarting system", 25))
        saw_restart_ = true;
    if (memmem(line_, len_, "Kernel panic", 12))
        saw_panic_ = true;
    std::string out = prefix_;
    out.append(line_, len_);
    len_ = 0;
    std::lock_guard<std::mutex> g(g_out_mu);
    size_t off = 0;
    while (off < out.size()) {
        ssize_t n = write(STDOUT_FILENO, out.data() + off, out.size() - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
}

void consoles_flush() {
    std::lock_guard<std::mutex> g(g_consoles_mu);
    for (Console *c : g_consoles)
        c->flush();
}

} // namespace hvemu

using namespace hvemu;

static void usage() {
    fputs("usage: hvemu --config virtio_cfg.json --kernel IMAGE [options]\n"
          "  --zone ID          zone of the config to run (default: the first); given\n"
          "                     again, hvemu runs each zone named at once, in its own\n"
          "                     KVM VM; --zone all runs every zone of the config\n"
          "  --initrd FILE      initramfs\n"
          "  --append STR       kernel command line (added to what hvemu needs)\n"
          "  --timeout SEC      kill the zones after SEC seconds, exit 3 (default 300)\n"
          "  --access-timeout MS  longest wait for one register answer (default 10000)\n"
          "  --dtb-out FILE     arm64: also write the generated device tree there\n"
          "                     (of the first zone)\n"
          "  --stats            print hvemu's counters at exit\n"
          "  --hold-kvm         only create an empty KVM VM and keep it until SIGTERM\n"
          "                     (see Documentation/e2e.md: KVM's first VM and last\n"
          "                     VM patch kernel text, which TCG mishandles)\n"
          "  --max-devs N       hvisor's MAX_DEVS: its pending virtio interrupt list per\n"
          "                     CPU holds N - 1 distinct IRQs (default 8)\n"
          "  --pin-zones        run the Nth zone's vCPU thread on host CPU N (modulo the\n"
          "                     CPUs hvemu may use), as zones own their CPUs on hvisor\n"
          "Boots the kernel as zone ID with its RAM in the sim_ram window of\n"
          "hvio.ko (hypervisor=sim), forwarding the zone's virtio-mmio accesses\n"
          "through the bridge exactly as hvisor does.\n"
          "Several zones: one bridge for all, as on hvisor; the Nth zone named\n"
          "(from 0) is hvisor's physical CPU N (its src_cpu and cfg_flags slot),\n"
          "each zone has one vCPU, its own RAM (its memory_region entries: inside\n"
          "sim_ram, overlapping no other zone's) and a serial console whose lines\n"
          "are prefixed \"[zone ID] \"; every zone's command line gets hvemu.zone=ID.\n"
          "hvemu ends when every zone has ended.\n"
          "Exit status: 0 the zone powered off or reset, 1 error, 3 timeout, 4 the\n"
          "zone crashed (x86: a triple fault without \"reboot: Restarting system\"\n"
          "first), 5 hvisor would have panicked (more distinct virtio IRQs pending\n"
          "for the zone's CPU than its list holds).  With several zones: that of\n"
          "the first zone (in --zone order) that did not end with 0, each failed\n"
          "zone named on stderr (\"hvemu: zone ID FAILED\").\n",
          stderr);
    exit(2);
}

static void on_sigusr1(int) {}

// KVM's first VM enables, and its last VM's destruction disables, the
// scheduler's preempt-notifier static key: kernel text patched by
// text_poke_bp() while the other CPUs run.  Under QEMU's TCG a CPU has
// been seen looping for ever on the int3 of a patch site in
// finish_task_switch() after hvemu's VM was destroyed (the root VM stuck
// in kvm_destroy_vm).  An empty VM held for the whole test keeps the key
// on: no zone's start or end patches anything.
static int hold_a_vm() {
    Vm vm = vm_open();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    int sig = 0;
    sigwait(&set, &sig);
    return 0;
}

namespace {

struct Options {
    unsigned timeout_s = 300, access_ms = 10000, max_devs = 8;
    bool stats = false;
    bool pin = false;     // --pin-zones
    bool several = false; // more than one zone: prefixes, zone tags
};

// One zone hvemu runs: its VM and vCPU thread, console, pending interrupt
// list and counters.  `stop` and `done` are shared with the watchdog and
// the main thread; the rest is the vCPU thread's until it has ended.
struct ZoneRun {
    ZoneRun(const Zone &z, unsigned c, bool several, unsigned max_devs)
        : zone(z), cpu(c), console(several ? "[zone " + std::to_string(z.id) + "] " : ""),
          pending(vm, stats, max_devs) {}
    Zone zone;
    unsigned cpu; // hvisor's physical CPU of the zone: src_cpu, cfg_flags[cpu]
    std::string tag;
    Vm vm;
    Stats stats;
    Console console;
    PendingIrqs pending;
    std::thread thread;
    std::atomic<bool> stop{false}, done{false}, timed_out{false};
    Exit how = Exit::Continue;
    ExitLog xlog;
    uint64_t t_end = 0;
};

} // namespace

static std::atomic<bool> g_stop{false};

static void kick_vcpu(ZoneRun &z) {
    z.stop = true;
    z.vm.run->immediate_exit = 1;
    pthread_kill(z.thread.native_handle(), SIGUSR1);
}

// The vCPU loop of one zone, until it powers off, resets, fails or is
// kicked.
static void run_vcpu(ZoneRun &z, Bridge &bridge, const Options &o) {
    t_zone_tag = z.tag.c_str();
    if (o.pin) {
        // The allowed CPUs, in order; the zone's index picks one.
        cpu_set_t allowed, one;
        if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0 && CPU_COUNT(&allowed) > 0) {
            int want = (int)(z.cpu % (unsigned)CPU_COUNT(&allowed)), host = -1;
            for (int c = 0; c < CPU_SETSIZE && want >= 0; c++)
                if (CPU_ISSET(c, &allowed) && want-- == 0)
                    host = c;
            CPU_ZERO(&one);
            CPU_SET(host, &one);
            if (pthread_setaffinity_np(pthread_self(), sizeof(one), &one))
                warn("cannot pin the vCPU thread to host CPU %d", host);
        }
    }
    Vm &vm = z.vm;
    Exit how = Exit::Continue;
    while (how == Exit::Continue && !z.stop) {
        if (ioctl(vm.vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            warn("KVM_RUN: %s", strerror(errno));
            how = Exit::Error;
            break;
        }
        kvm_run *r = vm.run;
        ExitRec rec{now_ms(), 0, 0, arch_exit_pc(vm), r->exit_reason, 0, false};
        if (r->exit_reason == KVM_EXIT_MMIO) {
            rec.addr = r->mmio.phys_addr;
            rec.len = r->mmio.len;
            rec.write = r->mmio.is_write;
            memcpy(&rec.val, r->mmio.data, rec.len <= 8 ? rec.len : 8);
        } else if (r->exit_reason == KVM_EXIT_IO) {
            rec.addr = r->io.port;
            rec.len = r->io.size;
            rec.write = r->io.direction == KVM_EXIT_IO_OUT;
        }
        if (r->exit_reason == KVM_EXIT_MMIO) {
            const VirtioDev *dev = nullptr;
            for (const VirtioDev &d : z.zone.devs)
                if (r->mmio.phys_addr >= d.addr && r->mmio.phys_addr < d.addr + d.len)
                    dev = &d;
            if (dev) {
                uint64_t v = 0;
                if (r->mmio.is_write)
                    memcpy(&v, r->mmio.data, r->mmio.len);
                z.pending.enter_trap();
                bool answered = bridge.access(z.zone.id, z.cpu, r->mmio.phys_addr, r->mmio.len,
                                              r->mmio.is_write, &v, o.access_ms, z.stop, z.stats);
                z.pending.leave_trap();
                if (!answered) {
                    how = z.stop ? Exit::Continue : Exit::Error;
                    break;
                }
                if (!r->mmio.is_write)
                    memcpy(r->mmio.data, &v, r->mmio.len);
                rec.val = v;
                z.xlog.add(rec);
                continue;
            }
        }
        how = arch_exit(vm);
        z.xlog.add(rec);
    }
    z.console.flush();
    z.how = how;
    z.t_end = now_ms();
    z.done = true;
}

// After the zone's end: what happened to it, as one exit status.
static int report_zone(ZoneRun &z, const Bridge &bridge, const Options &o, uint64_t t0) {
    t_zone_tag = "";
    uint64_t t_end = z.t_end;
    double secs = (double)(t_end - t0) / 1000.0;
    Exit how = z.how;
    // A triple fault the guest did not announce is a crash: say so, with
    // what the vCPU last did.
    bool crash = how == Exit::Shutdown && !z.console.saw_restart();
    if (crash) {
        fprintf(stderr,
                "hvemu: zone %u: UNEXPECTED TRIPLE FAULT (KVM_EXIT_SHUTDOWN) after %.1fs, without "
                "\"reboot: Restarting system\"%s on its console\n",
                z.zone.id, secs, z.console.saw_panic() ? " (but after \"Kernel panic\")" : "");
        const ExitLog &xlog = z.xlog;
        fprintf(stderr,
                "hvemu: last %u exits (ms before the end, reason, rip, addr/port, len, "
                "r/w, value):\n",
                (unsigned)(xlog.n < kExitRing ? xlog.n : kExitRing));
        for (uint64_t i = xlog.n > kExitRing ? xlog.n - kExitRing : 0; i < xlog.n; i++) {
            const ExitRec &e = xlog.rec[i % kExitRing];
            fprintf(stderr, "hvemu:   -%5llu ms  %2u  rip %#llx  %#llx/%u %s %#llx\n",
                    (unsigned long long)(t_end - e.ms), e.reason, (unsigned long long)e.rip,
                    (unsigned long long)e.addr, e.len, e.write ? "w" : "r",
                    (unsigned long long)e.val);
        }
        uint64_t li = z.stats.last_irq_ms.load();
        fprintf(stderr, "hvemu: last interrupt injected: irq %u, %lld ms before the end\n",
                z.stats.last_irq.load(), li ? (long long)(t_end - li) : -1LL);
        arch_shutdown_report(z.vm);
    }
    bool timed_out = z.timed_out;
    if (o.stats || timed_out || crash || how == Exit::Error)
        fprintf(stderr,
                "hvemu: zone %u: %.1fs, %s; bridge accesses %llu (notifies %llu), root IRQs "
                "raised %llu, FINISH_REQ %llu, interrupts injected %llu; pending list peak %u "
                "of %u\n",
                z.zone.id, secs,
                timed_out            ? "TIMEOUT"
                : how == Exit::Error ? "error"
                : how == Exit::Reset ? "reset"
                : how == Exit::Shutdown
                    ? (crash ? "TRIPLE FAULT (crash)"
                             : "reset (triple fault after \"reboot: Restarting system\")")
                    : "powered off",
                (unsigned long long)z.stats.mmio_exits.load(),
                (unsigned long long)z.stats.notifies.load(),
                (unsigned long long)z.stats.raises.load(), (unsigned long long)bridge.finish(),
                (unsigned long long)z.stats.irqs.load(), z.pending.peak(),
                z.pending.max_devs() - 1);
    if (timed_out) {
        fprintf(stderr, "hvemu: zone %u killed after %us, vCPU at %s\n", z.zone.id, o.timeout_s,
                arch_where(z.vm).c_str());
        return 3;
    }
    if (crash)
        return 4;
    return how == Exit::Error ? 1 : 0;
}

int main(int argc, char **argv) {
    std::string config;
    std::vector<std::string> zone_args;
    BootArgs boot;
    std::string append;
    Options o;
    bool hold_kvm = false;
    static const option opts[] = {{"config", required_argument, nullptr, 'c'},
                                  {"zone", required_argument, nullptr, 'z'},
                                  {"kernel", required_argument, nullptr, 'k'},
                                  {"initrd", required_argument, nullptr, 'i'},
                                  {"append", required_argument, nullptr, 'a'},
                                  {"timeout", required_argument, nullptr, 't'},
                                  {"access-timeout", required_argument, nullptr, 'A'},
                                  {"dtb-out", required_argument, nullptr, 'D'},
                                  {"stats", no_argument, nullptr, 's'},
                                  {"max-devs", required_argument, nullptr, 'M'},
                                  {"hold-kvm", no_argument, nullptr, 'H'},
                                  {"pin-zones", no_argument, nullptr, 'P'},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, nullptr)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'z':
            zone_args.push_back(optarg);
            break;
        case 'k':
            boot.kernel = optarg;
            break;
        case 'i':
            boot.initrd = optarg;
            break;
        case 'a':
            append = optarg;
            break;
        case 't':
            o.timeout_s = (unsigned)strtoul(optarg, nullptr, 0);
            break;
        case 'A':
            o.access_ms = (unsigned)strtoul(optarg, nullptr, 0);
            break;
        case 'D':
            boot.dtb_out = optarg;
            break;
        case 's':
            o.stats = true;
            break;
        case 'H':
            hold_kvm = true;
            break;
        case 'P':
            o.pin = true;
            break;
        case 'M':
            o.max_devs = (unsigned)strtoul(optarg, nullptr, 0);
            if (o.max_devs < 2 || o.max_devs > 64)
                usage();
            break;
        default:
            usage();
        }
    }
    if (hold_kvm && optind == argc)
        return hold_a_vm();
    if (config.empty() || boot.kernel.empty() || optind != argc)
        usage();

    // The zones to run, in --zone order.
    std::vector<Zone> all = load_zones(config), zones;
    if (zone_args.empty())
        zone_args.push_back("0");
    for (const std::string &a : zone_args) {
        if (a == "all") {
            if (zone_args.size() != 1)
                usage();
            zones = all;
            break;
        }
        char *end = nullptr;
        unsigned long id = strtoul(a.c_str(), &end, 0);
        if (a.empty() || *end || id > UINT32_MAX)
            usage();
        Zone z = pick_zone(all, (uint32_t)id, config);
        for (const Zone &y : zones)
            if (y.id == z.id)
                die("--zone %u given twice", z.id);
        zones.push_back(z);
    }
    if (zones.size() > HVIO_BRIDGE_MAX_CPUS)
        die("%zu zones: the bridge has room for %u CPUs", zones.size(), HVIO_BRIDGE_MAX_CPUS);
    o.several = zones.size() > 1;

    Bridge bridge;
    std::string bad = check_zone_ram(zones, bridge.info().ram_base, bridge.info().ram_size);
    if (!bad.empty())
        die("%s: %s", config.c_str(), bad.c_str());

    std::vector<std::unique_ptr<ZoneRun>> runs;
    for (size_t i = 0; i < zones.size(); i++) {
        auto z = std::make_unique<ZoneRun>(zones[i], (unsigned)i, o.several, o.max_devs);
        if (o.several)
            z->tag = "zone " + std::to_string(z->zone.id) + ": ";
        t_zone_tag = z->tag.c_str();
        z->vm = vm_open();
        z->vm.console = &z->console;
        for (const MemRegion &m : z->zone.mem)
            z->vm.add_ram(m.zonex_ipa, m.size, bridge.map_ram(m.zone0_ipa, m.size));
        arch_create_platform(z->vm, z->zone);
        BootArgs b = boot;
        b.cmdline = arch_cmdline(z->zone);
        if (o.several)
            b.cmdline += " hvemu.zone=" + std::to_string(z->zone.id);
        if (!append.empty())
            b.cmdline += " " + append;
        if (i)
            b.dtb_out.clear();
        arch_boot(z->vm, z->zone, b);
        runs.push_back(std::move(z));
    }
    t_zone_tag = "";

    struct sigaction sa {};
    sa.sa_handler = on_sigusr1;
    sigaction(SIGUSR1, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);

    auto find = [&](uint32_t id) -> ZoneRun * {
        for (auto &z : runs)
            if (z->zone.id == id)
                return z.get();
        return nullptr;
    };
    uint64_t t0 = now_ms();
    std::thread irq_thread([&] {
        std::vector<hvio_device_res> res;
        while (!g_stop) {
            res.clear();
            bridge.wait_res(50, res);
            for (const hvio_device_res &r : res) {
                ZoneRun *z = find(r.target_zone);
                if (!z) {
                    warn("res_list names zone %u, which hvemu does not run: dropped",
                         r.target_zone);
                    continue;
                }
                if (!z->pending.add(r.irq_id)) {
                    consoles_flush();
                    fprintf(stderr,
                            "hvemu: HVISOR WOULD PANIC: hv_virtio_inject_irq: assert!(len + 1 < "
                            "MAX_DEVS) fails: IRQ %u would join %u distinct interrupts already "
                            "pending for zone %u's CPU %u (%s; MAX_DEVS %u)\n",
                            r.irq_id, o.max_devs - 1, z->zone.id, z->cpu,
                            z->pending.listed().c_str(), o.max_devs);
                    _exit(5);
                }
            }
        }
    });
    for (auto &z : runs)
        z->thread = std::thread(run_vcpu, std::ref(*z), std::ref(bridge), std::cref(o));
    std::thread watchdog([&] {
        uint64_t end = t0 + (uint64_t)o.timeout_s * 1000;
        while (!g_stop && now_ms() < end)
            usleep(20000);
        if (g_stop)
            return;
        for (auto &z : runs) {
            if (!z->done) {
                z->timed_out = true;
                kick_vcpu(*z);
            }
        }
    });

    for (auto &z : runs)
        z->thread.join();
    g_stop = true;
    irq_thread.join();
    watchdog.join();
    consoles_flush();

    int rc = 0;
    for (auto &z : runs) {
        int zrc = report_zone(*z, bridge, o, t0);
        if (zrc && o.several)
            fprintf(stderr, "hvemu: zone %u FAILED (exit %d)\n", z->zone.id, zrc);
        if (zrc && !rc)
            rc = zrc;
    }
    return rc;
}
