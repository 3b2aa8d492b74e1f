// SPDX-License-Identifier: GPL-2.0
//
// virtio-blk backend: the image (file or block device), the device's
// features and config space, and the op -> io_uring SQE mapping.
//
// The mapping is three small functions so it can be tested without a
// ring or a kernel: blk_start() checks an op and turns its segments into
// iovecs, blk_prep() fills one SQE for the op's current step, and
// blk_complete() digests that SQE's result: finished, or go again (short
// transfer, or a fallback when the file system lacks a fallocate mode).
#pragma once

#include "config.h"
#include "guest_memory.h"
#include "result.h"
#include "unique_fd.h"

#include <atomic>
#include <cstdint>
#include <linux/hvio.h>
#include <string>
#include <sys/uio.h>
#include <vector>

struct io_uring_sqe;

namespace hvio {

// Ring feature bits (<linux/virtio_ring.h> does not compile as C++).
inline constexpr unsigned kVirtioRingIndirectDesc = 28; // VIRTIO_RING_F_INDIRECT_DESC
inline constexpr unsigned kVirtioRingEventIdx = 29;     // VIRTIO_RING_F_EVENT_IDX

// An opened image and what the guest is told about it.
struct BlkImage {
    UniqueFd fd;            // O_RDWR or O_RDONLY, O_DIRECT if configured
    UniqueFd buffered;      // direct only: the same image without O_DIRECT
    bool no_direct = false; // direct, but the file system refused O_DIRECT:
                            // fd is buffered, buffered is closed
    bool block_device = false;
    uint64_t size = 0;       // bytes
    uint32_t blk_size = 512; // logical block size offered
    uint8_t physical_block_exp = 0;
    uint16_t min_io_size = 1; // logical blocks
    uint32_t opt_io_size = 0; // logical blocks, 0 = not reported
};

// Opens c.path as configured (O_EXCL for a writable block device, an flock
// for a file, so no two users write one image).  On failure *why says what
// went wrong, in words.
Result<BlkImage> open_blk_image(const BlkDeviceConfig &c, std::string *why);

// Offered features (VIRTIO_F_VERSION_1 | EVENT_IDX | INDIRECT_DESC |
// SEG_MAX | SIZE_MAX | BLK_SIZE | TOPOLOGY | FLUSH | CONFIG_WCE | MQ, then
// RO if readonly, else WRITE_ZEROES and DISCARD unless "discard": false).
uint64_t blk_features(const BlkDeviceConfig &c);

// The device's config space (struct virtio_blk_config, little endian, up
// to and including unused1[]).
std::vector<uint8_t> blk_config_space(const BlkDeviceConfig &c, const BlkImage &img);

// Why a read or write of a "direct" device went through the page cache
// after all (counted per device, each logged once).
enum BlkFallback : unsigned {
    kFallbackPfnmap,     // zone RAM the kernel maps without struct pages
    kFallbackMisaligned, // guest buffer or offset not O_DIRECT aligned
    kFallbackNoDirectFs, // the file system refused O_DIRECT at open
    kFallbackRefused,    // O_DIRECT failed with EINVAL / EFAULT anyway
    kFallbackCount
};
const char *blk_fallback_name(unsigned why);

// What the queue threads of one device share about its backing store.
// The flags learn, once, what the file system cannot do, so later ops go
// straight to the fallback.
struct BlkTarget {
    std::string where; // "zones[0].devices[1]", for messages
    int fd = -1;
    int buffered_fd = -1; // -1 unless O_DIRECT
    bool block_device = false;
    bool readonly = false;
    bool discard = true;
    bool no_direct = false;    // "direct" asked for, the file system refused
    uint32_t direct_align = 0; // O_DIRECT: buffer address, length and offset
    uint64_t size = 0;

    // A kernel that does not report how it maps zone RAM: O_DIRECT failed
    // with EFAULT once, so every later op is buffered.
    std::atomic<bool> use_buffered{false};
    std::atomic<uint64_t> fallbacks[kFallbackCount] = {};
    std::atomic<bool> fallback_logged[kFallbackCount] = {};
    std::atomic<bool> no_punch{false};      // PUNCH_HOLE unsupported
    std::atomic<bool> no_zero_range{false}; // ZERO_RANGE unsupported
    std::atomic<int> bdev_discard{0};       // kDiscard* below
};
inline constexpr int kDiscardFallocate = 0; // fallocate(PUNCH_HOLE|NO_HIDE_STALE)
inline constexpr int kDiscardIoctl = 1;     // BLKDISCARD, synchronous
inline constexpr int kDiscardNoop = 2;      // the device cannot discard

// Iovecs per op: every segment, plus a few splits at region boundaries.
inline constexpr unsigned kMaxIov = HVIO_OP_MAX_SEGS + 8;

// One op in flight.
struct BlkIo {
    // kDiscardIoctl: BLKDISCARD, which io_uring has no opcode for; the
    // queue runs it on a helper thread (blk_discard_ioctl()), never on
    // the thread that waits in io_uring_enter.
    enum Step : uint8_t { kRw, kFlush, kFallocate, kZeroWrite, kDiscardIoctl };

    uint16_t tag = 0;
    uint8_t type = 0;
    Step step = kRw;
    bool buffered = false; // through buffered_fd (a direct device's fallback)
    uint32_t flags = 0;
    uint32_t generation = 0; // the op's, both halves, for the completion
    uint32_t generation_hi = 0;
    int mode = 0; // fallocate mode
    uint64_t offset = 0;
    uint64_t len = 0;
    uint64_t done = 0; // bytes transferred so far
    uint16_t nr_iov = 0;
    uint16_t iov_pos = 0; // first iovec not completely transferred
    unsigned retries = 0;
    iovec iov[kMaxIov];
};

// blk_start() result meaning "prepare an SQE"; anything else (0 or a
// negative errno) is the op's result, to be committed at once.
inline constexpr int kBlkSubmit = 1;

int blk_start(BlkIo &io, const hvio_op &op, const GuestMemory &mem, BlkTarget &t);

// Fills sqe for io's current step (user_data is the caller's); not for
// kDiscardIoctl.
void blk_prep(io_uring_sqe *sqe, BlkIo &io, const BlkTarget &t);

// The kDiscardIoctl step, synchronous (a helper thread's job): 0 or -errno,
// to be given to blk_complete() like an SQE's result.
int blk_discard_ioctl(const BlkIo &io, const BlkTarget &t);

// Digests the result of io's last SQE.  Returns true when the op is
// finished (*result: 0 or -errno), false when blk_prep() must run again.
bool blk_complete(BlkIo &io, int res, BlkTarget &t, int *result);

} // namespace hvio
