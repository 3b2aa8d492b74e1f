// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the split-virtqueue engine (module/hvio_vq.c).
 *
 * The input is a 16-byte header followed by the initial contents of an
 * 8 KiB zone RAM at guest address HVIO_FUZZ_BASE (zero padded).  The
 * harness plays a hostile driver: it sets the queue up where the header
 * says, bumps avail->idx by header-chosen amounts over a few rounds, and
 * can rewrite one RAM byte whenever the parser maps something (a guest
 * racing with the device).  The device side pops every chain, completes
 * it, and asks for interrupts and kicks the way the module does.
 *
 * Invariants (a violation is __builtin_trap()):
 *  - every returned segment is non-empty and lies inside RAM;
 *  - nr_segs <= max_segs and the segment array is not written past it;
 *  - byte sums match the segments, readable segments come first;
 *  - a rejected chain has a valid head and no segments;
 *  - E_HEAD and E_AVAIL_JUMP break the queue and nothing else does;
 *  - no byte of RAM outside the used ring changes except by the driver.
 * ASan/UBSan catch out-of-bounds reads; libFuzzer's -timeout catches loops.
 *
 * Built with -DHVIO_VQ_FUZZ_GEN instead, this file is a program writing the
 * seed corpus: ./gen DIR.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvio_vq.h"

#define HVIO_FUZZ_BASE		0x10000ULL
#define HVIO_FUZZ_RAM		8192
#define HVIO_FUZZ_MAX_SEGS	300
#define HVIO_FUZZ_HDR		16

/* Header flags. */
#define HF_EVENT_IDX		0x01
#define HF_INDIRECT		0x02
#define HF_MISALIGN		0x04	/* keep offsets as given (setup may refuse) */
#define HF_BATCH		0x08	/* add_used + one publish per round */
#define HF_RACE			0x10	/* rewrite a byte on each map() */

struct fuzz_hdr {
	uint8_t num_log2;	/* num = 1 << (num_log2 % 8) */
	uint8_t flags;		/* HF_* */
	uint8_t max_segs;	/* segment array capacity */
	uint8_t rounds;		/* rounds % 8 + 1 */
	uint8_t desc[2], avail[2], used[2];	/* LE16 offsets into RAM */
	uint8_t add[4];		/* avail->idx increments, one per round */
	uint8_t race[2];	/* LE16 offset of the raced byte */
};

struct fuzz_ctx {
	uint8_t ram[HVIO_FUZZ_RAM];
	uint8_t shadow[HVIO_FUZZ_RAM];	/* what RAM may hold */
	uint32_t race_off;		/* >= HVIO_FUZZ_RAM: no race */
	uint8_t race_val;
};

static struct fuzz_ctx ctx;

static void check(int ok)
{
	if (!ok)
		__builtin_trap();
}

