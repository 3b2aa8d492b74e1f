// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the module's virtio-mmio register file
 * (module/hvio_mmio.c), built in userspace with ASan and UBSan.
 *
 * The input is one byte of device shape, then 12-byte guest accesses: offset (2 bytes,
 * covering the register block, config space and beyond), width (1 byte,
 * any value), direction and biasing flags (1 byte) and value (8 bytes).  After every access the device's invariants are checked
 * and a violation traps:
 *   - a ready queue has a power-of-two size <= QueueNumMax and rings the
 *     device accepted as inside zone RAM;
 *   - FEATURES_OK is only set with a subset of the offered features that
 *     includes VERSION_1, DRIVER_OK only with FEATURES_OK;
 *   - InterruptStatus holds only the two defined bits;
 *   - config space beyond config_len is never modified, and only the one
 *     writable byte inside it ever changes;
 *   - kicks name ready queues only.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hvio_mmio.h"

#define RAM_BASE	0x40000000ULL
#define RAM_SIZE	0x100000ULL

static struct hvio_mmio m;
static struct hvio_dev_stats stats;
static uint8_t config0[HVIO_MAX_CONFIG_LEN];

static bool fz_ram_ok(struct hvio_mmio *mm, u64 gpa, u64 len)
{
	(void)mm;
	return gpa >= RAM_BASE && len <= RAM_SIZE &&
	       gpa - RAM_BASE <= RAM_SIZE - len;
}

static void fz_kick(struct hvio_mmio *mm, u32 q)
{
	if (q >= mm->num_queues || !mm->queues[q].ready)
		__builtin_trap();
}

static void fz_status(struct hvio_mmio *mm, u32 o, u32 n, bool reset)
{
	(void)mm;
	(void)o;
	if (reset && n)
		__builtin_trap();
}

static void fz_interrupt(struct hvio_mmio *mm, u32 bits)
{
	(void)mm;
	if (!bits || (bits & ~3U))
		__builtin_trap();
}

static const struct hvio_mmio_ops fz_ops = {
	fz_ram_ok, fz_kick, fz_status, fz_interrupt,
};

static void check(void)
{
	u64 drv = m.driver_features;
	u32 i;

	if (m.int_status & ~3U)
		__builtin_trap();
	if (m.status > 0xff)
		__builtin_trap();
	if (m.status & HVIO_S_FEATURES_OK) {
		if ((drv & ~m.device_features) ||
		    !(drv & (1ULL << HVIO_F_VERSION_1)))
			__builtin_trap();
	}
	if ((m.status & HVIO_S_DRIVER_OK) && !(m.status & HVIO_S_FEATURES_OK))
		__builtin_trap();
	for (i = 0; i < HVIO_MAX_QUEUES; i++) {
		const struct hvio_mmio_queue *q = &m.queues[i];

		if (!q->ready)
			continue;
		if (i >= m.num_queues || !q->num || (q->num & (q->num - 1)) ||
		    q->num > m.queue_size_max)
			__builtin_trap();
		if (!fz_ram_ok(&m, q->desc, 16ULL * q->num) ||
		    !fz_ram_ok(&m, q->driver, 6 + 2ULL * q->num) ||
		    !fz_ram_ok(&m, q->device, 6 + 8ULL * q->num))
			__builtin_trap();
	}
	for (i = 0; i < HVIO_MAX_CONFIG_LEN; i++) {
		if ((int)i == m.cfg_wr_off && m.config[i] <= 1)
			continue;
		if (m.config[i] != config0[i])
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const size_t op_len = 12;
	uint8_t shape;
	size_t i;

	if (size < 1)
		return 0;
	shape = data[0];
	memset(&m, 0, sizeof(m));
	memset(&stats, 0, sizeof(stats));
	m.device_id = 2;
	m.num_queues = 1 + (shape & 3);
	m.queue_size_max = 2U << ((shape >> 2) & 7);
	m.device_features = (1ULL << HVIO_F_VERSION_1) | 0x3ff |
			    ((u64)(shape >> 5) << 28);
	m.config_len = 60;
	m.cfg_wr_off = (shape & 0x80) ? 32 : -1;
	m.cfg_wr_feature = 11;
	for (i = 0; i < HVIO_MAX_CONFIG_LEN; i++)
		m.config[i] = (uint8_t)(i * 7 + 1);
	memcpy(config0, m.config, sizeof(config0));
	hvio_mmio_init(&m, &fz_ops, &stats);

	for (i = 1; i + op_len <= size; i += op_len) {
		const uint8_t *p = data + i;
		u64 off = (u64)(p[0] | (p[1] << 8)) & 0x1ff;
		u32 width = p[2] & 0xf;
		bool write = p[3] & 1;
		u64 value;

		memcpy(&value, p + 4, sizeof(value));
		/* Bias register writes towards useful values. */
		if (write && (p[3] & 2))
			value &= 0xff;
		if (write && (p[3] & 4))	/* an address inside RAM */
			value = RAM_BASE | (value & (RAM_SIZE - 1));
		if (write)
			hvio_mmio_write(&m, off, width, value);
		else
			(void)hvio_mmio_read(&m, off, width);
		check();
	}
	return 0;
}
