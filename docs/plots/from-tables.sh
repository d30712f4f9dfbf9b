#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The plots beside docs/PERFORMANCE.md's tables: each *.gp is the script dsm-bench
# --plot wrote for that suite (its data file and PNG renamed), and each *.dat holds the
# figures of the table it stands beside, taken from PERFORMANCE.md by this script, so a
# plot always shows its table. After changing a table: cd docs/plots && ./from-tables.sh
set -euo pipefail
cd "$(dirname "$0")"
doc=../PERFORMANCE.md
# block N FIRST: the Nth ``` block of the document that starts with FIRST (found by its
# first line, so tables added elsewhere in the document do not move it)
block() {
    local b
    b=$(awk -v n="$1" -v first="$2" '
        /^```/ { inside = !inside; if (inside) { head = 1; hit = 0 }; next }
        inside && head { head = 0; if (index($0, first) == 1 && ++seen == n) hit = 1 }
        inside && hit' "$doc")
    [[ -n $b ]] || { echo "from-tables.sh: no block $1 starting with '$2'" >&2; exit 1; }
    printf '%s\n' "$b"
}
# series NAME: stdin's "x y" lines as one block named for gnuplot's index "NAME"
series() { echo "# $1"; cat; printf '\n\n'; }

rma() { # table of dsm-bench rma: op bytes raw_us shm_us dsm_us ...
    local b op c
    b=$(block "$1" "op             bytes")
    for op in put get; do
        for c in raw:3 shm:4 dsm:5; do
            awk -v op="$op" -v c="${c#*:}" '$1 == op && $c != "-" {print $2, $c}' <<<"$b" |
                series "${op}_${c%%:*}"
        done
    done
}
rma 1 >rma-openmpi.dat
rma 2 >rma-mpich.dat

b=$(block 1 "# heap: local")
{
    awk '$1 == "pair" {print $2, $3}' <<<"$b" | series pair_malloc
    awk '$1 == "pair" {print $2, $4}' <<<"$b" | series pair_dsm
    awk '$1 == "batch" {print $4, $5}' <<<"$b" | series batch_malloc
    awk '$1 == "batch" {print $4, $6}' <<<"$b" | series batch_dsm
    awk '$1 == "collective" {print $3, $4}' <<<"$b" | series coll_mpi
    awk '$1 == "collective" {print $3, $5}' <<<"$b" | series coll_dsm
} >heap-openmpi.dat

b=$(block 1 "# sync: uncontended")
for k in dsm_mutex win_lock cas_spin; do # 1 rank: 1/us = M acquisitions/s
    awk -v k="$k" '$1 == k && NF == 3 {print 1, 1 / $2} $1 == k && NF == 4 {print $2, $3}' <<<"$b" |
        series "$k"
done >sync-openmpi.dat

b=$(block 1 "lane     setting")
{
    awk '$1 == "openmpi" && $2 == "4" && $3 == "ranks" {print 1, $7; print 2, $10}' <<<"$b" | series dsm_bw
    awk '$1 == "openmpi" && $2 == "4" && $3 == "ranks" {print 1, $8; print 2, $11}' <<<"$b" | series dd_bw
} >ckpt-openmpi.dat

for gp in *.gp; do
    gnuplot "$gp"
done
echo "from-tables.sh: $(ls -- *.png | wc -l) plots"
