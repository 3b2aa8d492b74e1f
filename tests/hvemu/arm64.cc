// SPDX-License-Identifier: GPL-2.0
//
// hvemu on arm64: a raw Image (Documentation/arm64/booting.rst) entered at
// EL1 with x0 = the device tree, which hvemu writes as hvisor writes a
// zone's: memory, one CPU, PSCI (KVM's, over HVC), GICv3 (KVM's vGIC),
// the architected timer, a 16550 console, and one "virtio,mmio" node per
// device of the config.  A device's "irq" is its GIC INTID (an SPI, 32..),
// as in hvisor-tool's configs.  Power-off and reset are PSCI calls, which
// KVM reports as KVM_EXIT_SYSTEM_EVENT.
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "fdt.h"
#include "hvemu.h"

namespace hvemu {

// Platform layout below the zone's RAM (QEMU virt's, so it is familiar).
static constexpr uint64_t kGicDist = 0x08000000, kGicDistSize = 0x10000;
static constexpr uint64_t kGicRedist = 0x080a0000, kGicRedistSize = 0x20000;
static constexpr uint64_t kUart = 0x09000000, kUartSize = 0x1000;
static constexpr uint32_t kUartSpi = 1; // INTID 33
static constexpr uint32_t kPhandleGic = 1;

static std::vector<uint8_t> slurp(const std::string &path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("%s: %s", path.c_str(), strerror(errno));
    struct stat st;
    fstat(fd, &st);
    std::vector<uint8_t> buf((size_t)st.st_size);
    size_t got = 0;
    while (got < buf.size()) {
        ssize_t n = read(fd, buf.data() + got, buf.size() - got);
        if (n <= 0)
            die("%s: read: %s", path.c_str(), n ? strerror(errno) : "short file");
        got += (size_t)n;
    }
    close(fd);
    return buf;
}

static void gic_attr(Vm &vm, uint32_t group, uint64_t attr, void *addr) {
    kvm_device_attr a{};
    a.group = group;
    a.attr = attr;
    a.addr = (uintptr_t)addr;
    if (ioctl(vm.gic, KVM_SET_DEVICE_ATTR, &a))
        die("vGICv3 attribute %u/%llu: %s", group, (unsigned long long)attr, strerror(errno));
}

void arch_create_platform(Vm &vm, const Zone &zone) {
    for (const VirtioDev &d : zone.devs)
        if (d.irq < 32 + 2 || d.irq >= 32 + 224)
            die("device at %#llx: irq %u: on arm64 hvemu wants a GIC SPI INTID 34..255",
                (unsigned long long)d.addr, d.irq);

    kvm_create_device cd{};
    cd.type = KVM_DEV_TYPE_ARM_VGIC_V3;
    if (ioctl(vm.fd, KVM_CREATE_DEVICE, &cd))
        die("KVM_CREATE_DEVICE vGICv3: %s (does the root VM have gic-version=3?)", strerror(errno));
    vm.gic = (int)cd.fd;
    uint64_t dist = kGicDist, redist = kGicRedist;
    gic_attr(vm, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &dist);
    gic_attr(vm, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, &redist);

    vm.create_vcpu();
    kvm_vcpu_init init{};
    if (ioctl(vm.fd, KVM_ARM_PREFERRED_TARGET, &init))
        die("KVM_ARM_PREFERRED_TARGET: %s", strerror(errno));
    init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
    if (ioctl(vm.vcpu, KVM_ARM_VCPU_INIT, &init))
        die("KVM_ARM_VCPU_INIT: %s", strerror(errno));

    uint32_t nr_irqs = 256;
    gic_attr(vm, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs);
    gic_attr(vm, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, nullptr);
}

std::string arch_cmdline(const Zone &) { return "console=ttyS0 earlycon panic=-1"; }

static uint64_t core_reg(size_t off) {
    return KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (off / sizeof(uint32_t));
}

static void set_reg(Vm &vm, uint64_t id, uint64_t v) {
    kvm_one_reg r{};
    r.id = id;
    r.addr = (uintptr_t)&v;
    if (ioctl(vm.vcpu, KVM_SET_ONE_REG, &r))
        die("KVM_SET_ONE_REG %#llx: %s", (unsigned long long)id, strerror(errno));
}

std::string arch_where(Vm &vm) {
    uint64_t pc = 0;
    kvm_one_reg r{};
    r.id = core_reg(offsetof(kvm_regs, regs.pc));
    r.addr = (uintptr_t)&pc;
    if (ioctl(vm.vcpu, KVM_GET_ONE_REG, &r))
        return strerror(errno);
    char b[64];
    snprintf(b, sizeof(b), "pc %#llx", (unsigned long long)pc);
    return b;
}

static std::vector<uint8_t> make_dt(const Vm &vm, const Zone &zone, const BootArgs &a,
                                    uint64_t initrd, uint64_t initrd_size) {
    Fdt f;
    f.begin("");
    f.prop_u32("#address-cells", {2});
    f.prop_u32("#size-cells", {2});
    f.prop("compatible", "linux,dummy-virt");
    f.prop_u32("interrupt-parent", {kPhandleGic});

    f.begin("chosen");
    f.prop("bootargs", a.cmdline);
    char path[64];
    snprintf(path, sizeof(path), "/uart@%llx", (unsigned long long)kUart);
    f.prop("stdout-path", path);
    if (initrd_size) {
        f.prop_u64("linux,initrd-start", {initrd});
        f.prop_u64("linux,initrd-end", {initrd + initrd_size});
    }
    f.end();

    for (const Slot &s : vm.slots) {
        char n[48];
        snprintf(n, sizeof(n), "memory@%llx", (unsigned long long)s.gpa);
        f.begin(n);
        f.prop("device_type", "memory");
        f.prop_u64("reg", {s.gpa, s.size});
        f.end();
    }

    f.begin("cpus");
    f.prop_u32("#address-cells", {1});
    f.prop_u32("#size-cells", {0});
    f.begin("cpu@0");
    f.prop("device_type", "cpu");
    f.prop("compatible", "arm,arm-v8");
    f.prop_u32("reg", {0});
    f.prop("enable-method", "psci");
    f.end();
    f.end();

    f.begin("psci");
    f.prop_strings("compatible", {"arm,psci-1.0", "arm,psci-0.2"});
    f.prop("method", "hvc");
    f.end();

    char n[48];
    snprintf(n, sizeof(n), "intc@%llx", (unsigned long long)kGicDist);
    f.begin(n);
    f.prop("compatible", "arm,gic-v3");
    f.prop_u32("#interrupt-cells", {3});
    f.prop("interrupt-controller");
    f.prop_u64("reg", {kGicDist, kGicDistSize, kGicRedist, kGicRedistSize});
    f.prop_u32("phandle", {kPhandleGic});
    f.end();

    // PPIs: secure phys 13, non-secure phys 14, virtual 11, hyp 10.
    f.begin("timer");
    f.prop("compatible", "arm,armv8-timer");
    f.prop_u32("interrupts", {1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4});
    f.prop("always-on");
    f.end();

    snprintf(n, sizeof(n), "uart@%llx", (unsigned long long)kUart);
    f.begin(n);
    f.prop("compatible", "ns16550a");
    f.prop_u64("reg", {kUart, kUartSize});
    f.prop_u32("interrupts", {0, kUartSpi, 4});
    f.prop_u32("clock-frequency", {1843200});
    f.prop_u32("reg-io-width", {1});
    f.end();

    for (const VirtioDev &d : zone.devs) {
        snprintf(n, sizeof(n), "virtio_mmio@%llx", (unsigned long long)d.addr);
        f.begin(n);
        f.prop("compatible", "virtio,mmio");
        f.prop_u64("reg", {d.addr, d.len});
        f.prop_u32("interrupts", {0, d.irq - 32, 1}); // edge: one per res_list entry
        f.prop("dma-coherent");
        f.end();
    }
    f.end();
    return f.finish();
}

void arch_boot(Vm &vm, const Zone &zone, const BootArgs &a) {
    if (vm.slots.empty())
        die("no RAM");
    const Slot &ram = vm.slots[0];
    if (ram.gpa % 0x200000)
        die("arm64: the first RAM region must be 2 MiB aligned");

    std::vector<uint8_t> k = slurp(a.kernel);
    if (k.size() < 64 || memcmp(k.data() + 0x38, "ARM\x64", 4))
        die("%s: not an arm64 Image (gzip'd? hvemu wants the raw Image)", a.kernel.c_str());
    uint64_t text_offset, image_size;
    memcpy(&text_offset, k.data() + 8, 8);
    memcpy(&image_size, k.data() + 16, 8);
    if (!image_size)
        image_size = k.size();
    uint64_t kaddr = ram.gpa + text_offset;
    uint8_t *kp = vm.ptr(kaddr, image_size);
    if (!kp || image_size < k.size())
        die("kernel (%llu bytes) does not fit in the first RAM region",
            (unsigned long long)image_size);
    memcpy(kp, k.data(), k.size());
    memset(kp + k.size(), 0, image_size - k.size());

    // Device tree in the top 2 MiB, initrd below it.
    uint64_t top = ram.gpa + ram.size;
    uint64_t dtb = top - 0x200000;
    uint64_t initrd = 0, initrd_size = 0;
    if (!a.initrd.empty()) {
        std::vector<uint8_t> rd = slurp(a.initrd);
        initrd_size = rd.size();
        initrd = (dtb - initrd_size) & ~0xfffULL;
        if (initrd < kaddr + image_size + 0x1000000)
            die("initrd of %zu bytes does not fit above the kernel", rd.size());
        memcpy(vm.ptr(initrd, initrd_size), rd.data(), initrd_size);
    }
    std::vector<uint8_t> dt = make_dt(vm, zone, a, initrd, initrd_size);
    if (dt.size() > 0x200000)
        die("device tree too large");
    memcpy(vm.ptr(dtb, dt.size()), dt.data(), dt.size());
    if (!a.dtb_out.empty()) {
        int fd = open(a.dtb_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, dt.data(), dt.size()) != (ssize_t)dt.size())
            die("%s: %s", a.dtb_out.c_str(), strerror(errno));
        close(fd);
    }

