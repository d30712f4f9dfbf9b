#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# dsm-bench --plot DIR (issue 19): a PNG per suite, drawn by gnuplot from what the
# suite printed. Quick runs of all four suites; each PNG is a PNG of the size the
# script sets, and the plotted data are the printed table's figures (rma: latency of
# mpidsm, raw MPI and the shared-memory floor per size; sync: Macq/s per lock and
# ranks; ckpt: write and restore MB/s). A gnuplot that fails, and a DIR that cannot be
# written, fail the run with a message. Skipped without gnuplot (Debian: gnuplot-nox).
top=${top_builddir:-.}
np=2 # enough for every plot (sync: 1 and 2 ranks); 4 on 2 cores triples the time
to=${TEST_TIMEOUT:-300}
command -v gnuplot >/dev/null || { echo "SKIP: gnuplot not installed (Debian: gnuplot-nox)"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/dsm-plot.XXXXXX")
trap 'rm -rf "$work"' EXIT
bad=0
fail() { echo "FAIL: $*"; bad=1; }
bench() { "$top/mpi-launch/dsmrun" -n "$np" --timeout "$to" "$top/apps/dsm-bench" "$@"; }

bench rma heap sync --quick --rounds 1 --plot "$work/p" >"$work/out" 2>&1 ||
    { cat "$work/out"; fail "dsm-bench rma heap sync --plot: status $?"; }
mkdir -p "$work/ck"
DSM_CKPT_DIR=$work/ck DSM_HEAP_SIZE=8M bench ckpt --quick --rounds 1 --plot "$work/p" \
    >"$work/ckpt.out" 2>&1 || { cat "$work/ckpt.out"; fail "dsm-bench ckpt --plot: status $?"; }
for s in rma heap sync ckpt; do
    png=$work/p/$s.png
    # PNG signature, then IHDR's width and height (bytes 16..23, big-endian)
    sig=$(od -An -tx1 -N8 "$png" 2>/dev/null | tr -d ' \n')
    wh=$(od -An -tu1 -j16 -N8 "$png" 2>/dev/null |
        awk '{print $1*16777216+$2*65536+$3*256+$4 "x" $5*16777216+$6*65536+$7*256+$8}')
    [[ $sig == 89504e470d0a1a0a && $wh == 1280x540 ]] || fail "$s.png: signature $sig, size $wh"
    grep -q "^# plot: $png$" "$work/out" "$work/ckpt.out" || fail "dsm-bench did not report $png"
done

# pts FILE SERIES: the "x y" lines of one block of a .dat
pts() { awk -v s="# $2" '$0 == s {on = 1; next} /^$/ {on = 0} on' "$work/p/$1.dat"; }
# near X Y TOL: some "x y" line on stdin has x == X and y within TOL of Y (the table
# prints rounded figures)
near() { awk -v x="$1" -v y="$2" -v t="$3" '$1 == x && $2 - y <= t + 1e-9 && y - $2 <= t + 1e-9 {f = 1}
    END {exit !f}'; }
# rma: every put/get row of the table is a point of the _raw, _dsm (and _shm) series
n=0
while read -r op bytes raw shm dsm _; do
    for k in raw:$raw dsm:$dsm shm:$shm; do
        [[ ${k#*:} == - ]] && continue
        pts rma "${op}_${k%%:*}" | near "$bytes" "${k#*:}" 0.0005 ||
            fail "rma.dat lacks $op ${k%%:*} $bytes ${k#*:}"
        n=$((n + 1))
    done
done < <(grep -E '^(put|get) +[0-9]' "$work/out")
[[ $n -ge 20 ]] || fail "only $n rma figures compared"
pts rma put_shm | grep -q . || fail "no shared-memory floor on one node"
# sync: each contended row is a point of its lock's series; 1 rank is in every series
while read -r kind ranks macq _; do
    pts sync "$kind" | near "$ranks" "$macq" 0.0005 || fail "sync.dat lacks $kind $ranks ranks $macq"
done < <(grep -E '^(dsm_mutex|win_lock|cas_spin) +[0-9]+ +[0-9.]+ +[0-9.]+$' "$work/out")
for kind in dsm_mutex win_lock cas_spin; do
    pts sync "$kind" | awk '$1 == 1 {f = 1} END {exit !f}' || fail "sync.dat: $kind has no 1-rank point"
done
# ckpt: the two MB/s figures of each row
read -r w1 w2 < <(sed -n 's/^checkpoint write *\([0-9.]*\) MB\/s.* \([0-9.]*\) MB\/s.*/\1 \2/p' "$work/ckpt.out")
[[ -n $w1 ]] && pts ckpt dsm_bw | near 1 "$w1" 0.05 && pts ckpt dd_bw | near 1 "$w2" 0.05 ||
    fail "ckpt.dat write figures differ from the table ($w1, $w2)"

# failures: gnuplot failing ($GNUPLOT: mpirun puts its own bin first on PATH), gnuplot
# missing, DIR not writable
mkdir -p "$work/fake" && printf '#!/bin/sh\nexit 3\n' >"$work/fake/gnuplot" && chmod +x "$work/fake/gnuplot"
GNUPLOT=$work/fake/gnuplot bench rma --quick --rounds 1 --plot "$work/q" >"$work/fake.out" 2>&1 &&
    fail "a failing gnuplot was not reported"
grep -q "fake/gnuplot .* failed" "$work/fake.out" || fail "no message for a failing gnuplot: $(tail -3 "$work/fake.out")"
GNUPLOT=no-such-gnuplot bench rma --quick --rounds 1 --plot "$work/q" >"$work/none.out" 2>&1 &&
    fail "a missing gnuplot was not reported"
grep -q "needs gnuplot (no-such-gnuplot not found" "$work/none.out" ||
    fail "no message for a missing gnuplot: $(tail -3 "$work/none.out")"
touch "$work/file"
bench rma --quick --rounds 1 --plot "$work/file" >"$work/dir.out" 2>&1 && fail "--plot on a file accepted"
grep -q "not a writable directory" "$work/dir.out" || fail "no message for a bad DIR: $(tail -3 "$work/dir.out")"
grep -q '^put ' "$work/dir.out" && fail "suites ran although --plot DIR is unusable"
# docs/PERFORMANCE.md's plots redraw from its tables (in a copy: the tree stays as it is)
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$work/docs" && cp -r "$src/docs/PERFORMANCE.md" "$src/docs/plots" "$work/docs/"
out=$(bash "$work/docs/plots/from-tables.sh" 2>&1) || fail "docs/plots/from-tables.sh: $out"
[[ $bad == 0 ]] && echo "ok   dsm-bench --plot"
exit $bad
