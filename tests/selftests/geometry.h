/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Geometry shared by the selftest programs and their helpers: what the
 * tests carve zones from, and where zone RAM and the first device window
 * sit in a zone's address space.  No harness here (helpers include it).
 */
#ifndef HVIO_GEOMETRY_H
#define HVIO_GEOMETRY_H

#define MIB			(1024ULL * 1024)
#define MIN_SIM_RAM		(8 * MIB)	/* what the tests carve zones from */
#define GUEST_RAM		0x80000000ULL	/* zonex_ipa of zone RAM */
#define MMIO_BASE		0x0a000000ULL	/* first device window (zone IPA) */
#define ZONE_A			1
#define ZONE_B			2

#endif /* HVIO_GEOMETRY_H */
