// SPDX-License-Identifier: GPL-2.0
//
// hvemu on x86_64: Linux's 64-bit boot protocol (Documentation/x86/boot.rst)
// for an ELF vmlinux or a bzImage, an e820 map, KVM's in-kernel PIC and
// PIT, a 16550 UART at 0x3f8 (IRQ 4), and reset by triple fault.
//
// The zone runs without local APIC and IOAPIC (nolapic noapic; no ACPI, no
// MP table): the in-kernel PIC is the interrupt controller, so a device's
// "irq" in the config is an ISA IRQ (1..15, not 0, 2, 4) and KVM_IRQ_LINE
// raises it.  A guest module (tests/e2e/guest/hvemu_mmio.c) registers the
// virtio-mmio platform devices from hvemu_mmio.device= on the command line,
// since Debian's virtio_mmio has no virtio_mmio.device= support.
#include <cerrno>
#include <cstring>
#include <elf.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "hvemu.h"

namespace hvemu {

// Guest physical layout of the boot data, all in the first MiB.
static constexpr uint64_t kGdt = 0x500;
static constexpr uint64_t kZeroPage = 0x7000;
static constexpr uint64_t kPml4 = 0x9000; // + PDPT 0xa000, PD 0xb000
static constexpr uint64_t kCmdline = 0x20000;
static constexpr uint64_t kCmdlineMax = 0x10000;
static constexpr uint64_t kBzLoad = 0x100000;
static constexpr uint64_t kEbda = 0x9fc00;

// struct boot_params offsets (arch/x86/include/uapi/asm/bootparam.h).
static constexpr unsigned kBpE820Entries = 0x1e8, kBpE820Table = 0x2d0;
static constexpr unsigned kHdrSetupSects = 0x1f1, kHdrBootFlag = 0x1fe, kHdrMagic = 0x202,
                          kHdrVersion = 0x206, kHdrLoader = 0x210, kHdrLoadflags = 0x211,
                          kHdrRamdisk = 0x218, kHdrRamdiskSize = 0x21c, kHdrCmdline = 0x228,
                          kHdrInitrdMax = 0x22c, kHdrAlign = 0x230, kHdrCmdlineSize = 0x238;

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

template <typename T> static void put(uint8_t *p, unsigned off, T v) {
    memcpy(p + off, &v, sizeof(v));
}
template <typename T> static T get(const uint8_t *p, size_t off) {
    T v;
    memcpy(&v, p + off, sizeof(v));
    return v;
}

static void copy_in(Vm &vm, uint64_t gpa, const void *src, uint64_t len, uint64_t memsz) {
    uint8_t *dst = vm.ptr(gpa, memsz);
    if (!dst)
        die("kernel segment %#llx+%#llx is not in guest RAM", (unsigned long long)gpa,
            (unsigned long long)memsz);
    memcpy(dst, src, len);
    memset(dst + len, 0, memsz - len);
}

// An ELF vmlinux: each PT_LOAD at its physical address, entry = e_entry.
static uint64_t load_elf(Vm &vm, const std::vector<uint8_t> &k) {
    auto *eh = reinterpret_cast<const Elf64_Ehdr *>(k.data());
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64)
        die("kernel: not an x86_64 ELF");
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        size_t off = eh->e_phoff + (size_t)i * eh->e_phentsize;
        if (off + sizeof(Elf64_Phdr) > k.size())
            die("kernel: truncated ELF");
        auto *ph = reinterpret_cast<const Elf64_Phdr *>(k.data() + off);
        if (ph->p_type != PT_LOAD)
            continue;
        if (ph->p_offset + ph->p_filesz > k.size() || ph->p_filesz > ph->p_memsz)
            die("kernel: bad PT_LOAD %u", i);
        copy_in(vm, ph->p_paddr, k.data() + ph->p_offset, ph->p_filesz, ph->p_memsz);
    }
    return eh->e_entry;
}

