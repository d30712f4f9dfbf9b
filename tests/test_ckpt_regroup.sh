#!/bin/bash
# Restart on a different number of ranks (DESIGN.md decision 9, issue 15): a linked
# structure built on 4 ranks (tests/regroup build: lists whose nodes lie on every
# segment, roots, a protected region, a mutex and counter on segment 3) is checkpointed
# and restarted with DSM_RESTART=required on 2, 3 and 6 ranks (tests/regroup verify:
# every pointer walks, every byte matches, usage per segment as at the checkpoint,
# allocation, free and the mutex on every segment, then a new checkpoint). Chains check
# the images a job that hosts segments writes: 4 -> 2 -> 3 and 4 -> 6 -> 4; 4 -> 3 runs
# once more with DSM_DIRECT=0 (MPI RMA to hosted segments, not loads and stores). Also: a
# checkpoint with more segments than ranks x DSM_MAX_SEGMENTS_PER_RANK is refused with
# a message; apps/heat killed on N ranks resumes on M (4 -> 2, 4 -> 3, 2 -> 6) and ends
# bit-identical to the serial computation, and apps/kvstore likewise ends with the
# digest of an uninterrupted run, and apps/memsim's books balance against the heaps;
# replicated objects move onto the new ranks (kvstore --replicas 3, 4 -> 2 -> 6 -> 3),
# and come back from a checkpoint when every store is lost.
# Then across 2 simulated nodes (hybrid data path): 2+2 -> 1+1 and 2+2 -> 3+3 (skipped
# without namespaces or DSM_TEST_CLUSTER=0).
set -u
. "$(dirname "$0")/lib.sh"
top=$(cd "${top_builddir:-.}" && pwd)
dsmrun=$top/mpi-launch/dsmrun
prog=$top/tests/regroup
work=$(mktemp -d "${TMPDIR:-/tmp}/dsm-regroup.XXXXXX")
trap 'rm -rf "$work"' EXIT
export DSM_CKPT_JOB=regroup DSM_HEAP_SIZE=4M DSM_CKPT_KEEP=4
run() { # run NP DIR MODE [RESTART]: the helper on NP ranks; sets out and rc
    out=$(DSM_RESTART=${4:-required} timeout "$(secs 240)" "$dsmrun" -n "$1" \
        --timeout "$(secs 120)" --ckpt-dir "$2" "$prog" "$3" 2>&1)
    rc=$?
    show "$(tail -n 12 <<<"$out")"
}

echo "== build on 4 ranks"
run 4 "$work/base" build never
check "build (status $rc)" test "$rc" = 0
check "build says ok" grep -q "regroup: ok build on 4 ranks, 4 segments" <<<"$out"

for m in 2 3 6; do
    echo "== 4 -> $m"
    cp -r "$work/base" "$work/to$m"
    run "$m" "$work/to$m" verify
    check "restart on $m ranks (status $rc)" test "$rc" = 0
    segs=$((m > 4 ? m : 4))
    check "every check passed on $m ranks" \
        grep -q "regroup: ok verify on $m ranks, $segs segments" <<<"$out"
done

echo "== 4 -> 3 on the MPI path (DSM_DIRECT=0): hosted segments through RMA"
cp -r "$work/base" "$work/mpi3"
DSM_DIRECT=0 run 3 "$work/mpi3" verify
check "restart on 3 ranks (status $rc)" test "$rc" = 0
check "every check passed" grep -q "regroup: ok verify on 3 ranks, 4 segments" <<<"$out"

echo "== 4 -> 2 -> 3: the images a hosting job wrote"
run 3 "$work/to2" verify
check "restart on 3 ranks (status $rc)" test "$rc" = 0
check "every check passed" grep -q "regroup: ok verify on 3 ranks, 4 segments" <<<"$out"

echo "== 4 -> 6 -> 4: six segments on four ranks"
run 4 "$work/to6" verify
check "restart on 4 ranks (status $rc)" test "$rc" = 0
check "every check passed" grep -q "regroup: ok verify on 4 ranks, 6 segments" <<<"$out"

