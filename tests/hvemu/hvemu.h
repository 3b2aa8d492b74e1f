// SPDX-License-Identifier: GPL-2.0
//
// hvemu: a small KVM-based VMM that plays hvisor for one or several zones
// at once, through hvio.ko's sim provider.  Guest RAM is the sim_ram window
// (so the daemon's I/O lands in the guest's memory), every MMIO exit inside
// a virtio window becomes a device_req in the one bridge page (src_zone:
// the zone, src_cpu: the zone's CPU), and every FINISH_REQ becomes an
// interrupt in the res_list entry's target_zone.  The rest (serial
// console, timer, interrupt controller, power-off) is the minimum an
// unmodified Linux kernel needs to boot.
//
// Files: main.cc (options, threads, watchdog), config.cc (the zones in
// hvisor-tool's virtio_cfg.json), bridge.cc (hvisor's side of the bridge),
// vm.cc (KVM VM and vCPU, memory), x86.cc / arm64.cc (boot protocol and the
// few platform devices of each architecture), serial.cc (16550 console),
// fdt.cc (device-tree writer, arm64).
#ifndef HVEMU_H
#define HVEMU_H

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <linux/hvio.h>
#include <linux/hvio_bridge.h>
#include <linux/kvm.h>

namespace hvemu {

// ---- errors ---------------------------------------------------------------

[[noreturn]] void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t now_ms();

// ---- the zone, from virtio_cfg.json -------------------------------------

struct MemRegion {
    uint64_t zone0_ipa; // host physical (inside sim_ram)
    uint64_t zonex_ipa; // guest physical
    uint64_t size;
};

struct VirtioDev {
    std::string type; // "blk", "net", "console"
    uint64_t addr;    // zone IPA of the virtio-mmio window
    uint64_t len;
    uint32_t irq; // x86_64: ISA IRQ (PIC); arm64: GIC INTID (SPI, >= 32)
};

struct Zone {
    uint32_t id = 0;
    std::vector<MemRegion> mem;
    std::vector<VirtioDev> devs;
};

// Reads zones[] (or a top-level zone) of hvisor-tool's JSON, every zone in
// file order.  Keys hvemu does not need are ignored.
std::vector<Zone> load_zones(const std::string &path);
// The zone with id `id` of `all` (0: the first); dies if there is none.
Zone pick_zone(const std::vector<Zone> &all, uint32_t id, const std::string &path);
// Zones that run at once share the sim_ram window [base, base + size):
// every memory_region must lie inside it, and no two regions (of one zone
// or of two) may overlap there.  Returns what is wrong, or "".
std::string check_zone_ram(const std::vector<Zone> &zones, uint64_t base, uint64_t size);

// ---- the bridge (hvisor's side) ------------------------------------------

// Per zone (FINISH_REQ wake-ups are the bridge's: Bridge::finish()).
struct Stats {
    std::atomic<uint64_t> mmio_exits{0}; // virtio window accesses
    std::atomic<uint64_t> notifies{0};
    std::atomic<uint64_t> raises{0}; // HVIO_SIM_RAISE_IRQ
    std::atomic<uint64_t> irqs{0};   // interrupts injected (PendingIrqs)
    // For the post-mortem of an unexpected reset: when (now_ms()) and which
    // interrupt was last injected.
    std::atomic<uint64_t> last_irq_ms{0};
    std::atomic<uint32_t> last_irq{0};
};

// The last few exits the vCPU thread handled (ring), printed when the zone
// dies unexpectedly.
struct ExitRec {
    uint64_t ms, addr, val, rip;
    uint32_t reason, len;
    bool write;
};
static constexpr unsigned kExitRing = 16;
struct ExitLog {
    ExitRec rec[kExitRing]{};
    uint64_t n = 0;
    void add(const ExitRec &r) { rec[n++ % kExitRing] = r; }
};

// One Bridge for every zone hvemu runs, as hvisor has one bridge page.
// Locking: push_mu_ serialises the vCPU threads' pushes into req_list
// (hvisor's lock on the bridge); each vCPU waits on its own cfg_flags[cpu]
// without it.  wait_res() is the interrupt thread's alone.
class Bridge {
  public:
    Bridge(); // opens /dev/hvio-sim, maps the bridge, attaches an eventfd
    ~Bridge();
    // One trapped access of `zone`'s vCPU on physical CPU `cpu`; for reads
    // *val receives cfg_values[cpu].  Counts in `stats` (the zone's).
    // Returns false (and says why) when the answer did not come within
    // timeout_ms.
    bool access(uint32_t zone, unsigned cpu, uint64_t addr, unsigned size, bool is_write,
                uint64_t *val, unsigned timeout_ms, const std::atomic<bool> &stop, Stats &stats);
    // Wait up to timeout_ms for FINISH_REQ, then take every res_list entry.
    void wait_res(int timeout_ms, std::vector<hvio_device_res> &out);
    uint8_t *map_ram(uint64_t phys, uint64_t size); // a piece of sim_ram
    const hvio_sim_info &info() const { return info_; }
    uint64_t finish() const { return finish_.load(); } // FINISH_REQ wake-ups