static void *fuzz_map(void *p, uint64_t gpa, uint64_t len)
{
	struct fuzz_ctx *c = p;

	/*
	 * The guest changes memory under the parser: one byte flips on each
	 * map() call, in RAM and in the shadow (it is the driver's write).
	 */
	if (c->race_off < HVIO_FUZZ_RAM) {
		c->race_val += 0x5b;
		c->ram[c->race_off] ^= c->race_val;
		c->shadow[c->race_off] = c->ram[c->race_off];
	}
	if (!len || gpa + len < gpa || gpa < HVIO_FUZZ_BASE ||
	    len > HVIO_FUZZ_RAM || gpa - HVIO_FUZZ_BASE > HVIO_FUZZ_RAM - len)
		return NULL;
	return c->ram + (gpa - HVIO_FUZZ_BASE);
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* The driver side: bump avail->idx in RAM and shadow alike. */
static void driver_add(uint32_t avail_off, uint8_t n)
{
	uint16_t idx;

	if (avail_off + 4 > HVIO_FUZZ_RAM)
		return;
	idx = rd16(&ctx.ram[avail_off + 2]) + n;
	ctx.ram[avail_off + 2] = (uint8_t)idx;
	ctx.ram[avail_off + 3] = (uint8_t)(idx >> 8);
	memcpy(&ctx.shadow[avail_off + 2], &ctx.ram[avail_off + 2], 2);
}

/* Nothing outside [used_off, used_off + used_len) may differ. */
static void check_ram(uint32_t used_off, uint32_t used_len)
{
	uint32_t end = used_off + used_len;

	if (end > HVIO_FUZZ_RAM)
		end = HVIO_FUZZ_RAM;
	if (used_off > HVIO_FUZZ_RAM)
		used_off = HVIO_FUZZ_RAM;
	check(!memcmp(ctx.ram, ctx.shadow, used_off));
	check(!memcmp(ctx.ram + end, ctx.shadow + end, HVIO_FUZZ_RAM - end));
}

static void check_chain(const struct hvio_vq *vq,
			const struct hvio_vq_seg *segs, uint16_t max_segs,
			const struct hvio_vq_chain *c)
{
	uint64_t out = 0, in = 0;
	int seen_write = 0;
	uint16_t i;

	check(c->head < vq->num);
	check(c->nr_segs >= 1 && c->nr_segs <= max_segs);
	for (i = 0; i < c->nr_segs; i++) {
		const struct hvio_vq_seg *s = &segs[i];

		check(s->len > 0);
		check(s->gpa >= HVIO_FUZZ_BASE);
		check(s->gpa - HVIO_FUZZ_BASE + s->len <= HVIO_FUZZ_RAM);
		/* the pointer users of the segment write through */
		check(s->va == ctx.ram + (s->gpa - HVIO_FUZZ_BASE));
		check(s->write == 0 || s->write == 1);
		if (s->write) {
			seen_write = 1;
			in += s->len;
		} else {
			check(!seen_write);
			out += s->len;
		}
	}
	check(out == c->out_bytes && in == c->in_bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hvio_vq_seg segs[HVIO_FUZZ_MAX_SEGS + 1];
	const struct hvio_vq_seg canary = { 0xc0ffee, 0xc0ffee, 0xc0ffee };
	struct hvio_vq_mem mem = { fuzz_map, &ctx };
	struct fuzz_hdr h;
	struct hvio_vq vq;
	uint32_t desc_off, avail_off, used_off, used_len;
	uint16_t num, max_segs;
	unsigned int round, rounds, k;
	bool event_idx, indirect;

	if (size < HVIO_FUZZ_HDR)
		return 0;
	memcpy(&h, data, sizeof(h));
	memset(ctx.ram, 0, sizeof(ctx.ram));
	size -= HVIO_FUZZ_HDR;
	memcpy(ctx.ram, data + HVIO_FUZZ_HDR,
	       size < HVIO_FUZZ_RAM ? size : HVIO_FUZZ_RAM);
	memcpy(ctx.shadow, ctx.ram, sizeof(ctx.ram));
	ctx.race_off = (h.flags & HF_RACE) ? rd16(h.race) : UINT32_MAX;
	ctx.race_val = 0;

	num = (uint16_t)(1u << (h.num_log2 % 8));
	max_segs = h.max_segs;
	event_idx = h.flags & HF_EVENT_IDX;
	indirect = h.flags & HF_INDIRECT;
	desc_off = rd16(h.desc) % HVIO_FUZZ_RAM;
	avail_off = rd16(h.avail) % HVIO_FUZZ_RAM;
	used_off = rd16(h.used) % HVIO_FUZZ_RAM;
	if (!(h.flags & HF_MISALIGN)) {
		desc_off &= ~15u;
		avail_off &= ~1u;
		used_off &= ~3u;
	}
	used_len = 6 + 8u * num;

	if (hvio_vq_setup(&vq, &mem, num, HVIO_FUZZ_BASE + desc_off,
			  HVIO_FUZZ_BASE + avail_off, HVIO_FUZZ_BASE + used_off,
			  event_idx, indirect)) {
		check_ram(HVIO_FUZZ_RAM, 0);
		return 0;
	}
	check(vq.num == num);

	rounds = h.rounds % 8 + 1;
	for (round = 0; round < rounds; round++) {
		bool pushed = false;

		driver_add(avail_off, h.add[round % 4]);
		if (hvio_vq_avail(&vq) < 0)
			check(vq.broken);

		/* More pops than heads can exist: the last ones see EMPTY. */
		for (k = 0; k < 2u * num + 2; k++) {
			struct hvio_vq_chain c;
			enum hvio_vq_err err;
			u16 last = vq.last_avail;

			segs[max_segs] = canary;
			err = hvio_vq_pop(&vq, segs, max_segs, &c);
			check(!memcmp(&segs[max_segs], &canary, sizeof(canary)));
			if (err == HVIO_VQ_EMPTY) {
				check(vq.last_avail == last && !vq.broken);
				break;
			}
			if (err == HVIO_VQ_BROKEN || err == HVIO_VQ_E_HEAD ||
			    err == HVIO_VQ_E_AVAIL_JUMP) {
				check(vq.broken && vq.last_avail == last);
				break;
			}
			check(!vq.broken && vq.last_avail == (u16)(last + 1));
			check(err < HVIO_VQ_E_MAX);
			if (err == HVIO_VQ_OK) {
				check_chain(&vq, segs, max_segs, &c);
			} else {
				check(c.head < num && c.nr_segs == 0);
				check(!c.out_bytes && !c.in_bytes);
			}
			if (h.flags & HF_BATCH)
				hvio_vq_add_used(&vq, c.head, c.in_bytes);
			else
				hvio_vq_push_used(&vq, c.head, c.in_bytes);
			pushed = true;
		}
		if (pushed && (h.flags & HF_BATCH))
			hvio_vq_publish_used(&vq);
		if (!(h.flags & HF_RACE))
			check(!pushed || rd16(&ctx.ram[used_off + 2]) ==
			      vq.used_idx);
		hvio_vq_need_interrupt(&vq);
		hvio_vq_enable_notify(&vq);
		hvio_vq_avail(&vq);
		check_ram(used_off, used_len);
	}
	for (k = 0; k < HVIO_VQ_E_MAX; k++)
		check(k > HVIO_VQ_BROKEN || !vq.errors[k]);
	return 0;
}

#ifdef HVIO_VQ_FUZZ_GEN
/*
 * Seed corpus: a few well-formed queues and a few classic attacks, so the
 * fuzzer starts from inputs that reach deep into the walk.  Layout: desc
 * table at RAM offset 0, avail ring at 0x800, used ring at 0xc00, indirect
 * tables at 0x1000, buffers from 0x1400.
 */
struct seed {
	uint8_t buf[HVIO_FUZZ_HDR + HVIO_FUZZ_RAM];
	size_t len;
};

static void put16(struct seed *s, uint32_t off, uint16_t v)
{
	s->buf[HVIO_FUZZ_HDR + off] = (uint8_t)v;
	s->buf[HVIO_FUZZ_HDR + off + 1] = (uint8_t)(v >> 8);
	if (off + 2 > s->len)
		s->len = off + 2;
}

static void put32(struct seed *s, uint32_t off, uint32_t v)
{
	put16(s, off, (uint16_t)v);
	put16(s, off + 2, (uint16_t)(v >> 16));
}

static void desc(struct seed *s, uint32_t table, uint16_t i, uint64_t addr,
		 uint32_t len, uint16_t flags, uint16_t next)
{
	uint32_t d = table + 16u * i;

	put32(s, d, (uint32_t)addr);
	put32(s, d + 4, (uint32_t)(addr >> 32));
	put32(s, d + 8, len);
	put16(s, d + 12, flags);
	put16(s, d + 14, next);
}

static void seed_init(struct seed *s, uint8_t num_log2, uint8_t flags,
		      uint8_t max_segs, const uint16_t *heads, uint8_t n)
{
	struct fuzz_hdr h = {
		.num_log2 = num_log2, .flags = flags, .max_segs = max_segs,
		.rounds = 1, .desc = { 0x00, 0x00 }, .avail = { 0x00, 0x08 },
		.used = { 0x00, 0x0c }, .add = { n, 0, 0, 0 },
		.race = { 0xff, 0xff },
	};
	uint8_t i;

	memset(s, 0, sizeof(*s));
	memcpy(s->buf, &h, sizeof(h));
	for (i = 0; i < n; i++)
		put16(s, 0x800 + 4 + 2u * i, heads[i]);
}

#define BUF(x)	(HVIO_FUZZ_BASE + 0x1400 + (x))
#define IND	0x1000

static void seed_write(const char *dir, const char *name, struct seed *s)
{
	char path[512];
	size_t len = HVIO_FUZZ_HDR + s->len;
	FILE *f;

	/* Every seed must pass the invariants itself. */
	LLVMFuzzerTestOneInput(s->buf, len);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->buf, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	static const uint16_t h0[] = { 0 }, h3[] = { 0, 3, 5 };
	const char *dir = argc > 1 ? argv[1] : ".";
	struct seed s;

	/* A direct chain: readable header, writable data, status byte. */
	seed_init(&s, 3, HF_EVENT_IDX | HF_INDIRECT, 8, h0, 1);
	desc(&s, 0, 0, BUF(0), 16, HVIO_VQ_DESC_F_NEXT, 1);
	desc(&s, 0, 1, BUF(0x100), 512,
	     HVIO_VQ_DESC_F_NEXT | HVIO_VQ_DESC_F_WRITE, 2);
	desc(&s, 0, 2, BUF(0x300), 1, HVIO_VQ_DESC_F_WRITE, 0);
	seed_write(dir, "direct", &s);

	/* Three heads, one of them indirect, over several rounds. */
	seed_init(&s, 3, HF_EVENT_IDX | HF_INDIRECT | HF_BATCH, 8, h3, 3);
	s.buf[3] = 3;
	desc(&s, 0, 0, BUF(0), 64, 0, 0);
	desc(&s, 0, 3, HVIO_FUZZ_BASE + IND, 48, HVIO_VQ_DESC_F_INDIRECT, 0);
	desc(&s, IND, 0, BUF(0x40), 8, HVIO_VQ_DESC_F_NEXT, 2);
	desc(&s, IND, 2, BUF(0x80), 8, HVIO_VQ_DESC_F_NEXT, 1);
	desc(&s, IND, 1, BUF(0xc0), 8, HVIO_VQ_DESC_F_WRITE, 0);
	desc(&s, 0, 5, BUF(0x200), 4, HVIO_VQ_DESC_F_NEXT, 6);
	desc(&s, 0, 6, HVIO_FUZZ_BASE + IND + 0x100, 16,
	     HVIO_VQ_DESC_F_INDIRECT, 0);
	desc(&s, IND + 0x100, 0, BUF(0x300), 100, HVIO_VQ_DESC_F_WRITE, 0);
	seed_write(dir, "indirect", &s);

	/* A loop, a nested indirect table, and a raced descriptor. */
	seed_init(&s, 2, HF_INDIRECT | HF_RACE, 4, h3, 3);
	s.buf[14] = 0x1e;	/* race on desc 1's next */
	s.buf[15] = 0x00;
	desc(&s, 0, 0, BUF(0), 8, HVIO_VQ_DESC_F_NEXT, 1);
	desc(&s, 0, 1, BUF(8), 8, HVIO_VQ_DESC_F_NEXT, 0);
	desc(&s, 0, 3, HVIO_FUZZ_BASE + IND, 16, HVIO_VQ_DESC_F_INDIRECT, 0);
	desc(&s, IND, 0, HVIO_FUZZ_BASE + IND, 16, HVIO_VQ_DESC_F_INDIRECT, 0);
	seed_write(dir, "attacks", &s);

	/* Head out of range, then an avail index jump in a later round. */
	seed_init(&s, 1, 0, 2, h3, 1);
	s.buf[3] = 1;
	s.buf[11] = 200;
	desc(&s, 0, 0, BUF(0), 8, 0, 0);
	put16(&s, 0x800 + 4, 1);
	seed_write(dir, "jump", &s);
	seed_init(&s, 2, 0, 2, h3, 3);
	seed_write(dir, "badhead", &s);

	/* A 128-entry queue whose chain uses every descriptor. */
	seed_init(&s, 7, HF_EVENT_IDX, 255, h0, 1);
	for (uint16_t i = 0; i < 128; i++)
		desc(&s, 0, i, BUF(i * 8), 8,
		     i == 127 ? HVIO_VQ_DESC_F_WRITE :
				HVIO_VQ_DESC_F_NEXT | HVIO_VQ_DESC_F_WRITE,
		     (uint16_t)(i + 1));
	seed_write(dir, "longchain", &s);
	return 0;
}
#endif