    // EL1h, DAIF masked; x0 = DTB, x1..x3 = 0.
    set_reg(vm, core_reg(offsetof(kvm_regs, regs.pstate)), 0x3c5);
    set_reg(vm, core_reg(offsetof(kvm_regs, regs.regs[0])), dtb);
    for (int i = 1; i < 4; i++)
        set_reg(vm, core_reg(offsetof(kvm_regs, regs.regs) + i * sizeof(uint64_t)), 0);
    set_reg(vm, core_reg(offsetof(kvm_regs, regs.pc)), kaddr);
}

static void spi_line(Vm &vm, uint32_t intid, bool level) {
    kvm_irq_level l{};
    l.irq = (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | (intid & KVM_ARM_IRQ_NUM_MASK);
    l.level = level;
    if (ioctl(vm.fd, KVM_IRQ_LINE, &l))
        die("KVM_IRQ_LINE INTID %u: %s", intid, strerror(errno));
}

void arch_irq(Vm &vm, uint32_t irq) {
    spi_line(vm, irq, true);
    spi_line(vm, irq, false);
}

static void uart_line(Vm &vm, bool level) { spi_line(vm, 32 + kUartSpi, level); }

Exit arch_exit(Vm &vm) {
    kvm_run *r = vm.run;
    switch (r->exit_reason) {
    case KVM_EXIT_MMIO: {
        uint64_t a = r->mmio.phys_addr;
        if (a >= kUart && a < kUart + 8 && r->mmio.len == 1) {
            if (r->mmio.is_write)
                uart_out(vm, (unsigned)(a - kUart), r->mmio.data[0], uart_line);
            else
                r->mmio.data[0] = uart_in(vm, (unsigned)(a - kUart), uart_line);
        } else if (!r->mmio.is_write) {
            memset(r->mmio.data, 0, sizeof(r->mmio.data)); // nothing there
        }
        return Exit::Continue;
    }
    case KVM_EXIT_SYSTEM_EVENT:
        switch (r->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
            return Exit::PowerOff;
        case KVM_SYSTEM_EVENT_RESET:
            return Exit::Reset;
        default:
            warn("system event %u", r->system_event.type);
            return Exit::Error;
        }
    default:
        warn("unexpected KVM exit %u", r->exit_reason);
        return Exit::Error;
    }
}

uint64_t arch_exit_pc(Vm &vm) {
    (void)vm;
    return 0;
}

void arch_shutdown_report(Vm &vm) {
    (void)vm; // no triple fault on arm64
}

} // namespace hvemu
