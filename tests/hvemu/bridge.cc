// SPDX-License-Identifier: GPL-2.0
//
// hvemu: hvisor's side of the virtio bridge, byte for byte as hvisor does
// it (Documentation/abi.md section 1), over /dev/hvio-sim:
//   - a trapped access is written at req_list[req_rear], req_rear is
//     published with release ordering, a full fence, and the root IRQ is
//     raised only if need_wakeup == 1;
//   - for every access but QueueNotify the vCPU waits until
//     cfg_flags[cpu] changes, then takes cfg_values[cpu];
//   - while req_list is full the vCPU spins; it raises nothing;
//   - FINISH_REQ (the sim's eventfd) makes us drain res_list into the
//     zone CPU's pending interrupt list (PendingIrqs, hvemu.h).
// One Bridge serves every zone hvemu runs: each zone's vCPU pushes with
// its src_zone and its own src_cpu (pushes serialised, as hvisor's lock on
// the bridge does), and the interrupt thread routes res_list entries by
// target_zone (main.cc).  Every wait is bounded: a module that stops
// answering costs one timeout and an error, never a hung test.
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hvemu.h"

namespace hvemu {

static constexpr uint32_t kMask = HVIO_BRIDGE_MAX_REQ - 1;

static inline void cpu_relax() {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

Bridge::Bridge() {
    fd_ = open("/dev/hvio-sim", O_RDWR | O_CLOEXEC);
    if (fd_ < 0)
        die("/dev/hvio-sim: %s (hvio.ko loaded with hypervisor=sim? it has one user at a "
            "time: one hvemu runs every zone, --zone ID per zone)",
            strerror(errno));
    if (ioctl(fd_, HVIO_SIM_GET_INFO, &info_))
        die("HVIO_SIM_GET_INFO: %s", strerror(errno));
    void *p = mmap(nullptr, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE, MAP_SHARED, fd_,
                   HVIO_SIM_MMAP_BRIDGE);
    if (p == MAP_FAILED)
        die("mmap bridge: %s", strerror(errno));
    br_ = static_cast<hvio_bridge *>(p);
    efd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd_ < 0)
        die("eventfd: %s", strerror(errno));
    int32_t e = efd_;
    if (ioctl(fd_, HVIO_SIM_SET_FINISH_FD, &e))
        die("HVIO_SIM_SET_FINISH_FD: %s", strerror(errno));
    // What an earlier zone left in res_list is not ours to inject.
    __atomic_store_n(&br_->res_front, __atomic_load_n(&br_->res_rear, __ATOMIC_ACQUIRE),
                     __ATOMIC_RELEASE);
}

Bridge::~Bridge() {
    int32_t none = -1;
    ioctl(fd_, HVIO_SIM_SET_FINISH_FD, &none);
    close(efd_);
    munmap(br_, (size_t)sysconf(_SC_PAGESIZE));
    close(fd_);
}

uint8_t *Bridge::map_ram(uint64_t phys, uint64_t size) {
    if (phys < info_.ram_base || size > info_.ram_size ||
        phys - info_.ram_base > info_.ram_size - size)
        die("zone RAM %#llx+%#llx is outside sim_ram %#llx+%#llx", (unsigned long long)phys,
            (unsigned long long)size, (unsigned long long)info_.ram_base,
            (unsigned long long)info_.ram_size);
    void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_,
                   HVIO_SIM_MMAP_RAM + (phys - info_.ram_base));
    if (p == MAP_FAILED)
        die("mmap sim_ram %#llx+%#llx: %s", (unsigned long long)phys, (unsigned long long)size,
            strerror(errno));
    return static_cast<uint8_t *>(p);
}

