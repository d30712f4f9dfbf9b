#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Replicated objects survive losing a node (issue 16): kvstore --replicas 3 runs under
# dsmrun --restarts on 3 simulated nodes x 2 ranks, every key an object with one copy on
# each node. Each rank records outside the job (--ack-log, in the shared /tmp) the put it
# starts (W), each put that returned (A), the values its keys had when a run started (R)
# and at the end (F). At a random moment (a random number of acknowledged puts; the
# seed is printed, REPLKILL_SEEDS="..." replays it) `simcluster kill NODE --wipe` kills
# every process of a random node and empties its local storage, the stores included.
# dsmrun relaunches; the relaunch must find every key at its last acknowledged value
# (or at the put in flight when the node died), and the final values must be the last
# acknowledged ones. Then the quorum case: a finished run's store loses 2 of its 3
# nodes; a rerun must refuse to start, naming the keys as lost (DSM_ERR_QUORUM). Then
# the shrink case: node3 lost for good, the relaunch on 4 ranks keeps every put.
# Skipped (77) without root or namespaces, or with DSM_TEST_CLUSTER=0.
#   REPLKILL_SEEDS  the random trials (default "1 2 3 4 5": a trial takes 5-30 s on an
#                   idle 2-core machine, 20-70 s on a loaded one;
#                   tests/soak_repl_node_kill.sh runs 20 or more)
#   REPLKILL_QUORUM 0 skips the quorum case
#   REPLKILL_SHRINK 0 skips the shrink case (node3 lost for good, 6 ranks -> 4)
set -u
. "$(dirname "$0")/lib.sh"
cluster_up replkill 3
kv=$apps/kvstore
export DSM_LOG_LEVEL=warn DSM_HEAP_SIZE=16M
kv_args=(--replicas 3 --keys 24 --read-ratio 0.5 --ops 60)
keys=24

fail=0 trials=0 ok=0
for seed in ${REPLKILL_SEEDS-1 2 3 4 5}; do
    RANDOM=$seed
    target=$((5 + RANDOM % 40)) node=node$((1 + RANDOM % 3))
    for try in 1 2 3; do
        d=$work/seed$seed.$try
        mkdir -p "$d"
        DSM_CKPT_JOB=kvrepl-$seed-$try-$$ "$sc" run --timeout "$to" --restarts 1 -- "$kv" \
            "${kv_args[@]}" --ack-log "$d/ack" >"$d/out" 2>&1 &
        job=$!
        for ((i = 0; i < 20 * to; i++)); do # until target puts are acknowledged
            kill -0 "$job" 2>/dev/null || break
            [[ $(cat "$d"/ack.* 2>/dev/null | grep -c '^A') -ge $target ]] && break
            sleep 0.05
        done
        echo "seed $seed: kill $node --wipe after $target acknowledged puts"
        "$sc" kill "$node" --wipe 2>&1 | sed 's/^/    /'
        wait "$job"
        rc=$?
        # A run that ended cleanly without a relaunch was done before the kill landed (a
        # quick run on an idle machine): no trial; again, killing after the first put.
        [[ $rc == 0 ]] && ! grep -q "attempt 2" "$d/out" && [[ $try -lt 3 ]] || break
        echo "seed $seed: the run had ended before the kill; again, killing after 1 put"
        target=1
    done
    trials=$((trials + 1))
    if [[ $rc == 0 ]] && grep -q "attempt 2" "$d/out" && grep -q "every read checked out" "$d/out" &&
        ack_check "$d"/ack.*; then
        ok=$((ok + 1))
        echo "ok   seed $seed ($SECONDS s)"
    else
        echo "FAIL seed $seed: status $rc (replay: REPLKILL_SEEDS=$seed)"
        ack_check "$d"/ack.* | head -10
        grep -v '^\[dsm [0-9]*\]   ' "$d/out" | tail -20 | sed 's/^/    | /'
        fail=1
    fi
done

if [[ ${REPLKILL_QUORUM:-1} != 0 ]]; then
    d=$work/quorum
    mkdir -p "$d"
    export DSM_CKPT_JOB=kvrepl-quorum-$$
    "$sc" run --timeout "$to" -- "$kv" "${kv_args[@]}" --ops 5 >"$d/out1" 2>&1 &
    wait $!
    rc1=$?
    "$sc" kill node1 --wipe 2>&1 | sed 's/^/    /'
    "$sc" kill node2 --wipe 2>&1 | sed 's/^/    /'
    DSM_RESTART=auto "$sc" run --timeout "$to" -- "$kv" "${kv_args[@]}" --ops 5 >"$d/out2" 2>&1 &
    wait $!
    rc2=$? trials=$((trials + 1))
    lost=$(grep -c "kvstore: key [0-9]* is lost (.*'kv[0-9]*' is lost" "$d/out2")
    if [[ $rc1 == 0 && $rc2 != 0 && $lost == "$keys" ]] && grep -q "$keys keys lost a majority" "$d/out2"; then
        ok=$((ok + 1))
        echo "ok   quorum: 2 of 3 nodes wiped: the rerun refused, naming all $keys keys as lost"
    else
        echo "FAIL quorum: first run status $rc1, rerun status $rc2 (want non-zero), $lost of $keys keys named lost"
        cat "$d/out1" "$d/out2" | grep -v '^\[dsm [0-9]*\]   ' | tail -20 | sed 's/^/    | /'
        fail=1
    fi
fi
# Last, as it loses a node for good: node3 dies (simcluster kill --down) once some puts
# were acknowledged, dsmrun --shrink relaunches on the 4 ranks of node1 and node2, the
# objects of the 6-rank job move onto them (2 of each key's 3 copies survive: a
# majority), and no acknowledged put is missing.
if [[ ${REPLKILL_SHRINK:-1} != 0 ]]; then
    d=$work/shrink
    mkdir -p "$d"
    DSM_LOG_LEVEL=info DSM_CKPT_JOB=kvrepl-shrink-$$ "$sc" run --timeout "$to" --restarts 1 \
        --shrink -- "$kv" "${kv_args[@]}" --ack-log "$d/ack" >"$d/out" 2>&1 &
    job=$!
    for ((i = 0; i < 20 * to; i++)); do # until 20 puts are acknowledged
        kill -0 "$job" 2>/dev/null || break
        [[ $(cat "$d"/ack.* 2>/dev/null | grep -c '^A') -ge 20 ]] && break
        sleep 0.05
    done
    echo "shrink: kill node3 --down after 20 acknowledged puts"
    "$sc" kill node3 --down 2>&1 | sed 's/^/    /'
    wait "$job"
    rc=$? trials=$((trials + 1))
    if [[ $rc == 0 ]] && grep -q "relaunching on 2 of 3 hosts with 4 ranks instead of 6" "$d/out" &&
        grep -q "replicated objects: $keys of the $keys objects of a 6-rank job moved onto 4 ranks" \
            "$d/out" && grep -q "every read checked out" "$d/out" && ack_check "$d"/ack.*; then
        ok=$((ok + 1))
        echo "ok   shrink: 6 ranks on 3 nodes -> 4 on 2, every acknowledged put kept"
    else
        echo "FAIL shrink: status $rc"
        ack_check "$d"/ack.* | head -10
        grep -v '^\[dsm [0-9]*\]   ' "$d/out" | grep -v "^\[dsm [1-9]" | tail -20 | sed 's/^/    | /'
        fail=1
    fi
fi
echo "replicated objects: $ok of $trials node-loss trials kept every acknowledged write"
exit $fail
