/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hvisor-tool's example virtio_cfg.json files, verbatim, as C string
 * literals shared by the parser's unit tests (tests/unit/config_test.cc)
 * and the selftest that serves them (hvio_examples.c).  Issue 12 §3:
 *   HVT_QEMU_AARCH64: examples/qemu-aarch64/with_virtio_blk_console/
 *                     virtio_cfg.json (indentation included): blk, console
 *   HVT_NXP_AARCH64:  examples/nxp-aarch64/virtio_cfg.json as the issue
 *                     gives it: blk, net disabled, console
 *   HVT_QEMU_X86_64:  examples/qemu-x86_64/virtio_cfg.json as the issue
 *                     describes it: two RAM regions (the second at 4 GiB),
 *                     console, net on tap0, blk on rootfs2.img
 */
#ifndef HVIO_HVISOR_EXAMPLES_H
#define HVIO_HVISOR_EXAMPLES_H

#define HVT_QEMU_AARCH64 \
	"{\n" \
	"    \"zones\": [\n" \
	"        {\n" \
	"            \"id\": 1,\n" \
	"            \"memory_region\": [\n" \
	"                {\n" \
	"                    \"zone0_ipa\": \"0x50000000\",\n" \
	"                    \"zonex_ipa\": \"0x50000000\",\n" \
	"                    \"size\": \"0x30000000\"\n" \
	"                }\n" \
	"            ],\n" \
	"            \"devices\": [\n" \
	"                    {\n" \
	"                        \"type\": \"blk\",\n" \
	"                        \"addr\": \"0xa003c00\",\n" \
	"                        \"len\": \"0x200\",\n" \
	"                        \"irq\": 78,\n" \
	"                        \"img\": \"rootfs2.ext4\",\n" \
	"                        \"status\": \"enable\"\n" \
	"                    },\n" \
	"                    {\n" \
	"                        \"type\": \"console\",\n" \
	"                        \"addr\": \"0xa003800\",\n" \
	"                        \"len\": \"0x200\",\n" \
	"                        \"irq\": 76,\n" \
	"                        \"status\": \"enable\"\n" \
	"                    }\n" \
	"                ]\n" \
	"        }\n" \
	"    ]\n" \
	"}"

#define HVT_NXP_AARCH64 \
	"{\"zones\":[{\"id\":1,\"memory_region\":[{\"zone0_ipa\":\"0x50000000\",\n" \
	"  \"zonex_ipa\":\"0x50000000\",\"size\":\"0x30000000\"}],\"devices\":[{\"type\":\"blk\",\"addr\":\"0xa003c00\",\n" \
	"  \"len\":\"0x200\",\"irq\":78,\"img\":\"rootfs2.ext4\",\"status\":\"enable\"},{\"type\":\"net\",\n" \
	"  \"addr\":\"0xa003600\",\"len\":\"0x200\",\"irq\":75,\"tap\":\"tap0\",\"mac\":[\"0x00\",\"0x16\",\"0x3e\",\"0x10\",\n" \
	"  \"0x10\",\"0x10\"],\"status\":\"disable\"},{\"type\":\"console\",\"addr\":\"0xa003800\",\"len\":\"0x200\",\n" \
	"  \"irq\":76,\"status\":\"enable\"}]}]}"

#define HVT_QEMU_X86_64 \
	"{\n" \
	"    \"zones\": [\n" \
	"        {\n" \
	"            \"id\": 1,\n" \
	"            \"memory_region\": [\n" \
	"                {\n" \
	"                    \"zone0_ipa\": \"0x40300000\",\n" \
	"                    \"zonex_ipa\": \"0x0\",\n" \
	"                    \"size\": \"0x20000000\"\n" \
	"                },\n" \
	"                {\n" \
	"                    \"zone0_ipa\": \"0x100000000\",\n" \
	"                    \"zonex_ipa\": \"0x100000000\",\n" \
	"                    \"size\": \"0x70000000\"\n" \
	"                }\n" \
	"            ],\n" \
	"            \"devices\": [\n" \
	"                {\n" \
	"                    \"type\": \"console\",\n" \
	"                    \"addr\": \"0x5950f000\",\n" \
	"                    \"len\": \"0x200\",\n" \
	"                    \"irq\": 10,\n" \
	"                    \"status\": \"enable\"\n" \
	"                },\n" \
	"                {\n" \
	"                    \"type\": \"net\",\n" \
	"                    \"addr\": \"0x5950f200\",\n" \
	"                    \"len\": \"0x200\",\n" \
	"                    \"irq\": 14,\n" \
	"                    \"tap\": \"tap0\",\n" \
	"                    \"mac\": [\"0x00\", \"0x16\", \"0x3e\", \"0x10\", \"0x10\", \"0x10\"],\n" \
	"                    \"status\": \"enable\"\n" \
	"                },\n" \
	"                {\n" \
	"                    \"type\": \"blk\",\n" \
	"                    \"addr\": \"0x5950f400\",\n" \
	"                    \"len\": \"0x200\",\n" \
	"                    \"irq\": 11,\n" \
	"                    \"img\": \"rootfs2.img\",\n" \
	"                    \"status\": \"enable\"\n" \
	"                }\n" \
	"            ]\n" \
	"        }\n" \
	"    ]\n" \
	"}"

#endif /* HVIO_HVISOR_EXAMPLES_H */
