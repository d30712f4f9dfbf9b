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

# Per level (issue 13): with node-local levels and a flush every epoch, the node-local,
# partner and shared rows each count the bytes of that level's files (the benchmark
# aborts when the library's count and the files differ); here they must also match
# the files this script finds.
rm -rf "$ck"/*
out=$(DSM_CKPT_DIR=$ck/shared DSM_CKPT_LOCAL_DIR=$ck/local DSM_CKPT_FLUSH_EVERY=1 DSM_CKPT_JOB=bench \
    DSM_HEAP_SIZE=16M "$dsmrun" -n "$np" --timeout "$to" "${top_builddir:-.}/apps/dsm-bench" ckpt --quick 2>&1)
rc=$?
echo "$out"
[[ $rc == 0 ]] || { echo "FAIL: dsm-bench ckpt with levels exited $rc"; exit 1; }
epoch=$(ls "$ck/shared/bench" | grep -E '^[0-9]+$' | sort | tail -1)
local_job=$(echo "$ck"/local/bench.*) # the node-local job directory: <job>.<tag>
for l in node-local partner shared; do
    case $l in
        node-local) files=("$local_job/$epoch"/rank-*.ckpt) ;;
        partner) files=("$local_job/$epoch"/rank-*.replica-of-*) ;;
        shared) files=("$ck/shared/bench/$epoch"/rank-*.ckpt) ;;
    esac
    want=$(cat "${files[@]}" | wc -c)
    got=$(grep -E "^level $l " <<<"$out" | awk '{print $3}')
    if [[ -z $got ]] || ! awk -v g="$got" -v w="$want" 'BEGIN { exit !(g > w / 1048576 - 0.06 && g < w / 1048576 + 0.06) }'; then
        echo "FAIL: level $l: counted '${got}' MiB, its files hold $want bytes"
        fail=1
    else
        echo "ok: level $l: $got MiB, files $want bytes"
    fi
done
exit $fail
