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

[ $fail = 0 ] && echo "all passed"
exit $fail
