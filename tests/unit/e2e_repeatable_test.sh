#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# scripts/e2e-repeatable on made-up console logs: scripts/check repeats an
# e2e run only when the VM ended without a result and nothing in its
# console says a kernel broke.  Run by ctest (make unit).
set -u
script=${1:-$(dirname "$0")/../../scripts/e2e-repeatable}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0

# expect WANT(0 repeat, 1 not) STATUS NAME LINES...
expect() {
	local want=$1 status=$2 name=$3 got
	shift 3
	{
		echo "[    0.000000] Kernel command line: console=ttyS0 memmap=256M\$0x20000000 panic=-1 quiet loglevel=4"
		echo "HVIO-VM: run e2e-root"
		printf '%s\r\n' "$@"
	} >"$dir/$name.log"
	"$script" "$status" "$dir/$name.log" >"$dir/out" 2>&1
	got=$?
	if [ "$got" = "$want" ]; then
		echo "ok - $name: $(cat "$dir/out")"
	else
		echo "not ok - $name: exit $got, want $want: $(cat "$dir/out")"
		fail=1
	fi
}

expect 0 crash silent-crash "# zone: booting" "[  100.1] kvm: exiting hardware virtualization"
expect 0 timeout silent-timeout "# zone: booting"
expect 1 ok finished "HVIO-VM-RESULT pass=48 fail=0 skip=0"
expect 1 '' no-result
expect 1 crash x86-panic "[  12.3] Kernel panic - not syncing: Fatal exception"
expect 1 crash x86-oops "[  12.3] BUG: kernel NULL pointer dereference, address: 0000000000000008" \
	"[  12.3] Oops: 0000 [#1] PREEMPT SMP NOPTI"
expect 1 timeout x86-warning "[  12.3] WARNING: CPU: 1 PID: 77 at mm/slub.c:100 f+0x1/0x2"
expect 1 crash arm64-oops "[  12.3] Unable to handle kernel paging request at virtual address dead"
expect 1 crash arm64-trace "[  12.3] Call trace:" "[  12.3]  hvio_queue_run+0x40/0x300 [hvio]"
expect 1 timeout x86-trace "[  12.3] Call Trace:" "[  12.3]  <TASK>"
expect 1 timeout soft-lockup "[  40.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [hvio:123]"
expect 1 crash gpf "[  12.3] general protection fault, probably for non-canonical address 0xdead: 0000 [#1]"
expect 1 crash rcu-stall "[  60.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:"
# The root CPU stuck in the zone's guest mode (nested KVM under TCG): the
# stall's NMI is never answered and only RCU's kthread shows a trace.
stall=("[  44.7] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:"
	"[  44.7] rcu: 	0-...!: (150 ticks this GP) idle=7be0/0/0x0 softirq=424/426 fqs=366 (false positive?)"
	"[  44.7] Sending NMI from CPU 1 to CPUs 0:"
	"[  44.7] rcu: rcu_preempt kthread starved for 3423 jiffies! g-423 f0x0 RCU_GP_WAIT_FQS(5) ->state=0x200"
	"[  44.7] task:rcu_preempt     state:R stack:0     pid:15    ppid:2      flags:0x00004000"
	"[  44.7] Call Trace:"
	"[  44.7]  <TASK>"
	"[  44.7]  rcu_gp_kthread+0xd8/0x1b0"
	"[  44.7] rcu: Stack dump where RCU GP kthread last ran:"
	"[  44.7] Sending NMI from CPU 1 to CPUs 0:")
expect 0 timeout stall-in-guest-mode "${stall[@]}"
expect 1 ok stall-in-guest-mode-with-result "${stall[@]}" "HVIO-VM-RESULT pass=49 fail=1 skip=0"
# The stalled CPU answers with its backtrace: code of ours, not repeated.
expect 1 timeout stall-answered "${stall[@]}" "[  44.8] NMI backtrace for cpu 0" \
	"[  44.8] Call Trace:" "[  44.8]  hvio_queue_poll+0x40/0x90 [hvio]"
expect 1 timeout stall-and-oops "${stall[@]}" "[  50.0] BUG: kernel NULL pointer dereference, address: 0000000000000008"
expect 1 timeout stall-other-trace "[  44.6] Call Trace:" "[  44.6]  hvio_dev_release+0x1/0x2 [hvio]" "${stall[@]}"
# A zone whose CR3 left its RAM: hvemu kills it after its timeout, the
# KVM trace shows one page-table-walk fault over and over (make check,
# 2026-12-05): repeated even though the run has a result.
npf() {
	local i
	for i in $(seq 1 12); do
		echo "# zone1-kvm|   hvemu-162 [001] ..... 246.3$i: kvm_page_fault: vcpu 0 rip 0xffffffffc035b20c address 0x00000000$1 error_code 0x20000000e"
		echo "# zone1-kvm|   hvemu-162 [001] ..... 246.3$i: kvm_inj_exception: #PF (0x10)"
	done
}
mapfile -t lost < <(npf 5e7a0fe0)
killed="# zone1| hvemu: zone 1 killed after 240s, vCPU at rip 0xffffffffc035b20c"
expect 0 ok zone-walk-lost "$killed" "${lost[@]}" "HVIO-VM-RESULT pass=50 fail=7 skip=0"
expect 1 ok zone-walk-lost-not-killed "${lost[@]}" "HVIO-VM-RESULT pass=50 fail=7 skip=0"
expect 1 ok zone-killed-other-fault "$killed" "${lost[@]:0:8}" "HVIO-VM-RESULT pass=50 fail=7 skip=0"
expect 1 ok zone-walk-lost-root-oops "$killed" "${lost[@]}" \
	"[  50.0] BUG: kernel NULL pointer dereference, address: 0000000000000008"
# The zone's own messages (prefixed) are the zone's business here.
expect 0 ok zone-walk-lost-zone-message "$killed" "# zone1| [  3.0] WARNING: CPU: 0 PID: 1 at x" "${lost[@]}"

[ $fail = 0 ] && echo "all passed"
exit $fail
