// SPDX-License-Identifier: GPL-2.0
//
// hvemu: the KVM VM, its memory slots and its one vCPU.
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hvemu.h"

namespace hvemu {

Vm vm_open() {
    Vm vm;
    vm.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm.kvm < 0)
        die("/dev/kvm: %s (is kvm loaded, with nested virtualisation?)", strerror(errno));
    int v = ioctl(vm.kvm, KVM_GET_API_VERSION, 0);
    if (v != KVM_API_VERSION)
        die("KVM API version %d, want %d", v, KVM_API_VERSION);
    unsigned long type = 0;
#if defined(__aarch64__)
    // The IPA size the host supports (at least 40 bits on QEMU's virt).
    int ipa = ioctl(vm.kvm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);
    if (ipa > 0)
        type = KVM_VM_TYPE_ARM_IPA_SIZE(ipa > 40 ? 40 : ipa);
#endif
    vm.fd = ioctl(vm.kvm, KVM_CREATE_VM, type);
    if (vm.fd < 0)
        die("KVM_CREATE_VM: %s", strerror(errno));
    return vm;
}

void Vm::add_ram(uint64_t gpa, uint64_t size, uint8_t *hva) {
    kvm_userspace_memory_region r{};
    r.slot = (uint32_t)slots.size();
    r.guest_phys_addr = gpa;
    r.memory_size = size;
    r.userspace_addr = (uintptr_t)hva;
    if (ioctl(fd, KVM_SET_USER_MEMORY_REGION, &r))
        die("KVM_SET_USER_MEMORY_REGION %#llx+%#llx: %s", (unsigned long long)gpa,
            (unsigned long long)size, strerror(errno));
    slots.push_back({gpa, size, hva});
}

uint8_t *Vm::ptr(uint64_t gpa, uint64_t len) const {
    for (const Slot &s : slots)
        if (gpa >= s.gpa && len <= s.size && gpa - s.gpa <= s.size - len)
            return s.hva + (gpa - s.gpa);
    return nullptr;
}

uint64_t Vm::ram_end() const { return slots.empty() ? 0 : slots[0].gpa + slots[0].size; }

void Vm::create_vcpu() {
    vcpu = ioctl(fd, KVM_CREATE_VCPU, 0);
    if (vcpu < 0)
        die("KVM_CREATE_VCPU: %s", strerror(errno));
    int sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (sz <= 0)
        die("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
    run_size = (size_t)sz;
    void *p = mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (p == MAP_FAILED)
        die("mmap kvm_run: %s", strerror(errno));
    run = static_cast<kvm_run *>(p);
}

} // namespace hvemu