  private:
    int fd_ = -1, efd_ = -1;
    hvio_bridge *br_ = nullptr;
    hvio_sim_info info_{};
    std::mutex push_mu_;
    std::atomic<uint64_t> finish_{0};
};

// ---- hvisor's virtio interrupt list of the zone's CPU ---------------------
//
// hvisor keeps, per target CPU, a list of the virtio interrupts that CPU is
// to inject (VIRTIO_IRQS, room for MAX_DEVS entries).  Its FINISH_REQ
// handler (hv_virtio_inject_irq) takes res_list: an IRQ already listed is
// skipped, any other is appended after assert!(len + 1 < MAX_DEVS) -- a
// failed assertion panics the hypervisor -- and an SGI sent to the target
// CPU (the zone's first).  The target CPU injects the whole list and
// empties it when it takes that SGI; a CPU busy-waiting at EL2 for the
// answer to a trapped register access takes it only after the answer.
// hvemu gives each zone one vCPU, the zone's first CPU, and one list: the
// list is filled by the interrupt thread and emptied at once, or, while
// the zone's vCPU thread is inside a bridge access, when that access ends.
struct Vm;

class PendingIrqs {
  public:
    PendingIrqs(Vm &vm, Stats &stats, unsigned max_devs)
        : vm_(vm), stats_(stats), max_devs_(max_devs) {}
    // One res_list entry.  Returns false, listing nothing, when hvisor's
    // assertion would fail (hvisor would panic).
    bool add(uint32_t irq);
    void enter_trap();
    void leave_trap(); // injects what was listed meanwhile
    unsigned peak() const { return peak_; }
    unsigned max_devs() const { return max_devs_; }
    std::string listed() const; // "a, b, c": the current list, for messages

  private:
    void inject_all(); // mu_ held; counts in stats_ (irqs, last_irq*)
    Vm &vm_;
    Stats &stats_;
    unsigned max_devs_;
    mutable std::mutex mu_;
    std::vector<uint32_t> list_;
    bool in_trap_ = false;
    unsigned peak_ = 0;
};

// ---- KVM ------------------------------------------------------------------

struct Slot {
    uint64_t gpa, size;
    uint8_t *hva;
};

// The 16550's registers (serial.cc).
struct UartRegs {
    uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
    bool thre;
    bool line;
};

// A zone's serial console: whole lines to stdout, each with the zone's
// prefix when hvemu runs several zones ("[zone 2] ").  put() is the vCPU
// thread's; flush() may come from any thread (die, warn): mu_ guards the
// line, and one process-wide lock keeps lines of two zones apart.
class Console {
  public:
    explicit Console(std::string prefix);
    ~Console();
    Console(const Console &) = delete;
    Console &operator=(const Console &) = delete;
    void put(uint8_t c);
    void flush();
    // The guest said it restarts on purpose ("reboot: Restarting system")
    // / panicked ("Kernel panic").
    bool saw_restart() const { return saw_restart_; }
    bool saw_panic() const { return saw_panic_; }

  private:
    void flush_locked();
    std::mutex mu_;
    std::string prefix_;
    char line_[4096];
    size_t len_ = 0;
    std::atomic<bool> saw_restart_{false}, saw_panic_{false};
};
// Flushes every console (die(), warn(): their message comes after the
// zone's last words).
void consoles_flush();

struct Vm {
    int kvm = -1, fd = -1, vcpu = -1;
    int gic = -1; // arm64: the vGIC device
    UartRegs uart{};
    Console *console = nullptr; // where the 16550 writes (none: dropped)
    kvm_run *run = nullptr;
    size_t run_size = 0;
    std::vector<Slot> slots;
    // Guest address -> host pointer (nullptr if [gpa, gpa+len) is not RAM).
    uint8_t *ptr(uint64_t gpa, uint64_t len) const;
    uint64_t ram_end() const; // highest guest RAM address + 1 (first slot)
    void add_ram(uint64_t gpa, uint64_t size, uint8_t *hva);
    void create_vcpu();
};
Vm vm_open();

// ---- architecture ----------------------------------------------------------

struct BootArgs {
    std::string kernel, initrd, cmdline, dtb_out;
};

// Reset: a reset the guest asked a device for (x86: keyboard controller,
// arm64: PSCI); Shutdown: x86 triple fault (Linux's reboot=t uses one on
// purpose, with an empty IDT; anything else is a crash).
enum class Exit { Continue, PowerOff, Reset, Shutdown, Error };

// Interrupt controller, timer, ...; after the RAM slots are in place.
void arch_create_platform(Vm &vm, const Zone &zone);
// Load kernel and initrd, write boot data (zero page / DT), set registers.
void arch_boot(Vm &vm, const Zone &zone, const BootArgs &args);
// An exit that is not an access to a virtio window.
Exit arch_exit(Vm &vm);
// Pulse interrupt `irq` (an edge; the device keeps InterruptStatus).
void arch_irq(Vm &vm, uint32_t irq);
// Where the vCPU is (program counter), for the timeout message.
std::string arch_where(Vm &vm);
// Program counter at the last exit if the vCPU's registers come with it
// (x86 sync regs), else 0.
uint64_t arch_exit_pc(Vm &vm);
// Exit::Shutdown (a triple fault the guest did not announce): print the
// vCPU's state.
void arch_shutdown_report(Vm &vm);
// Extra kernel command line the architecture needs (console, devices).
std::string arch_cmdline(const Zone &zone);

// The 16550 (serial.cc) of vm (vm.uart, output to vm.console); `line`
// sets the UART's interrupt line.
using UartLine = void (*)(Vm &vm, bool level);
uint8_t uart_in(Vm &vm, unsigned reg, UartLine line);
void uart_out(Vm &vm, unsigned reg, uint8_t v, UartLine line);

} // namespace hvemu

#endif
