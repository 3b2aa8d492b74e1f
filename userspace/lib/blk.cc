// SPDX-License-Identifier: GPL-2.0
//
// virtio-blk backend: image, features, config space, op -> SQE.
#include "blk.h"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <endian.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace hvio {

namespace {

// What the guest may put in one request (size_max, bytes per segment) and
// in one discard / write-zeroes range (sectors).
constexpr uint32_t kSizeMax = 1 << 20;
constexpr uint32_t kMaxRangeSectors = 0x3fffff;
constexpr uint32_t kDiscardAlignSectors = 8; // 4 KiB

// How long to wait for a just-killed daemon's claim on a block device: 5 s.
constexpr int kExclRetries = 100;
constexpr useconds_t kExclRetryDelayUs = 50000;

// A transfer that makes no progress this many times in a row (EAGAIN,
// EINTR) fails instead of spinning.
constexpr unsigned kMaxRetries = 64;

// Zeroes for WRITE_ZEROES when the file system can neither punch nor zero
// a range: written from this buffer, up to kMaxIov * 64 KiB per SQE.
// Page-aligned for O_DIRECT.
constexpr size_t kZeroBuf = 64 * 1024;
alignas(4096) const uint8_t zero_buf[kZeroBuf] = {};

unsigned log2u(uint64_t v) {
    unsigned n = 0;
    while (v > 1) {
        v >>= 1;
        n++;
    }
    return n;
}

// The smallest O_DIRECT read size (and so block size) the image accepts.
int probe_direct_block(int fd) {
    void *buf = nullptr;
    if (posix_memalign(&buf, 4096, 4096))
        return -ENOMEM;
    int ret = -EINVAL;
    for (uint32_t bs = 512; bs <= 4096; bs *= 2) {
        if (::pread(fd, buf, bs, 0) >= 0) {
            ret = static_cast<int>(bs);
            break;
        }
        if (errno != EINVAL) {
            ret = -errno;
            break;
        }
    }
    std::free(buf);
    return ret;
}

std::string open_error(const BlkDeviceConfig &c, int err) {
    std::string msg = c.path + ": " + std::strerror(err);
    if (err == EINVAL && c.direct)
        msg += " (the file system does not support O_DIRECT: drop \"direct\")";
    else if (err == EBUSY && c.block_device)
        msg += " (mounted or claimed elsewhere)";
    else if ((err == EROFS || err == EACCES) && !c.readonly)
        msg += " (add \"readonly\": true to serve it read-only)";
    return msg;
}

} // namespace