// A bzImage: setup header into the zero page, protected-mode code at 1 MiB,
// 64-bit entry 0x200 bytes in.
static uint64_t load_bzimage(Vm &vm, const std::vector<uint8_t> &k, uint8_t *zp) {
    if (k.size() < 0x300 || get<uint32_t>(k.data(), kHdrMagic) != 0x53726448)
        die("kernel: neither an ELF vmlinux nor a bzImage");
    if (get<uint16_t>(k.data(), kHdrVersion) < 0x20c)
        die("kernel: boot protocol %#x, want >= 2.12 (64-bit entry)",
            get<uint16_t>(k.data(), kHdrVersion));
    unsigned setup_sects = k[kHdrSetupSects] ? k[kHdrSetupSects] : 4;
    size_t hdr_end = 0x202 + k[0x201];
    memcpy(zp + kHdrSetupSects, k.data() + kHdrSetupSects, hdr_end - kHdrSetupSects);
    size_t off = (setup_sects + 1) * 512;
    if (off >= k.size())
        die("kernel: truncated bzImage");
    copy_in(vm, kBzLoad, k.data() + off, k.size() - off, k.size() - off);
    return kBzLoad + 0x200;
}

static void e820_add(uint8_t *zp, uint64_t addr, uint64_t size, uint32_t type) {
    uint8_t n = zp[kBpE820Entries];
    uint8_t *e = zp + kBpE820Table + 20 * n;
    put<uint64_t>(e, 0, addr);
    put<uint64_t>(e, 8, size);
    put<uint32_t>(e, 16, type);
    zp[kBpE820Entries] = n + 1;
}

// struct kvm_cpuid2 ends in a zero-length array, which g++ sizes
// differently from C: the ioctl numbers (which encode the size) are spelled
// out with the C size, 8 bytes.
struct CpuidHdr {
    uint32_t nent, padding;
};
static constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHdr);
static constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHdr);

