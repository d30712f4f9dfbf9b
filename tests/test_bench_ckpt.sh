#!/bin/bash
# dsm-bench ckpt counts only bytes it wrote: it fills most of each rank's segment, its
# "MiB of rank files" equals the rank files this script finds on disk, and those hold
# at least the filled bytes. (It once counted whole segments of which a checkpoint
# wrote 64 KiB each, and reported throughputs beyond any disk.)
set -u
dsmrun=${top_builddir:-.}/mpi-launch/dsmrun
np=${NPROCS:-4}
to=${TEST_TIMEOUT:-300}
ck=$(mktemp -d /tmp/dsm-bench-ckpt.XXXXXX)
trap 'rm -rf "$ck"' EXIT
out=$(DSM_CKPT_DIR=$ck DSM_CKPT_JOB=bench DSM_HEAP_SIZE=16M \
    "$dsmrun" -n "$np" --timeout "$to" "${top_builddir:-.}/apps/dsm-bench" ckpt --quick 2>&1)
rc=$?
echo "$out"
[[ $rc == 0 ]] || { echo "FAIL: dsm-bench ckpt exited $rc"; exit 1; }
# "# ckpt: 4 ranks x 16.0 MiB segment, 55.8 MiB filled = 56.0 MiB of rank files ..."
line=$(grep '^# ckpt:' <<<"$out")
read -r seg filled files < <(sed -E 's/.* x ([0-9.]+) MiB segment, ([0-9.]+) MiB filled = ([0-9.]+) MiB of rank files.*/\1 \2 \3/' <<<"$line")
[[ -n ${files:-} && $files != *ckpt* ]] || { echo "FAIL: no 'filled = ... of rank files' in: $line"; exit 1; }
epoch=$(ls "$ck/bench" | grep -E '^[0-9]+$' | sort | tail -1)
ondisk=$(cat "$ck/bench/$epoch"/rank-*.ckpt | wc -c)
fail=0
awk -v s="$seg" -v f="$filled" -v r="$files" -v d="$ondisk" -v n="$np" 'BEGIN {
    mib = 1048576
    if (f < 0.75 * n * s) { print "FAIL: filled " f " MiB, under 3/4 of " n " x " s " MiB"; exit 1 }
    if (r < f) { print "FAIL: counted " r " MiB of files but filled " f " MiB"; exit 1 }
    if (d / mib < r - 0.1 || d / mib > r + 0.1) { print "FAIL: counted " r " MiB, files hold " d / mib " MiB"; exit 1 }
    print "ok: filled " f " MiB, counted " r " MiB, on disk " d / mib " MiB" }' || fail=1
exit $fail
