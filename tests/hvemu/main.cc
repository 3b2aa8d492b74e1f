// SPDX-License-Identifier: GPL-2.0
//
// hvemu: options, the three threads and the watchdog.
//
//   vCPU thread (main):  KVM_RUN; an MMIO exit inside a virtio window is one
//                        bridge access (vCPU waits for cfg_flags, as on
//                        hvisor); other exits go to the architecture.
//   interrupt thread:    waits for FINISH_REQ, drains res_list into the
//                        zone CPU's pending list as hvisor does (and fails
//                        where hvisor's assertion would panic); the list is
//                        injected at once, or after the vCPU's bridge
//                        access if one is under way.
//   watchdog:            after --timeout seconds kicks the vCPU out of
//                        KVM_RUN and hvemu exits 3: a hung zone never
//                        hangs the test.
#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <getopt.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <thread>
#include <time.h>
#include <unistd.h>

#include "hvemu.h"

namespace hvemu {

void die(const char *fmt, ...) {
    va_list ap;
    console_flush();
    va_start(ap, fmt);
    fputs("hvemu: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void warn(const char *fmt, ...) {
    va_list ap;
    console_flush();
    va_start(ap, fmt);
    fputs("hvemu: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

uint64_t now_ms() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static char g_line[4096];
static size_t g_len;
static bool g_saw_restart, g_saw_panic;

bool console_saw_restart() { return g_saw_restart; }
bool console_saw_panic() { return g_saw_panic; }

void console_put(uint8_t c) {
    if (c == '\r')
        return;
    g_line[g_len++] = (char)c;
    if (c == '\n' || g_len == sizeof(g_line))
        console_flush();
}

void console_flush() {
    size_t off = 0;
    if (memmem(g_line, g_len, "reboot: Restarting system", 25))
        g_saw_restart = true;
    if (memmem(g_line, g_len, "Kernel panic", 12))
        g_saw_panic = true;
    while (off < g_len) {
        ssize_t n = write(STDOUT_FILENO, g_line + off, g_len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    g_len = 0;
}

} // namespace hvemu

using namespace hvemu;

static void usage() {
    fputs("usage: hvemu --config virtio_cfg.json --kernel IMAGE [options]\n"
          "  --zone ID          zone of the config to run (default: the first)\n"
          "  --initrd FILE      initramfs\n"
          "  --append STR       kernel command line (added to what hvemu needs)\n"
          "  --timeout SEC      kill the zone after SEC seconds, exit 3 (default 300)\n"
          "  --access-timeout MS  longest wait for one register answer (default 10000)\n"
          "  --dtb-out FILE     arm64: also write the generated device tree there\n"
          "  --stats            print hvemu's counters at exit\n"
          "  --hold-kvm         only create an empty KVM VM and keep it until SIGTERM\n"
          "                     (see Documentation/e2e.md: KVM's first VM and last\n"
          "                     VM patch kernel text, which TCG mishandles)\n"
          "  --max-devs N       hvisor's MAX_DEVS: its pending virtio interrupt list per\n"
          "                     CPU holds N - 1 distinct IRQs (default 8)\n"
          "Boots the kernel as zone ID with its RAM in the sim_ram window of\n"
          "hvio.ko (hypervisor=sim), forwarding the zone's virtio-mmio accesses\n"
          "through the bridge exactly as hvisor does.  Exit status: 0 the zone\n"
          "powered off or reset, 1 error, 3 timeout, 4 the zone crashed (x86:\n"
          "a triple fault without \"reboot: Restarting system\" first), 5 hvisor\n"
          "would have panicked (more distinct virtio IRQs pending for the zone's\n"
          "CPU than its list holds).\n",
          stderr);
    exit(2);
}

static std::atomic<bool> g_stop{false};
static pthread_t g_vcpu_thread;

static void on_sigusr1(int) {}

static void kick_vcpu(Vm &vm) {
    g_stop = true;
    vm.run->immediate_exit = 1;
    pthread_kill(g_vcpu_thread, SIGUSR1);
}

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

int main(int argc, char **argv) {
    std::string config;
    uint32_t zone_id = 0;
    BootArgs boot;
    std::string append;
    unsigned timeout_s = 300, access_ms = 10000, max_devs = 8;
    bool stats = false, hold_kvm = false;
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
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, nullptr)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'z':
            zone_id = (uint32_t)strtoul(optarg, nullptr, 0);
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
            timeout_s = (unsigned)strtoul(optarg, nullptr, 0);
            break;
        case 'A':
            access_ms = (unsigned)strtoul(optarg, nullptr, 0);
            break;
        case 'D':
            boot.dtb_out = optarg;
            break;
        case 's':
            stats = true;
            break;
        case 'H':
            hold_kvm = true;
            break;
        case 'M':
            max_devs = (unsigned)strtoul(optarg, nullptr, 0);
            if (max_devs < 2 || max_devs > 64)
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

    Zone zone = load_zone(config, zone_id);
    Bridge bridge;
    Vm vm = vm_open();
    for (const MemRegion &m : zone.mem)
        vm.add_ram(m.zonex_ipa, m.size, bridge.map_ram(m.zone0_ipa, m.size));
    arch_create_platform(vm, zone);
    boot.cmdline = arch_cmdline(zone);
    if (!append.empty())
        boot.cmdline += " " + append;
    arch_boot(vm, zone, boot);

    g_vcpu_thread = pthread_self();
    struct sigaction sa {};
    sa.sa_handler = on_sigusr1;
    sigaction(SIGUSR1, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);

    uint64_t t0 = now_ms();
    std::atomic<bool> timed_out{false};
    PendingIrqs pending(vm, bridge.stats, max_devs);
    std::thread irq_thread([&] {
        std::vector<hvio_device_res> res;
        while (!g_stop) {
            res.clear();
            bridge.wait_res(50, res);
            for (const hvio_device_res &r : res) {
                if (r.target_zone != zone.id) {
                    warn("res_list names zone %u, not ours (%u): dropped", r.target_zone, zone.id);
                    continue;
                }
                if (!pending.add(r.irq_id)) {
                    console_flush();
                    fprintf(stderr,
                            "hvemu: HVISOR WOULD PANIC: hv_virtio_inject_irq: assert!(len + 1 < "
                            "MAX_DEVS) fails: IRQ %u would join %u distinct interrupts already "
                            "pending for zone %u's CPU 0 (%s; MAX_DEVS %u)\n",
                            r.irq_id, max_devs - 1, zone.id, pending.listed().c_str(), max_devs);
                    _exit(5);
                }
            }
        }
    });
    std::thread watchdog([&] {
        uint64_t end = t0 + (uint64_t)timeout_s * 1000;
        while (!g_stop && now_ms() < end)
            usleep(20000);
        if (!g_stop) {
            timed_out = true;
            kick_vcpu(vm);
        }
    });

    Exit how = Exit::Continue;
    ExitLog xlog;
    while (how == Exit::Continue && !g_stop) {
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
            for (const VirtioDev &d : zone.devs)
                if (r->mmio.phys_addr >= d.addr && r->mmio.phys_addr < d.addr + d.len)
                    dev = &d;
            if (dev) {
                uint64_t v = 0;
                if (r->mmio.is_write)
                    memcpy(&v, r->mmio.data, r->mmio.len);
                pending.enter_trap();
                bool answered = bridge.access(zone.id, 0, r->mmio.phys_addr, r->mmio.len,
                                              r->mmio.is_write, &v, access_ms, g_stop);
                pending.leave_trap();
                if (!answered) {
                    how = g_stop ? Exit::Continue : Exit::Error;
                    break;
                }
                if (!r->mmio.is_write)
                    memcpy(r->mmio.data, &v, r->mmio.len);
                rec.val = v;
                xlog.add(rec);
                continue;
            }
        }
        how = arch_exit(vm);
        xlog.add(rec);
    }
    g_stop = true;
    irq_thread.join();
    watchdog.join();
    console_flush();

    uint64_t t_end = now_ms();
    double secs = (double)(t_end - t0) / 1000.0;
    // A triple fault the guest did not announce is a crash: say so, with
    // what the vCPU last did.
    bool crash = how == Exit::Shutdown && !console_saw_restart();
    if (crash) {
        fprintf(stderr,
                "hvemu: zone %u: UNEXPECTED TRIPLE FAULT (KVM_EXIT_SHUTDOWN) after %.1fs, without "
                "\"reboot: Restarting system\"%s on its console\n",
                zone.id, secs, console_saw_panic() ? " (but after \"Kernel panic\")" : "");
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
        uint64_t li = bridge.stats.last_irq_ms.load();
        fprintf(stderr, "hvemu: last interrupt injected: irq %u, %lld ms before the end\n",
                bridge.stats.last_irq.load(), li ? (long long)(t_end - li) : -1LL);
        arch_shutdown_report(vm);
    }
    if (stats || timed_out || crash || how == Exit::Error)
        fprintf(stderr,
                "hvemu: zone %u: %.1fs, %s; bridge accesses %llu (notifies %llu), root IRQs "
                "raised %llu, FINISH_REQ %llu, interrupts injected %llu; pending list peak %u "
                "of %u\n",
                zone.id, secs,
                timed_out            ? "TIMEOUT"
                : how == Exit::Error ? "error"
                : how == Exit::Reset ? "reset"
                : how == Exit::Shutdown
                    ? (crash ? "TRIPLE FAULT (crash)"
                             : "reset (triple fault after \"reboot: Restarting system\")")
                    : "powered off",
                (unsigned long long)bridge.stats.mmio_exits.load(),
                (unsigned long long)bridge.stats.notifies.load(),
                (unsigned long long)bridge.stats.raises.load(),
                (unsigned long long)bridge.stats.finish.load(),
                (unsigned long long)bridge.stats.irqs.load(), pending.peak(),
                pending.max_devs() - 1);
    if (timed_out) {
        fprintf(stderr, "hvemu: zone %u killed after %us, vCPU at %s\n", zone.id, timeout_s,
                arch_where(vm).c_str());
        return 3;
    }
    if (crash)
        return 4;
    return how == Exit::Error ? 1 : 0;
}
