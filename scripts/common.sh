# SPDX-License-Identifier: GPL-2.0
#
# scripts/common.sh: helpers shared by scripts/deps, scripts/env and
# scripts/vm-run (sourced, not executed).  It knows where every external
# piece lives: the kernel image, modules tree and headers of each arch, the
# static busybox, and the files extracted from the linux-source tarball.
# Nothing here installs anything; scripts/deps does.

HVIO_CACHE=${HVIO_CACHE:-/var/cache/hvio}

die() { echo "${0##*/}: $*" >&2; exit 1; }

# Normalise an arch name: x86_64 | arm64.
hvio_arch() {
	case "$1" in
	x86_64|amd64|x86) echo x86_64 ;;
	arm64|aarch64) echo arm64 ;;
	*) die "unknown arch '$1' (want x86_64 or arm64)" ;;
	esac
}

# Debian's name for the arch: amd64 | arm64.
hvio_debarch() {
	case "$1" in x86_64) echo amd64 ;; arm64) echo arm64 ;; esac
}

# The kernel ABI (e.g. 6.1.0-56) we build and boot against: the newest
# amd64 kernel whose image and headers are both installed.  arm64 uses the
# same ABI so both arches test the same kernel.  Override: HVIO_KABI.
hvio_kabi() {
	if [ -n "${HVIO_KABI:-}" ]; then echo "$HVIO_KABI"; return; fi
	local d rel abi=
	for d in /usr/src/linux-headers-*-amd64; do
		[ -d "$d" ] || continue
		rel=${d#/usr/src/linux-headers-}
		[ -e "/boot/vmlinuz-$rel" ] || continue
		abi=$(printf '%s\n%s\n' "$abi" "${rel%-amd64}" | sed '/^$/d' | sort -V | tail -n1)
	done
	[ -n "$abi" ] || return 1
	echo "$abi"
}

# Kernel release string for an arch: 6.1.0-56-amd64 / 6.1.0-56-arm64.
hvio_krel() {
	local abi
	abi=$(hvio_kabi) || return 1
	echo "$abi-$(hvio_debarch "$1")"
}

# Headers tree to build the module against.
hvio_kdir() { echo "/usr/src/linux-headers-$(hvio_krel "$1")"; }

# Root of the unpacked arm64 packages (kernel image + modules + busybox).
hvio_arm64_root() { echo "$HVIO_CACHE/arm64/$(hvio_krel arm64)"; }

# Bootable kernel image.  x86_64: the uncompressed vmlinux that scripts/deps
# extracts (QEMU boots it through its PVH entry, skipping a slow xz
# decompression under TCG), else the bzImage itself.
hvio_kernel_image() {
	case "$1" in
	x86_64)
		local v
		v="$HVIO_CACHE/x86_64/$(hvio_krel x86_64)/vmlinux"
		if [ -f "$v" ]; then echo "$v"; else echo "/boot/vmlinuz-$(hvio_krel x86_64)"; fi
		;;
	arm64) echo "$(hvio_arm64_root)/Image" ;;
	esac
}

# Directory holding lib/modules/<krel> of the booted kernel.
hvio_modroot() {
	case "$1" in
	x86_64) echo "" ;;
	arm64) hvio_arm64_root ;;
	esac
}

# Static busybox for the VM.
hvio_busybox() {
	case "$1" in
	x86_64) echo /bin/busybox ;;
	arm64) echo "$(hvio_arm64_root)/bin/busybox" ;;
	esac
}

# Debian's perf and its libraries for the VM (scripts/perf-stage, vm-run --perf).
hvio_perf_root() { echo "$HVIO_CACHE/$1/perf"; }

# Files extracted from the linux-source tarball (kselftest, checkpatch).
hvio_srcdir() { echo "$HVIO_CACHE/linux-src"; }
hvio_kselftest_dir() { echo "$(hvio_srcdir)/tools/testing/selftests"; }
hvio_checkpatch() { echo "$(hvio_srcdir)/scripts/checkpatch.pl"; }
