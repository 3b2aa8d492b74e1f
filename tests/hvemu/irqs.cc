// SPDX-License-Identifier: GPL-2.0
//
// hvemu: hvisor's list of virtio interrupts pending for the zone's CPU
// (PendingIrqs, hvemu.h).  No KVM here but arch_irq(), so that the unit
// tests (tests/unit/hvemu_irqs_test.cc) can run it on the host.
#include "hvemu.h"

namespace hvemu {

bool PendingIrqs::add(uint32_t irq) {
    std::lock_guard<std::mutex> g(mu_);
    for (uint32_t i : list_)
        if (i == irq)
            return true;
    if (list_.size() + 1 >= max_devs_)
        return false;
    list_.push_back(irq);
    if (list_.size() > peak_)
        peak_ = (unsigned)list_.size();
    if (!in_trap_)
        inject_all();
    return true;
}

void PendingIrqs::enter_trap() {
    std::lock_guard<std::mutex> g(mu_);
    in_trap_ = true;
}

void PendingIrqs::leave_trap() {
    std::lock_guard<std::mutex> g(mu_);
    in_trap_ = false;
    inject_all();
}

void PendingIrqs::inject_all() {
    for (uint32_t irq : list_) {
        arch_irq(vm_, irq);
        stats_.irqs++;
        stats_.last_irq = irq;
        stats_.last_irq_ms = now_ms();
    }
    list_.clear();
}

std::string PendingIrqs::listed() const {
    std::lock_guard<std::mutex> g(mu_);
    std::string s;
    for (uint32_t irq : list_)
        s += (s.empty() ? "" : ", ") + std::to_string(irq);
    return s;
}

} // namespace hvemu
