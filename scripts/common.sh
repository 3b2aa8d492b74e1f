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

# Which kernel the tests build against and boot: HVIO_KERNEL (make's
# KERNEL=).  Empty: Debian 12's default kernel (6.1), found as below.
# Otherwise SERIES or SERIES-rt (e.g. 6.12, 6.12-rt): the newest Debian
# package of that series and flavour that scripts/deps unpacked into
# $HVIO_CACHE/<arch>/<krel>/ (image and modules) and /usr/src (headers).
hvio_kseries() { echo "${HVIO_KERNEL%-rt}"; }

# Debian's flavour of the selected kernel for an arch: amd64, rt-amd64, arm64...
hvio_kflavour() {
	case "${HVIO_KERNEL:-}" in
	*-rt) echo "rt-$(hvio_debarch "$1")" ;;
	*) hvio_debarch "$1" ;;
	esac
}

# True when HVIO_KERNEL names Debian's default kernel (empty, or its series).
hvio_kdefault() {
	local abi
	[ -z "${HVIO_KERNEL:-}" ] && return 0
	[ "$HVIO_KERNEL" = "$(hvio_kseries)" ] || return 1
	abi=$(hvio_kabi) || return 1
	[ "${abi#"$HVIO_KERNEL".}" != "$abi" ]
}

# The newest release of the selected non-default kernel unpacked for an arch
# (e.g. 6.12.118+deb12-rt-amd64), with its headers in /usr/src.
hvio_krel_other() {
	local flav series re d rel best=
	flav=$(hvio_kflavour "$1")
	series=$(hvio_kseries)
	# 6.12.N+deb12-amd64, not ...-rt-amd64 or ...-cloud-amd64.
	re="^${series//./[.]}[.][0-9]+[^-]*-$flav\$"
	for d in "$HVIO_CACHE/$1/$series".*-"$flav"; do
		rel=${d##*/}
		[[ $rel =~ $re ]] || continue
		[ -f "$d/.complete" ] && [ -f "/usr/src/linux-headers-$rel/Makefile" ] || continue
		best=$(printf '%s\n%s\n' "$best" "$rel" | sed '/^$/d' | sort -V | tail -n1)
	done
	[ -n "$best" ] || return 1
	echo "$best"
}

# The kernel ABI (e.g. 6.1.0-56) of Debian's default kernel: the newest
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

# Kernel release string for an arch: 6.1.0-56-amd64 / 6.1.0-56-arm64
# (6.12.118+deb12-rt-amd64 with HVIO_KERNEL=6.12-rt).
hvio_krel() {
	local abi
	if ! hvio_kdefault; then
		hvio_krel_other "$1"
		return
	fi
	abi=$(hvio_kabi) || return 1
	echo "$abi-$(hvio_debarch "$1")"
}

# Headers tree to build the module against.
hvio_kdir() { echo "/usr/src/linux-headers-$(hvio_krel "$1")"; }

# Root of the unpacked arm64 packages (kernel image + modules + busybox),
# whichever kernel is selected.
hvio_arm64_root() { echo "$HVIO_CACHE/arm64/$(hvio_krel arm64)"; }

# arm64 e2fsprogs (mke2fs, e2fsck) for the e2e zone, whichever kernel.
hvio_arm64_e2fsprogs() { echo "$HVIO_CACHE/arm64/e2fsprogs"; }

# Bootable kernel image.  x86_64: the uncompressed vmlinux that scripts/deps
# extracts (QEMU boots it through its PVH entry, skipping a slow xz
# decompression under TCG), else the bzImage itself.
hvio_kernel_image() {
	case "$1" in
	x86_64)
		local v krel
		krel=$(hvio_krel x86_64)
		v="$HVIO_CACHE/x86_64/$krel/vmlinux"
		if [ -f "$v" ]; then
			echo "$v"
		elif hvio_kdefault; then
			echo "/boot/vmlinuz-$krel"
		else
			echo "$HVIO_CACHE/x86_64/$krel/vmlinuz"
		fi
		;;
	arm64) echo "$(hvio_arm64_root)/Image" ;;
	esac
}

# Directory holding lib/modules/<krel> of the booted kernel.
hvio_modroot() {
	case "$1" in
	x86_64) hvio_kdefault || echo "$HVIO_CACHE/x86_64/$(hvio_krel x86_64)" ;;
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

# A kernel module's name without its compression suffix (.ko.xz -> .ko).
hvio_ko_plain_name() {
	local ko=${1%.xz}
	ko=${ko%.zst}
	echo "${ko%.gz}"
}

# Copy kernel module SRC to DST uncompressed: Debian's 6.12 modules are
# .ko.xz, and busybox insmod hands a file to the kernel as it is first
# (which logs "Invalid ELF header magic") before it decompresses it.
hvio_ko_copy_plain() {
	case "$1" in
	*.xz) xz -dc "$1" >"$2" ;;
	*.zst) zstd -qdc "$1" >"$2" ;;
	*.gz) gzip -dc "$1" >"$2" ;;
	*) cp "$1" "$2" ;;
	esac
}

# Debian's perf and its libraries for the VM (scripts/perf-stage, vm-run --perf).
hvio_perf_root() { echo "$HVIO_CACHE/$1/perf"; }

# Files extracted from the linux-source tarball (kselftest, checkpatch).
hvio_srcdir() { echo "$HVIO_CACHE/linux-src"; }
hvio_kselftest_dir() { echo "$(hvio_srcdir)/tools/testing/selftests"; }
hvio_checkpatch() { echo "$(hvio_srcdir)/scripts/checkpatch.pl"; }