static void setup_cpuid(Vm &vm) {
    int n = 128;
    std::vector<uint8_t> buf(sizeof(CpuidHdr) + n * sizeof(kvm_cpuid_entry2));
    auto *c = reinterpret_cast<CpuidHdr *>(buf.data());
    c->nent = n;
    if (ioctl(vm.kvm, kGetSupportedCpuid, c))
        die("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
    // No XSAVE (nor AVX, which needs it): nested under TCG the XSAVE area
    // sizes KVM reports do not match what the guest computes, and Linux
    // warns at boot.  FXSAVE is all a test zone needs.
    auto *e = reinterpret_cast<kvm_cpuid_entry2 *>(buf.data() + sizeof(CpuidHdr));
    for (uint32_t i = 0; i < c->nent; i++)
        if (e[i].function == 1)
            e[i].ecx &= ~((1u << 26) | (1u << 27) | (1u << 28));
    if (ioctl(vm.vcpu, kSetCpuid2, c))
        die("KVM_SET_CPUID2: %s", strerror(errno));
}

static void setup_long_mode(Vm &vm, uint64_t entry) {
    // Identity map of the first GiB with 2 MiB pages.
    uint64_t *pml4 = reinterpret_cast<uint64_t *>(vm.ptr(kPml4, 0x3000));
    if (!pml4)
        die("guest RAM must start at 0 on x86_64");
    memset(pml4, 0, 0x3000);
    pml4[0] = (kPml4 + 0x1000) | 3;
    pml4[512] = (kPml4 + 0x2000) | 3;
    for (uint64_t i = 0; i < 512; i++)
        pml4[1024 + i] = (i << 21) | 0x83; // present, writable, 2 MiB

    uint64_t gdt[4] = {0, 0, 0x00af9b000000ffffULL, 0x00cf93000000ffffULL};
    memcpy(vm.ptr(kGdt, sizeof(gdt)), gdt, sizeof(gdt));

    kvm_sregs s;
    if (ioctl(vm.vcpu, KVM_GET_SREGS, &s))
        die("KVM_GET_SREGS: %s", strerror(errno));
    kvm_segment code{};
    code.base = 0;
    code.limit = 0xffffffff;
    code.selector = 0x10;
    code.type = 11;
    code.present = 1;
    code.s = 1;
    code.l = 1;
    code.g = 1;
    kvm_segment data = code;
    data.selector = 0x18;
    data.type = 3;
    data.l = 0;
    data.db = 1;
    s.cs = code;
    s.ds = s.es = s.fs = s.gs = s.ss = data;
    s.gdt.base = kGdt;
    s.gdt.limit = sizeof(gdt) - 1;
    s.cr3 = kPml4;
    s.cr4 = 0x20;       // PAE
    s.cr0 = 0x80000011; // PG, ET, PE
    s.efer = 0x500;     // LME, LMA
    if (ioctl(vm.vcpu, KVM_SET_SREGS, &s))
        die("KVM_SET_SREGS: %s", strerror(errno));

    kvm_regs r{};
    r.rflags = 2;
    r.rip = entry;
    r.rsi = kZeroPage;
    r.rsp = kZeroPage - 0x10;
    if (ioctl(vm.vcpu, KVM_SET_REGS, &r))
        die("KVM_SET_REGS: %s", strerror(errno));
}

void arch_create_platform(Vm &vm, const Zone &zone) {
    for (const VirtioDev &d : zone.devs)
        if (d.irq == 0 || d.irq == 2 || d.irq == 4 || d.irq > 15)
            die("device at %#llx: irq %u: on x86_64 hvemu wants an ISA IRQ 1..15 (not 2, 4)",
                (unsigned long long)d.addr, d.irq);
    uint64_t ident = 0xfffbc000; // both below 4 GiB, above the virtio windows
    if (ioctl(vm.fd, KVM_SET_IDENTITY_MAP_ADDR, &ident))
        die("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
    if (ioctl(vm.fd, KVM_SET_TSS_ADDR, 0xfffbd000UL))
        die("KVM_SET_TSS_ADDR: %s", strerror(errno));
    if (ioctl(vm.fd, KVM_CREATE_IRQCHIP, 0))
        die("KVM_CREATE_IRQCHIP: %s", strerror(errno));
    kvm_pit_config pit{};
    if (ioctl(vm.fd, KVM_CREATE_PIT2, &pit))
        die("KVM_CREATE_PIT2: %s", strerror(errno));
    vm.create_vcpu();
    setup_cpuid(vm);
    // Registers at every exit without an ioctl: the exit log's rip.
    if (ioctl(vm.kvm, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS) > 0)
        vm.run->kvm_valid_regs = KVM_SYNC_X86_REGS;
}

std::string arch_cmdline(const Zone &zone) {
    // No ACPI/PCI/APIC: the PIC, the PIT and 0x3f8 are the whole platform.
    std::string s = "console=ttyS0 8250.nr_uarts=1 acpi=off pci=off nolapic noapic "
                    "io_delay=none reboot=t panic=-1 i8042.noaux i8042.nokbd i8042.nopnp";
    // One comma-separated list: a module array parameter given twice keeps
    // only the last value.
    const char *sep = " hvemu_mmio.device=";
    for (const VirtioDev &d : zone.devs) {
        char b[96];
        snprintf(b, sizeof(b), "%s%#llx@%#llx:%u", sep, (unsigned long long)d.len,
                 (unsigned long long)d.addr, d.irq);
        s += b;
        sep = ",";
    }
    return s;
}

void arch_boot(Vm &vm, const Zone &zone, const BootArgs &a) {
    (void)zone;
    uint8_t *zp = vm.ptr(kZeroPage, 4096);
    if (!zp)
        die("guest RAM must start at 0 on x86_64");
    memset(zp, 0, 4096);

    std::vector<uint8_t> k = slurp(a.kernel);
    uint64_t entry;
    if (k.size() > 4 && !memcmp(k.data(), ELFMAG, SELFMAG)) {
        entry = load_elf(vm, k);
    } else {
        entry = load_bzimage(vm, k, zp);
    }
    k.clear();
    k.shrink_to_fit();

    put<uint16_t>(zp, kHdrBootFlag, 0xaa55);
    put<uint32_t>(zp, kHdrMagic, 0x53726448);
    if (get<uint16_t>(zp, kHdrVersion) == 0)
        put<uint16_t>(zp, kHdrVersion, 0x020f);
    zp[kHdrLoader] = 0xff;
    zp[kHdrLoadflags] |= 0x01; // LOADED_HIGH
    if (get<uint32_t>(zp, kHdrAlign) == 0)
        put<uint32_t>(zp, kHdrAlign, 0x1000000);

    if (a.cmdline.size() + 1 > kCmdlineMax)
        die("command line too long");
    memcpy(vm.ptr(kCmdline, a.cmdline.size() + 1), a.cmdline.c_str(), a.cmdline.size() + 1);
    put<uint32_t>(zp, kHdrCmdline, (uint32_t)kCmdline);
    put<uint32_t>(zp, kHdrCmdlineSize, (uint32_t)a.cmdline.size());

    if (!a.initrd.empty()) {
        std::vector<uint8_t> rd = slurp(a.initrd);
        uint64_t top = vm.ram_end();
        uint32_t max = get<uint32_t>(zp, kHdrInitrdMax);
        if (max && top > (uint64_t)max + 1)
            top = (uint64_t)max + 1;
        if (top > 0xffffffffULL)
            top = 0x100000000ULL;
        uint64_t at = (top - rd.size()) & ~0xfffULL;
        if (rd.size() >= top || at < 0x4000000)
            die("initrd of %zu bytes does not fit above the kernel", rd.size());
        copy_in(vm, at, rd.data(), rd.size(), rd.size());
        put<uint32_t>(zp, kHdrRamdisk, (uint32_t)at);
        put<uint32_t>(zp, kHdrRamdiskSize, (uint32_t)rd.size());
    }

    e820_add(zp, 0, kEbda, 1);
    e820_add(zp, kEbda, 0x100000 - kEbda, 2);
    for (const Slot &s : vm.slots) {
        uint64_t lo = s.gpa < 0x100000 ? 0x100000 : s.gpa;
        if (s.gpa + s.size > lo)
            e820_add(zp, lo, s.gpa + s.size - lo, 1);
    }
    setup_long_mode(vm, entry);
}

std::string arch_where(Vm &vm) {
    kvm_regs r{};
    if (ioctl(vm.vcpu, KVM_GET_REGS, &r))
        return strerror(errno);
    char b[64];
    snprintf(b, sizeof(b), "rip %#llx", (unsigned long long)r.rip);
    return b;
}

uint64_t arch_exit_pc(Vm &vm) {
    return (vm.run->kvm_valid_regs & KVM_SYNC_X86_REGS) ? vm.run->s.regs.regs.rip : 0;
}

static void dump_seg(const char *n, const kvm_segment &g) {
    fprintf(stderr, "hvemu:   %-3s sel %#06x base %#018llx limit %#x type %u dpl %u p %u l %u\n", n,
            g.selector, (unsigned long long)g.base, g.limit, g.type, g.dpl, g.present, g.l);
}

void arch_shutdown_report(Vm &vm) {
    kvm_regs r{};
    kvm_sregs s{};
    kvm_vcpu_events ev{};
    if (ioctl(vm.vcpu, KVM_GET_REGS, &r) || ioctl(vm.vcpu, KVM_GET_SREGS, &s)) {
        warn("KVM_GET_REGS/SREGS after KVM_EXIT_SHUTDOWN: %s", strerror(errno));
        return;
    }
    ioctl(vm.vcpu, KVM_GET_VCPU_EVENTS, &ev);
    // KVM on AMD (svm shutdown_interception) INITs the vCPU before it
    // reports KVM_EXIT_SHUTDOWN: then this is the reset state, not the
    // state of the fault.  The exit log above has the last real rips.
    bool reset_state = r.rip == 0xfff0 && s.cs.base == 0xffff0000;
    fprintf(stderr, "hvemu: vCPU state at KVM_EXIT_SHUTDOWN%s:\n",
            reset_state ? " (the reset state: KVM INITs the vCPU on a shutdown intercept, "
                          "so the fault's own registers are lost)"
                        : "");
    fprintf(stderr,
            "hvemu:   rip %#llx rsp %#llx rbp %#llx rflags %#llx\n"
            "hvemu:   rax %#llx rbx %#llx rcx %#llx rdx %#llx rsi %#llx rdi %#llx\n"
            "hvemu:   cr0 %#llx cr2 %#llx cr3 %#llx cr4 %#llx efer %#llx\n"
            "hvemu:   idt base %#llx limit %#x, gdt base %#llx limit %#x\n"
            "hvemu:   exception injected %u nr %u has_error %u error %#x; interrupt injected %u "
            "nr %u; nmi pending %u\n",
            (unsigned long long)r.rip, (unsigned long long)r.rsp, (unsigned long long)r.rbp,
            (unsigned long long)r.rflags, (unsigned long long)r.rax, (unsigned long long)r.rbx,
            (unsigned long long)r.rcx, (unsigned long long)r.rdx, (unsigned long long)r.rsi,
            (unsigned long long)r.rdi, (unsigned long long)s.cr0, (unsigned long long)s.cr2,
            (unsigned long long)s.cr3, (unsigned long long)s.cr4, (unsigned long long)s.efer,
            (unsigned long long)s.idt.base, s.idt.limit, (unsigned long long)s.gdt.base,
            s.gdt.limit, ev.exception.injected, ev.exception.nr, ev.exception.has_error_code,
            ev.exception.error_code, ev.interrupt.injected, ev.interrupt.nr, ev.nmi.pending);
    dump_seg("cs", s.cs);
    dump_seg("ss", s.ss);
    dump_seg("tr", s.tr);
}

void arch_irq(Vm &vm, uint32_t irq) {
    kvm_irq_level l{};
    l.irq = irq;
    l.level = 1;
    if (ioctl(vm.fd, KVM_IRQ_LINE, &l))
        die("KVM_IRQ_LINE %u: %s", irq, strerror(errno));
    l.level = 0;
    ioctl(vm.fd, KVM_IRQ_LINE, &l);
}

static void uart_line(Vm &vm, bool level) {
    kvm_irq_level l{};
    l.irq = 4;
    l.level = level;
    ioctl(vm.fd, KVM_IRQ_LINE, &l);
}

Exit arch_exit(Vm &vm) {
    kvm_run *r = vm.run;
    switch (r->exit_reason) {
    case KVM_EXIT_IO: {
        uint8_t *data = reinterpret_cast<uint8_t *>(r) + r->io.data_offset;
        for (uint32_t i = 0; i < r->io.count; i++, data += r->io.size) {
            uint16_t port = r->io.port;
            bool out = r->io.direction == KVM_EXIT_IO_OUT;
            if (port >= 0x3f8 && port < 0x400 && r->io.size == 1) {
                if (out)
                    uart_out(vm, port - 0x3f8, data[0], uart_line);
                else
                    data[0] = uart_in(vm, port - 0x3f8, uart_line);
            } else if (port == 0x64 && out && data[0] == 0xfe) {
                warn("the zone reset the CPU through the keyboard controller (port 0x64 <- 0xfe)");
                return Exit::Reset;
            } else if (!out) {
                // CMOS reads 0 (no update in progress); the rest is absent.
                memset(data, port == 0x71 ? 0 : 0xff, r->io.size);
            }
        }
        return Exit::Continue;
    }
    case KVM_EXIT_SHUTDOWN: // triple fault: reboot=t, or a crash
        return Exit::Shutdown;
    case KVM_EXIT_HLT:
        return Exit::PowerOff;
    case KVM_EXIT_MMIO:
        // Outside every virtio window: nothing lives there.
        if (!r->mmio.is_write)
            memset(r->mmio.data, 0xff, sizeof(r->mmio.data));
        return Exit::Continue;
    default:
        warn("unexpected KVM exit %u", r->exit_reason);
        return Exit::Error;
    }
}

} // namespace hvemu