Result<BlkImage> open_blk_image(const BlkDeviceConfig &c, std::string *why) {
    BlkImage img;
    img.block_device = c.block_device;
    int flags = O_CLOEXEC | (c.readonly ? O_RDONLY : O_RDWR);
    // A writable block device is claimed exclusively: the open fails while
    // root Linux has it mounted.
    if (c.block_device && !c.readonly)
        flags |= O_EXCL;
    int fd = ::open(c.path.c_str(), flags | (c.direct ? O_DIRECT : 0));
    // O_DIRECT I/O of a daemon that was just killed holds its claim on the
    // block device until the I/O completes, after that daemon is reaped:
    // give it a moment, as for its devices.
    for (int i = 0; fd < 0 && errno == EBUSY && (flags & O_EXCL) && i < kExclRetries; i++) {
        ::usleep(kExclRetryDelayUs);
        fd = ::open(c.path.c_str(), flags | (c.direct ? O_DIRECT : 0));
    }
    // A file system without O_DIRECT (tmpfs before 6.6): serve the image
    // buffered, and count every read and write as a fallback.
    if (fd < 0 && errno == EINVAL && c.direct) {
        fd = ::open(c.path.c_str(), flags);
        img.no_direct = fd >= 0;
    }
    if (fd < 0) {
        int err = errno;
        *why = open_error(c, err);
        return Error(err);
    }
    img.fd.reset(fd);

    if (!c.block_device && ::flock(fd, (c.readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
        int err = errno;
        *why = c.path + ": " +
               (err == EWOULDBLOCK ? std::string("in use by another process (locked)")
                                   : std::string(std::strerror(err)));
        return Error(err);
    }

    struct stat st;
    if (::fstat(fd, &st) < 0) {
        int err = errno;
        *why = c.path + ": fstat: " + std::strerror(err);
        return Error(err);
    }
    if (c.block_device) {
        uint64_t bytes = 0;
        int lbs = 512;
        unsigned int pbs = 512, iomin = 0, ioopt = 0;
        if (::ioctl(fd, BLKGETSIZE64, &bytes) < 0 || ::ioctl(fd, BLKSSZGET, &lbs) < 0) {
            int err = errno;
            *why = c.path + ": block device size: " + std::strerror(err);
            return Error(err);
        }
        (void)::ioctl(fd, BLKPBSZGET, &pbs);
        (void)::ioctl(fd, BLKIOMIN, &iomin);
        (void)::ioctl(fd, BLKIOOPT, &ioopt);
        img.size = bytes;
        img.blk_size = lbs >= 512 ? static_cast<uint32_t>(lbs) : 512;
        if (pbs > img.blk_size)
            img.physical_block_exp = static_cast<uint8_t>(log2u(pbs / img.blk_size));
        img.min_io_size = static_cast<uint16_t>(
            std::clamp<uint64_t>(std::max<uint64_t>(iomin, pbs) / img.blk_size, 1, 0xffff));
        img.opt_io_size = ioopt / img.blk_size;
    } else {
        img.size = static_cast<uint64_t>(st.st_size);
        if (c.direct && !img.no_direct) {
            int bs = probe_direct_block(fd);
            if (bs < 0) {
                *why = c.path + ": O_DIRECT reads fail: " + std::strerror(-bs);
                return Error(-bs);
            }
            img.blk_size = static_cast<uint32_t>(bs);
        }
        // Tell the guest the file system's block size is the physical one,
        // so it keeps its I/O aligned to it.
        uint64_t fsb = std::clamp<uint64_t>(st.st_blksize, img.blk_size, 64 * 1024);
        img.physical_block_exp = static_cast<uint8_t>(log2u(fsb / img.blk_size));
        img.min_io_size = static_cast<uint16_t>(1u << img.physical_block_exp);
    }

    if (c.direct && !img.no_direct) {
        int bfd = ::open(c.path.c_str(), O_CLOEXEC | (c.readonly ? O_RDONLY : O_RDWR));
        if (bfd < 0) {
            int err = errno;
            *why = open_error(c, err);
            return Error(err);
        }
        img.buffered.reset(bfd);
    }
    return img;
}

uint64_t blk_features(const BlkDeviceConfig &c) {
    uint64_t f = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << kVirtioRingEventIdx |
                 1ULL << kVirtioRingIndirectDesc | 1ULL << VIRTIO_BLK_F_SEG_MAX |
                 1ULL << VIRTIO_BLK_F_SIZE_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
                 1ULL << VIRTIO_BLK_F_TOPOLOGY | 1ULL << VIRTIO_BLK_F_FLUSH |
                 1ULL << VIRTIO_BLK_F_CONFIG_WCE | 1ULL << VIRTIO_BLK_F_MQ;
    // A read-only disk has nothing to discard or zero.
    if (c.readonly)
        f |= 1ULL << VIRTIO_BLK_F_RO;
    else
        f |= (c.discard ? 1ULL << VIRTIO_BLK_F_DISCARD : 0) | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
    return f;
}

std::vector<uint8_t> blk_config_space(const BlkDeviceConfig &c, const BlkImage &img) {
    virtio_blk_config cfg;
    std::memset(&cfg, 0, sizeof(cfg));
    cfg.capacity = htole64(img.size >> 9);
    cfg.size_max = htole32(kSizeMax);
    cfg.seg_max = htole32(HVIO_OP_MAX_SEGS);
    cfg.blk_size = htole32(img.blk_size);
    cfg.physical_block_exp = img.physical_block_exp;
    cfg.alignment_offset = 0;
    cfg.min_io_size = htole16(img.min_io_size);
    cfg.opt_io_size = htole32(img.opt_io_size);
    cfg.wce = 1; // writeback; the driver may switch (CONFIG_WCE)
    cfg.num_queues = htole16(static_cast<uint16_t>(c.queues));
    cfg.max_discard_sectors = htole32(kMaxRangeSectors);
    cfg.max_discard_seg = htole32(1);
    cfg.discard_sector_alignment =
        htole32(std::max<uint32_t>(kDiscardAlignSectors, img.blk_size >> 9));
    cfg.max_write_zeroes_sectors = htole32(kMaxRangeSectors);
    cfg.max_write_zeroes_seg = htole32(1);
    cfg.write_zeroes_may_unmap = 1;

    constexpr size_t len =
        offsetof(virtio_blk_config, unused1) + sizeof(virtio_blk_config::unused1);
    static_assert(len <= HVIO_MAX_CONFIG_LEN);
    const auto *p = reinterpret_cast<const uint8_t *>(&cfg);
    return std::vector<uint8_t>(p, p + len);
}

// ---- op -> SQE -------------------------------------------------------------

const char *blk_fallback_name(unsigned why) {
    static const char *const names[kFallbackCount] = {"pfnmap", "misaligned", "no_direct_fs",
                                                      "refused"};
    return why < kFallbackCount ? names[why] : "?";
}

namespace {

// One read or write of a direct device goes through the page cache.
void note_fallback(BlkTarget &t, unsigned why) {
    static const char *const reasons[kFallbackCount] = {
        "zone RAM is mapped without struct pages (see hvio.ko's log), O_DIRECT cannot pin it",
        "a guest buffer, length or offset is not aligned to the O_DIRECT block size",
        "the file system does not support O_DIRECT", "O_DIRECT refused an I/O (EINVAL or EFAULT)"};
    t.fallbacks[why].fetch_add(1, std::memory_order_relaxed);
    if (!t.fallback_logged[why].exchange(true))
        std::fprintf(stderr, "hvio: %s: buffered I/O instead of O_DIRECT: %s (counted as %s)\n",
                     t.where.c_str(), reasons[why], blk_fallback_name(why));
}

// Can O_DIRECT do this read or write?  kFallbackCount if so, else why not.
unsigned direct_refusal(const BlkIo &io, bool pinnable, const BlkTarget &t) {
    if (t.no_direct)
        return kFallbackNoDirectFs;
    if (!pinnable)
        return kFallbackPfnmap;
    if (t.use_buffered.load(std::memory_order_relaxed))
        return kFallbackRefused;
    const uint64_t mask = t.direct_align ? t.direct_align - 1 : 0;
    if (io.offset & mask)
        return kFallbackMisaligned;
    for (unsigned i = 0; i < io.nr_iov; i++)
        if ((reinterpret_cast<uintptr_t>(io.iov[i].iov_base) | io.iov[i].iov_len) & mask)
            return kFallbackMisaligned;
    return kFallbackCount;
}

} // namespace

int blk_start(BlkIo &io, const hvio_op &op, const GuestMemory &mem, BlkTarget &t) {
    io.tag = op.tag;
    io.type = op.type;
    io.flags = op.flags;
    io.generation = op.generation;
    io.generation_hi = op.generation_hi;
    io.offset = op.offset;
    io.len = op.len;
    io.done = 0;
    io.nr_iov = 0;
    io.iov_pos = 0;
    io.retries = 0;
    io.buffered = false;

    const bool in_range = op.offset <= t.size && op.len <= t.size - op.offset;
    switch (op.type) {
    case HVIO_OP_READ:
    case HVIO_OP_WRITE: {
        if (op.type == HVIO_OP_WRITE && t.readonly)
            return -EROFS;
        if (op.nr_segs > HVIO_OP_MAX_SEGS)
            return -EINVAL;
        if (!in_range)
            return -EIO;
        bool pinnable = true;
        int n = mem.translate(std::span(op.segs, op.nr_segs), std::span(io.iov), &pinnable);
        if (n < 0)
            return n == -E2BIG ? -EIO : -EFAULT;
        uint64_t sum = 0;
        for (int i = 0; i < n; i++)
            sum += io.iov[i].iov_len;
        if (sum != op.len)
            return -EINVAL;
        if (!op.len)
            return 0;
        io.nr_iov = static_cast<uint16_t>(n);
        io.step = BlkIo::kRw;
        if (t.buffered_fd >= 0 || t.no_direct) {
            unsigned why = direct_refusal(io, pinnable, t);
            if (why != kFallbackCount) {
                io.buffered = t.buffered_fd >= 0;
                note_fallback(t, why);
            }
        }
        return kBlkSubmit;
    }
    case HVIO_OP_FLUSH:
        if (t.readonly)
            return 0; // nothing was written
        io.step = BlkIo::kFlush;
        return kBlkSubmit;
    case HVIO_OP_DISCARD:
        if (t.readonly)
            return -EROFS;
        if (!t.discard)
            return -EOPNOTSUPP;
        if (!in_range)
            return -EIO;
        if (!op.len)
            return 0;
        // Discard is a hint: where the store cannot drop blocks, done.
        if (t.block_device) {
            switch (t.bdev_discard.load(std::memory_order_relaxed)) {
            case kDiscardNoop:
                return 0;
            case kDiscardIoctl:
                io.step = BlkIo::kDiscardIoctl;
                return kBlkSubmit;
            }
            io.mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE | FALLOC_FL_NO_HIDE_STALE;
        } else {
            if (t.no_punch.load(std::memory_order_relaxed))
                return 0;
            io.mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
        }
        io.step = BlkIo::kFallocate;
        return kBlkSubmit;
    case HVIO_OP_WRITE_ZEROES:
        if (t.readonly)
            return -EROFS;
        if (!in_range)
            return -EIO;
        if (!op.len)
            return 0;
        // A punched hole reads as zeroes (on a block device: zero-out that
        // may unmap), so with UNMAP it is the cheapest way there.
        if ((op.flags & HVIO_OP_F_UNMAP) && !t.no_punch.load(std::memory_order_relaxed)) {
            io.mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
            io.step = BlkIo::kFallocate;
        } else if (!t.no_zero_range.load(std::memory_order_relaxed)) {
            io.mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
            io.step = BlkIo::kFallocate;
        } else {
            io.step = BlkIo::kZeroWrite;
        }
        return kBlkSubmit;
    default:
        return -EOPNOTSUPP;
    }
}

void blk_prep(io_uring_sqe *sqe, BlkIo &io, const BlkTarget &t) {
    const int fd = io.buffered ? t.buffered_fd : t.fd;
    const int rw_flags = (io.flags & HVIO_OP_F_FUA) ? RWF_DSYNC : 0;
    const uint64_t off = io.offset + io.done;

    switch (io.step) {
    case BlkIo::kRw: {
        const iovec *iov = io.iov + io.iov_pos;
        const unsigned n = io.nr_iov - io.iov_pos;
        // One buffer (a guest's 4 KiB page, say) needs no iovec: the
        // kernel then skips importing and checking one per request.
        if (n == 1 && io.type == HVIO_OP_READ) {
            io_uring_prep_read(sqe, fd, iov->iov_base, static_cast<unsigned>(iov->iov_len), off);
        } else if (n == 1) {
            io_uring_prep_write(sqe, fd, iov->iov_base, static_cast<unsigned>(iov->iov_len), off);
            sqe->rw_flags = rw_flags;
        } else if (io.type == HVIO_OP_READ) {
            io_uring_prep_readv(sqe, fd, iov, n, off);
        } else {
            io_uring_prep_writev2(sqe, fd, iov, n, off, rw_flags);
        }
        break;
    }
    case BlkIo::kFlush:
        io_uring_prep_fsync(sqe, t.fd, IORING_FSYNC_DATASYNC);
        break;
    case BlkIo::kFallocate:
        io_uring_prep_fallocate(sqe, fd, io.mode, static_cast<off_t>(io.offset),
                                static_cast<off_t>(io.len));
        break;
    case BlkIo::kZeroWrite: {
        uint64_t left = io.len - io.done;
        unsigned n = 0;
        while (left && n < kMaxIov) {
            size_t chunk = static_cast<size_t>(std::min<uint64_t>(left, kZeroBuf));
            io.iov[n++] = iovec{const_cast<uint8_t *>(zero_buf), chunk};
            left -= chunk;
        }
        io.nr_iov = static_cast<uint16_t>(n);
        io.iov_pos = 0;
        io_uring_prep_writev2(sqe, fd, io.iov, n, off, rw_flags);
        break;
    }
    case BlkIo::kDiscardIoctl:
        io_uring_prep_nop(sqe); // never asked for: see blk.h
        break;
    }
}

int blk_discard_ioctl(const BlkIo &io, const BlkTarget &t) {
    uint64_t r[2] = {io.offset, io.len};
    return ::ioctl(t.fd, BLKDISCARD, r) < 0 ? -errno : 0;
}

namespace {

// Account for res bytes transferred: skip the iovecs done, trim the
// partial one.
void advance(BlkIo &io, uint64_t res) {
    io.done += res;
    while (res && io.iov_pos < io.nr_iov) {
        iovec &v = io.iov[io.iov_pos];
        if (res >= v.iov_len) {
            res -= v.iov_len;
            io.iov_pos++;
        } else {
            v.iov_base = static_cast<uint8_t *>(v.iov_base) + res;
            v.iov_len -= res;
            res = 0;
        }
    }
}

bool retry(BlkIo &io, int *result, int res) {
    if (++io.retries > kMaxRetries) {
        *result = res;
        return true;
    }
    return false;
}

} // namespace

bool blk_complete(BlkIo &io, int res, BlkTarget &t, int *result) {
    if (res == -EAGAIN || res == -EINTR)
        return retry(io, result, res);

    switch (io.step) {
    case BlkIo::kRw:
    case BlkIo::kZeroWrite:
        if ((res == -EFAULT || res == -EINVAL) && t.buffered_fd >= 0 && !io.buffered &&
            io.step == BlkIo::kRw) {
            // O_DIRECT pins the guest pages: zone RAM of a kernel that does
            // not report its mapping may be raw PFNs (EFAULT, from now on
            // buffered), a buffer may break an alignment rule we did not
            // know (EINVAL, this op).  Buffered I/O copies and always works.
            if (res == -EFAULT)
                t.use_buffered.store(true);
            io.buffered = true;
            note_fallback(t, kFallbackRefused);
            return retry(io, result, res);
        }
        if (res < 0) {
            *result = res;
            return true;
        }
        if (res == 0) {
            // End of file inside the disk: the image shrank under us.
            *result = -EIO;
            return true;
        }
        if (io.step == BlkIo::kRw)
            advance(io, static_cast<uint64_t>(res));
        else
            io.done += static_cast<uint64_t>(res);
        io.retries = 0;
        if (io.done >= io.len) {
            *result = 0;
            return true;
        }
        return false;

    case BlkIo::kFlush:
        *result = res < 0 ? res : 0;
        return true;

    case BlkIo::kDiscardIoctl:
        // A device that cannot discard says so once; a hint it cannot
        // take is done.
        t.bdev_discard.store(res == -EOPNOTSUPP ? kDiscardNoop : kDiscardIoctl);
        *result = res == -EOPNOTSUPP ? 0 : res;
        return true;

    case BlkIo::kFallocate:
        if (res != -EOPNOTSUPP) {
            *result = res < 0 ? res : 0;
            return true;
        }
        if (io.type == HVIO_OP_DISCARD) {
            *result = 0; // a hint the store cannot take
            if (!t.block_device) {
                t.no_punch.store(true);
                return true;
            }
            // This kernel may lack fallocate's discard mode: try the ioctl
            // (off the queue thread); if it works, use it from now on.
            io.step = BlkIo::kDiscardIoctl;
            return false;
        }
        // WRITE_ZEROES: punch -> zero range -> write zeroes.
        if (io.mode & FALLOC_FL_PUNCH_HOLE) {
            t.no_punch.store(true);
            if (!t.no_zero_range.load()) {
                io.mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
                return false;
            }
        } else {
            t.no_zero_range.store(true);
        }
        io.step = BlkIo::kZeroWrite;
        return false;
    }
    *result = -EIO;
    return true;
}

} // namespace hvio