echo "== more segments than ranks x DSM_MAX_SEGMENTS_PER_RANK"
# Make the limit bite with a fake record: the epoch claims 40 segments (> 2 x 16).
cp -r "$work/base" "$work/big"
commit=$(ls "$work/big/regroup"/*/COMMIT | tail -n 1)
sed -i 's/^ranks 4$/ranks 40/' "$commit"
run 2 "$work/big" verify
check "required fails (status $rc)" test "$rc" != 0
check "the message names the limit" grep -q "holds 40 segments; 2 ranks host at most 32" <<<"$out"
check "the refusal names the call and cause" grep -q "dsm_init.*DSM_RESTART=required.*40 segments" <<<"$out"

# heat (apps/heat.c): killed at its third checkpoint on N ranks, resumed on M, spreads
# the grid over the new ranks and ends bit-identical to the serial computation.
heat=$top/apps/heat
heat_args=(--nx 64 --ny 64 --steps 20 --ckpt-every 5)
for nm in 4:2 4:3 2:6; do
    n=${nm%:*} m=${nm#*:}
    echo "== heat $n -> $m"
    DSM_CKPT_JOB=heat DSM_CKPT_CRASH=commit DSM_CKPT_CRASH_EPOCH=3 DSM_RESTART=never \
        timeout "$(secs 240)" "$dsmrun" -n "$n" --timeout "$(secs 120)" \
        --ckpt-dir "$work/heat$n$m" "$heat" "${heat_args[@]}" >/dev/null 2>&1
    out=$(DSM_CKPT_JOB=heat DSM_RESTART=required timeout "$(secs 240)" "$dsmrun" -n "$m" \
        --timeout "$(secs 120)" --ckpt-dir "$work/heat$n$m" "$heat" "${heat_args[@]}" --verify 2>&1)
    rc=$?
    show "$(grep '^heat:' <<<"$out")"
    check "heat resumed on $m ranks (status $rc)" test "$rc" = 0
    check "it regridded from $n to $m ranks" grep -q "heat: regridded from $n to $m ranks" <<<"$out"
    check "it resumed at step 10" grep -q "heat: resumed at step 10 of 20" <<<"$out"
    check "bit-identical to the serial run" grep -q "heat: serial checksum .*: equal" <<<"$out"
done

# kvstore (apps/kvstore.c): killed at its fourth checkpoint on N ranks, resumed on M; the
# table's N writers run on the ranks holding their segments, and the final table's
# digest equals an uninterrupted N-rank run's.
kv=$top/apps/kvstore
kv_args=(--ops 400 --keys 100 --read-ratio 0.5 --ckpt-every 50)
declare -A kv_ref
for nm in 4:2 4:3 2:6; do
    n=${nm%:*} m=${nm#*:}
    echo "== kvstore $n -> $m"
    if [[ -z ${kv_ref[$n]:-} ]]; then
        kv_ref[$n]=$(DSM_RESTART=never timeout "$(secs 240)" "$dsmrun" -n "$n" --timeout "$(secs 120)" \
            "$kv" "${kv_args[@]}" 2>&1 | sed -n 's/^kvstore: digest //p')
    fi
    DSM_CKPT_JOB=kv DSM_CKPT_CRASH=commit DSM_CKPT_CRASH_EPOCH=4 DSM_RESTART=never \
        timeout "$(secs 240)" "$dsmrun" -n "$n" --timeout "$(secs 120)" \
        --ckpt-dir "$work/kv$n$m" "$kv" "${kv_args[@]}" >/dev/null 2>&1
    out=$(DSM_CKPT_JOB=kv DSM_RESTART=required timeout "$(secs 240)" "$dsmrun" -n "$m" \
        --timeout "$(secs 120)" --ckpt-dir "$work/kv$n$m" "$kv" "${kv_args[@]}" \
        --expect "${kv_ref[$n]:-none}" 2>&1)
    rc=$?
    show "$(grep '^kvstore:' <<<"$out")"
    check "kvstore resumed on $m ranks (status $rc)" test "$rc" = 0
    check "from epoch 3 of a $n-rank table" \
        grep -q "kvstore: restarted from epoch 3 (a table of another rank count)" <<<"$out"
    check "the digest of an uninterrupted $n-rank run" \
        grep -q "kvstore: expected ${kv_ref[$n]:-none}: equal" <<<"$out"
done

# memsim (apps/memsim.c): its books are in global memory; killed at its third checkpoint
# on N ranks and resumed on M, the N ranks' workers carry on where the ranks holding
# their segments are, the books balance against every segment's heap, and the workers
# did the very allocations and frees of an uninterrupted N-rank run.
ms=$top/apps/memsim
ms_args=(--threads 2 --ops 300 --ckpt-every 100)
declare -A ms_ref
for nm in 4:2 4:3 2:6; do
    n=${nm%:*} m=${nm#*:}
    echo "== memsim $n -> $m"
    if [[ -z ${ms_ref[$n]:-} ]]; then
        ms_ref[$n]=$(DSM_CKPT_JOB=msref DSM_RESTART=never timeout "$(secs 240)" "$dsmrun" -n "$n" \
            --timeout "$(secs 120)" --ckpt-dir "$work/msref$n" "$ms" "${ms_args[@]}" 2>&1 |
            grep -o '^memsim: [0-9]* allocs, [0-9]* frees')
    fi
    DSM_CKPT_JOB=ms DSM_CKPT_CRASH=commit DSM_CKPT_CRASH_EPOCH=3 DSM_RESTART=never \
        timeout "$(secs 240)" "$dsmrun" -n "$n" --timeout "$(secs 120)" \
        --ckpt-dir "$work/ms$n$m" "$ms" "${ms_args[@]}" >/dev/null 2>&1
    out=$(DSM_CKPT_JOB=ms DSM_RESTART=required timeout "$(secs 240)" "$dsmrun" -n "$m" \
        --timeout "$(secs 120)" --ckpt-dir "$work/ms$n$m" "$ms" "${ms_args[@]}" 2>&1)
    rc=$?
    show "$(grep '^memsim:' <<<"$out")"
    check "memsim resumed on $m ranks (status $rc)" test "$rc" = 0
    check "from epoch 2, $n segments on $m ranks" grep -q \
        "memsim: restarted from epoch 2 after 200 operations per worker, $n segments on $m ranks" \
        <<<"$out"
    check "books and heaps agree" grep -q "memsim: books and heaps agree" <<<"$out"
    check "the allocations and frees of an uninterrupted run (${ms_ref[$n]:-none})" \
        grep -q "${ms_ref[$n]:-none}" <<<"$out"
done

# Replicated objects (kvstore --replicas 3): the stores of a run on N ranks are read by a
# relaunch on M, every object moves onto the M ranks at its version, and the writes'
# record (--ack-log) shows no acknowledged put lost: 4 -> 2 -> 6 -> 3.
echo "== replicated objects: kvstore --replicas 3, 4 -> 2 -> 6 -> 3 ranks"
rkv_args=(--replicas 3 --keys 24 --read-ratio 0.5 --ops 40 --ack-log "$work/rkv/ack")
mkdir -p "$work/rkv"
prev=
for m in 4 2 6 3; do
    out=$(DSM_CKPT_JOB=rkv DSM_RESTART=auto DSM_LOG_LEVEL=info timeout "$(secs 240)" "$dsmrun" \
        -n "$m" --timeout "$(secs 120)" --ckpt-dir "$work/rkv/ck" "$kv" "${rkv_args[@]}" 2>&1)
    rc=$?
    show "$(grep -E '^kvstore:|replicated objects' <<<"$out" | grep -v '^\[dsm [1-9]')"
    check "kvstore --replicas 3 on $m ranks (status $rc)" test "$rc" = 0
    check "every read checked out" grep -q "kvstore: every read checked out" <<<"$out"
    if [[ -n $prev ]]; then
        check "the 24 objects of the $prev-rank run moved onto $m ranks" grep -q \
            "replicated objects: 24 of the 24 objects of a $prev-rank job moved onto $m ranks" \
            <<<"$out"
    fi
    check "no acknowledged put lost" ack_check "$work/rkv"/ack.*
    prev=$m
done

# Replicated objects in checkpoints: a checkpoint keeps every object's image in rank 0's
# heap. When a relaunch finds no store of the job at all (every node's storage lost),
# the objects come back from the epoch it restores (here the last, at the run's end:
# every acknowledged put is in it), also on another rank count; when some stores
# survive, they decide: two ranks' stores removed lose keys with DSM_ERR_QUORUM, never
# an older value from the image.
echo "== replicated objects from a checkpoint: every store lost, 4 -> 3 ranks"
mkdir -p "$work/rimg"
rimg() { # rimg NP RESTART: kvstore --replicas 3 checkpointing every 20 ops; sets out, rc
    out=$(DSM_CKPT_JOB=rimg DSM_REPL_DIR=$work/rimg/stores DSM_RESTART=$2 DSM_LOG_LEVEL=warn \
        timeout "$(secs 240)" "$dsmrun" -n "$1" --timeout "$(secs 120)" --ckpt-dir \
        "$work/rimg/ck" "$kv" --replicas 3 --keys 24 --read-ratio 0.5 --ops 40 --ckpt-every 20 \
        --ack-log "$work/rimg/ack" 2>&1)
    rc=$?
    show "$(grep -E '^kvstore:|replicated objects' <<<"$out" | grep -v '^\[dsm [1-9]' | tail -n 4)"
}
rimg 4 auto
check "kvstore --replicas 3 --ckpt-every 20 on 4 ranks (status $rc)" test "$rc" = 0
rm -rf "$work/rimg/stores"
rimg 3 required
check "resumed on 3 ranks without stores (status $rc)" test "$rc" = 0
check "the objects came from the checkpoint" grep -q \
    "replicated objects: no store of this job was found; 24 of 24 objects restored from checkpoint epoch" \
    <<<"$out"
check "every read checked out" grep -q "kvstore: every read checked out" <<<"$out"
check "no acknowledged put lost" ack_check "$work/rimg"/ack.*
rm -f "$work"/rimg/stores/*/repl/rank-0.store "$work"/rimg/stores/*/repl/rank-1.store
rimg 3 required
check "with 2 of 3 stores removed the relaunch refuses (status $rc)" test "$rc" != 0
check "  naming the keys as lost" grep -q "keys lost a majority of their copies" <<<"$out"
check "  and not from the image" bash -c '! grep -q "restored from checkpoint" <<<"$1"' _ "$out"

# Across simulated nodes the data path is hybrid (loads and stores within a node, MPI
# between nodes): built on 2 nodes x 2 ranks, restarted on 2 nodes x 1 rank (segments
# hosted across nodes) and on 2 x 3 ranks. The checkpoint levels are off so that every
# epoch is in the shared directory, the one level a restart on another count reads.
sc=$top/mpi-launch/simcluster
if [[ ${DSM_TEST_CLUSTER:-1} == 0 ]] || ! reason=$("$sc" check); then
    echo "-- across simulated nodes: skipped (${reason:-DSM_TEST_CLUSTER=0})"
    exit "$fail"
fi
export SIMCLUSTER_DIR=$work/cluster
trap 'timeout 60 "$sc" down >/dev/null 2>&1; rm -rf "$work"' EXIT
"$sc" up 2 >/dev/null || { echo "FAIL: simcluster up 2"; exit 1; }
crun() { # crun PPN DIR MODE RESTART: the helper on the simulated nodes; sets out and rc
    out=$(DSM_CKPT_LOCAL_DIR= DSM_RESTART=$4 "$sc" run --ppn "$1" --timeout "$(secs 240)" \
        --ckpt-dir "$2" -- "$prog" "$3" 2>&1)
    rc=$?
    show "$(grep -v '^\[dsm [0-9]*\]   ' <<<"$out" | tail -n 8)"
}
echo "== nodes 2+2: build"
crun 2,2 "$work/nodes" build never
check "build on 2 nodes (status $rc)" test "$rc" = 0
check "build says ok" grep -q "regroup: ok build on 4 ranks, 4 segments" <<<"$out"
for ppn in 1,1 3,3; do
    m=$((${ppn%,*} * 2)) segs=$((m > 4 ? m : 4))
    echo "== nodes 2+2 -> ${ppn/,/+}"
    cp -r "$work/nodes" "$work/nodes$m"
    crun "$ppn" "$work/nodes$m" verify required
    check "restart on $m ranks of 2 nodes (status $rc)" test "$rc" = 0
    check "every check passed on $m ranks" \
        grep -q "regroup: ok verify on $m ranks, $segs segments" <<<"$out"
done

exit "$fail"