bool Bridge::access(uint32_t zone, unsigned cpu, uint64_t addr, unsigned size, bool is_write,
                    uint64_t *val, unsigned timeout_ms, const std::atomic<bool> &stop,
                    Stats &stats) {
    bool notify = is_write && (addr & 0x1ff) == HVIO_MMIO_QUEUE_NOTIFY;
    uint64_t deadline = now_ms() + timeout_ms;
    uint32_t rear;
    unsigned spins = 0;

    if (cpu >= HVIO_BRIDGE_MAX_CPUS)
        die("zone %u: CPU %u has no cfg_flags slot (%u CPUs)", zone, cpu, HVIO_BRIDGE_MAX_CPUS);
    // One producer at a time (push_mu_): req_rear is ours.  Wait for room.
    std::unique_lock<std::mutex> push(push_mu_);
    for (;;) {
        rear = __atomic_load_n(&br_->req_rear, __ATOMIC_RELAXED) & kMask;
        uint32_t front = __atomic_load_n(&br_->req_front, __ATOMIC_ACQUIRE);
        if (((rear + 1) & kMask) != front)
            break;
        // hvisor only spins here: the push that filled the list raised
        // the root IRQ if one was wanted, and nothing raises it again.
        if (now_ms() > deadline || stop) {
            warn("bridge: req_list full for %u ms", timeout_ms);
            return false;
        }
        sched_yield();
    }
    uint64_t before = __atomic_load_n(&br_->cfg_flags[cpu], __ATOMIC_ACQUIRE);
    hvio_device_req req{};
    req.src_cpu = cpu;
    req.address = addr;
    req.size = size;
    req.value = is_write ? *val : 0;
    req.src_zone = zone;
    req.is_write = is_write;
    req.need_interrupt = notify;
    br_->req_list[rear] = req;
    __atomic_store_n(&br_->req_rear, (rear + 1) & kMask, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&br_->need_wakeup, __ATOMIC_RELAXED) == 1) {
        if (ioctl(fd_, HVIO_SIM_RAISE_IRQ, 0))
            die("HVIO_SIM_RAISE_IRQ: %s", strerror(errno));
        stats.raises++;
    }
    push.unlock();
    stats.mmio_exits++;
    if (notify) {
        stats.notifies++;
        return true; // the vCPU resumes at once, as on hvisor
    }
    while (__atomic_load_n(&br_->cfg_flags[cpu], __ATOMIC_ACQUIRE) == before) {
        if (++spins % 64)
            continue;
        if (now_ms() > deadline || stop) {
            if (!stop)
                warn("bridge: no answer for %s %#llx/%u in %u ms (req_front %u req_rear %u "
                     "need_wakeup %u)",
                     is_write ? "write" : "read", (unsigned long long)addr, size, timeout_ms,
                     __atomic_load_n(&br_->req_front, __ATOMIC_RELAXED),
                     __atomic_load_n(&br_->req_rear, __ATOMIC_RELAXED),
                     __atomic_load_n(&br_->need_wakeup, __ATOMIC_RELAXED));
            return false;
        }
        if (spins % 1024)
            cpu_relax();
        else
            sched_yield();
    }
    if (!is_write)
        *val = __atomic_load_n(&br_->cfg_values[cpu], __ATOMIC_RELAXED);
    return true;
}

void Bridge::wait_res(int timeout_ms, std::vector<hvio_device_res> &out) {
    pollfd pfd{efd_, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) == 1) {
        uint64_t n;
        if (read(efd_, &n, sizeof(n)) == sizeof(n))
            finish_ += n;
    }
    // Also drained on the poll timeout: a lost wake-up costs latency only.
    uint32_t front = __atomic_load_n(&br_->res_front, __ATOMIC_RELAXED) & kMask;
    uint32_t rear = __atomic_load_n(&br_->res_rear, __ATOMIC_ACQUIRE) & kMask;
    while (front != rear) {
        out.push_back(br_->res_list[front]);
        front = (front + 1) & kMask;
    }
    __atomic_store_n(&br_->res_front, front, __ATOMIC_RELEASE);
}

} // namespace hvemu
