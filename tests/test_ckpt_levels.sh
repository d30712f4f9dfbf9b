#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Checkpoint levels on one node (issue 13 part 4; no root needed): heat on 4 ranks with
# DSM_CKPT_LOCAL_DIR (node-local level, partner copies) and DSM_CKPT_FLUSH_EVERY=4 (epoch
# 4 also in the shared DSM_CKPT_DIR) is killed before committing epoch 7
# (DSM_CKPT_CRASH=commit), so epochs 5 and 6 are node-local only. Each case below
# damages a copy of those files and restarts with DSM_RESTART=required; the final grid
# must equal a fault-free run's, and the log must say which level served:
#   partner:  rank 1's own node-local image is gone: its partner (rank 2) sends its copy
#   crc:      rank 1's image and its partner's copy have a flipped byte: epoch 6 is lost
#             (both copies fail their CRC32C), epoch 5 serves
#   nolocal:  all node-local storage is gone: epochs 6 and 5 are lost, the shared level
#             (epoch 4) serves
#   link:     the node-local epoch 6 directory is a symbolic link: never followed
#   unset:    the restart runs without DSM_CKPT_LOCAL_DIR: node-local epochs are skipped
#   async:    as partner, with the files written by DSM_CKPT_ASYNC=1's background writer
# It also checks the COMMIT records' levels and retention (DSM_CKPT_KEEP=2 per level).
set -u
top=${top_builddir:-.}
dsmrun=$top/mpi-launch/dsmrun
heat=$top/apps/heat
np=4
to=${TEST_TIMEOUT:-300}
args=(--nx 48 --ny 48 --steps 40 --ckpt-every 4)
work=$(mktemp -d "${TMPDIR:-/tmp}/dsm-levels.XXXXXX")
trap 'rm -rf "$work"' EXIT
export DSM_LOG_LEVEL=warn DSM_CKPT_FLUSH_EVERY=4 DSM_CKPT_KEEP=2 DSM_HEAP_SIZE=16M

ref=$(DSM_CKPT_DIR=$work/ref-ckpt "$dsmrun" -n $np --timeout "$to" "$heat" "${args[@]}" | sed -n 's/.*checksum \([0-9a-f]*\)$/\1/p')
[[ -n $ref ]] || { echo "FAIL: the fault-free reference run failed"; exit 1; }
echo "reference checksum: $ref"

fail=0
bad() { echo "FAIL: $*"; fail=1; }

# The pristine state: epochs 1..6 committed, the run dead before COMMIT of 7.
p=$work/cur # the cases restore it here, at the same path: the node-local job directory
# is named after DSM_CKPT_DIR's (<job>.<tag>), so a copy elsewhere would not find it
DSM_CKPT_LOCAL_DIR=$p/local DSM_CKPT_CRASH=commit DSM_CKPT_CRASH_EPOCH=7 \
    "$dsmrun" -n $np --timeout "$to" --ckpt-dir "$p/ckpt" "$heat" "${args[@]}" >"$work/first" 2>&1
grep -q "DSM_CKPT_CRASH=commit" "$work/first" || { bad "the crash hook did not fire"; cat "$work/first"; exit 1; }
for e in 4 5 6; do
    [[ -f $p/ckpt/heat/0000000$e/COMMIT ]] || bad "epoch $e has no COMMIT"
done
grep -q "^levels local,partner,shared$" "$p/ckpt/heat/00000004/COMMIT" || bad "epoch 4's COMMIT does not name the shared level"
grep -q "^levels local,partner$" "$p/ckpt/heat/00000006/COMMIT" || bad "epoch 6's COMMIT: $(grep levels "$p/ckpt/heat/00000006/COMMIT")"
[[ -f $p/ckpt/heat/00000004/rank-3.ckpt && ! -e $p/ckpt/heat/00000006/rank-3.ckpt ]] ||
    bad "the shared level should hold epoch 4's images and not epoch 6's"
pl=$(echo "$p"/local/heat.*) # the node-local job directory: heat.<tag>
[[ -f $pl/00000006/rank-1.ckpt && -f $pl/00000006/rank-2.replica-of-1 ]] ||
    bad "node-local epoch 6 lacks rank 1's image or its partner's copy"
[[ ! -e $pl/00000004 && ! -e $p/ckpt/heat/00000003 ]] ||
    bad "retention: node-local keeps epochs 5 and 6, the shared dir 4 (images) and 5, 6 (records)"
ls "$pl" "$p/ckpt/heat" | tr '\n' ' '
echo
cp -a "$p" "$work/save"

flip() { # flip one byte of a segment image's data (offset 200: past the 128-byte header)
    local b
    b=$(od -An -tu1 -j200 -N1 "$1" | tr -d ' ')
    printf "\\$(printf %03o $(((b + 1) % 256)))" | dd of="$1" bs=1 seek=200 conv=notrunc status=none
}

# run CASE [env...]: restart from a fresh copy of the pristine state (prepared by the
# case's setup below), DSM_RESTART=required; sets out (its output file)
run() {
    local c=$1
    shift
    out=$work/$c.out
    env DSM_RESTART=required "$@" "$dsmrun" -n $np --timeout "$to" --ckpt-dir "$cdir/ckpt" \
        "$heat" "${args[@]}" --expect "$ref" >"$out" 2>&1
    local rc=$?
    if [[ $rc != 0 ]] || ! grep -q "expected $ref: equal" "$out"; then
        bad "case $c: status $rc, not the reference grid"
        grep -v '^\[dsm [0-9]*\]   ' "$out" | tail -15 | sed 's/^/    | /'
        return 1
    fi
}
expect_log() { # expect_log CASE PATTERN WHAT
    grep -q -E -- "$2" "$work/$1.out" || { bad "case $1: $3"; grep '^\[dsm' "$work/$1.out" | head -8 | sed 's/^/    | /'; }
}

# The same first run with DSM_CKPT_ASYNC=1: its writer thread writes every level.
DSM_CKPT_ASYNC=1 DSM_CKPT_LOCAL_DIR=$work/async/local DSM_CKPT_CRASH=commit DSM_CKPT_CRASH_EPOCH=7 \
    "$dsmrun" -n $np --timeout "$to" --ckpt-dir "$work/async/ckpt" "$heat" "${args[@]}" >"$work/first-async" 2>&1
[[ -f $work/async/ckpt/heat/00000004/rank-0.ckpt && -f $(echo "$work"/async/local/heat.*)/00000006/rank-2.replica-of-1 ]] ||
    bad "async: the writer did not write the shared image of epoch 4 or the partner copy of epoch 6"

for c in partner crc nolocal link unset async; do
    cdir=$work/async
    if [[ $c != async ]]; then # the pristine state again, in its place
        cdir=$work/cur
        rm -rf "$cdir" && cp -a "$work/save" "$cdir"
    fi
    l=$(echo "$cdir"/local/heat.*)
    case $c in
        partner)
            rm "$l/00000006/rank-1.ckpt"
            run $c DSM_CKPT_LOCAL_DIR="$cdir/local" &&
                expect_log $c "restore: epoch 6 from the partner copy of rank 2" "rank 1 did not use its partner's copy" &&
                expect_log $c "heat: resumed at step 24 " "did not resume from epoch 6 (step 24)" ;;
        crc)
            flip "$l/00000006/rank-1.ckpt"
            flip "$l/00000006/rank-2.replica-of-1"
            run $c DSM_CKPT_LOCAL_DIR="$cdir/local" &&
                expect_log $c "epoch 6 is lost: .*rank\(s\) 1$" "epoch 6 not reported lost for rank 1" &&
                expect_log $c "data checksum mismatch" "the flipped bytes were not caught by the CRC" &&
                expect_log $c "heat: resumed at step 20 " "did not resume from epoch 5 (step 20)" ;;
        nolocal)
            rm -rf "$cdir/local"
            run $c DSM_CKPT_LOCAL_DIR="$cdir/local" &&
                expect_log $c "epoch 6 is lost: .*rank\(s\) 0,1,2,3" "epoch 6 not reported lost" &&
                expect_log $c "epoch 5 is lost: .*rank\(s\) 0,1,2,3" "epoch 5 not reported lost" &&
                expect_log $c "restore: epoch 4 from the shared level" "the shared level did not serve" &&
                expect_log $c "heat: resumed at step 16 " "did not resume from epoch 4 (step 16)" ;;
        link)
            mv "$l/00000006" "$cdir/elsewhere"
            ln -s "$cdir/elsewhere" "$l/00000006"
            run $c DSM_CKPT_LOCAL_DIR="$cdir/local" &&
                expect_log $c "symbolic link" "the planted link was not refused" &&
                expect_log $c "epoch 6 is lost" "epoch 6 (behind a link) not reported lost"
            [[ -f $cdir/elsewhere/rank-1.ckpt ]] || bad "case link: the link's target was touched" ;;
        async)
            rm "$l/00000006/rank-1.ckpt"
            run $c DSM_CKPT_LOCAL_DIR="$cdir/local" &&
                expect_log $c "restore: epoch 6 from the partner copy of rank 2" "rank 1 did not use its partner's copy" &&
                expect_log $c "heat: resumed at step 24 " "did not resume from epoch 6 (step 24)" ;;
        unset)
            run $c &&
                expect_log $c "epoch 6 lives only in node-local storage" "epoch 6 not skipped" &&
                expect_log $c "heat: resumed at step 16 " "did not resume from epoch 4 (step 16)" ;;
    esac
    [[ $fail == 0 ]] && echo "ok   case $c"
done
# Bad settings: each fails with its DSM_ERR_* and a message naming the cause.
touch "$work/afile"
bad_setting() { # bad_setting WHAT PATTERN env...
    local what=$1 pattern=$2 o
    shift 2
    o=$(env "$@" "$dsmrun" -n 2 --timeout "$to" "$heat" "${args[@]}" 2>&1)
    if [[ $? == 0 ]] || ! grep -q -E -- "$pattern" <<<"$o"; then
        bad "$what: wanted /$pattern/"
        tail -5 <<<"$o" | sed 's/^/    | /'
    else
        echo "ok   $what"
    fi
}
bad_setting "relative DSM_CKPT_LOCAL_DIR" "must be an absolute path.*DSM_ERR_ENV" \
    DSM_CKPT_DIR="$work/b1" DSM_CKPT_LOCAL_DIR=relative/dir
bad_setting "DSM_CKPT_LOCAL_DIR = DSM_CKPT_DIR" "overwrite each other.*DSM_ERR_ENV" \
    DSM_CKPT_DIR="$work/b2" DSM_CKPT_LOCAL_DIR="$work/b2"
bad_setting "node-local dir under a file" "epoch 1: node-local level \\(DSM_CKPT_LOCAL_DIR\\): mkdir $work/afile: Not a directory.*DSM_ERR_IO" \
    DSM_CKPT_DIR="$work/b3" DSM_CKPT_LOCAL_DIR="$work/afile/x"
[[ ! -e $work/b3/heat/00000001 ]] || bad "the failed epoch 1 was left in the shared directory"
exit $fail
