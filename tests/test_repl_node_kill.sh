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
# nodes; a rerun must refuse to start, naming the keys as lost (DSM_ERR_QUORUM).
# Skipped (77) without root or namespaces, or with DSM_TEST_CLUSTER=0.
#   REPLKILL_SEEDS  the random trials (default "1": a simulated-cluster run takes 20-70 s
#                   on a loaded 2-core machine; tests/soak_repl_node_kill.sh runs 20 or more)
#   REPLKILL_QUORUM 0 skips the quorum case
set -u
. "$(dirname "$0")/lib.sh"
cluster_up replkill 3
kv=$apps/kvstore
export DSM_LOG_LEVEL=warn DSM_HEAP_SIZE=16M
kv_args=(--replicas 3 --keys 24 --read-ratio 0.5 --ops 60)
keys=24

# check LOG...: every rank's record must hold (see the top); prints what is wrong
check() {
    awk '
    FNR == 1 { delete last; delete intent; delete pending }
    $1 == "W" { intent[$2] = $3; pending[$2] = 1 }
    $1 == "A" { last[$2] = $3; pending[$2] = 0; acked++ }
    $1 == "R" {
        want = ($2 in last) ? last[$2] : 0
        if ($3 != want && !(pending[$2] && $3 == intent[$2])) {
            printf "%s: key %s: a start found version %s, last acknowledged %s\n", FILENAME, $2, $3, want
            bad++
        }
        last[$2] = $3; pending[$2] = 0; starts++
    }
    $1 == "F" {
        want = ($2 in last) ? last[$2] : 0
        if ($3 != want) { printf "%s: key %s: final version %s, last acknowledged %s\n", FILENAME, $2, $3, want; bad++ }
        finals++
    }
    END { printf "    %d acknowledged puts, %d key starts, %d final keys checked\n", acked, starts, finals; exit bad > 0 }
    ' "$@"
}

fail=0 trials=0 ok=0
for seed in ${REPLKILL_SEEDS-1}; do
    RANDOM=$seed
    d=$work/seed$seed target=$((5 + RANDOM % 40)) node=node$((1 + RANDOM % 3))
    mkdir -p "$d"
    DSM_CKPT_JOB=kvrepl-$seed-$$ "$sc" run --timeout "$to" --restarts 1 -- "$kv" "${kv_args[@]}" \
        --ack-log "$d/ack" >"$d/out" 2>&1 &
    job=$!
    for ((i = 0; i < 20 * to; i++)); do # until target puts are acknowledged
        kill -0 "$job" 2>/dev/null || break
        [[ $(cat "$d"/ack.* 2>/dev/null | grep -c '^A') -ge $target ]] && break
        sleep 0.05
    done
    echo "seed $seed: kill $node --wipe after $target acknowledged puts"
    "$sc" kill "$node" --wipe 2>&1 | sed 's/^/    /'
    wait "$job"
    rc=$? trials=$((trials + 1))
    if [[ $rc == 0 ]] && grep -q "attempt 2" "$d/out" && grep -q "every read checked out" "$d/out" &&
        check "$d"/ack.*; then
        ok=$((ok + 1))
        echo "ok   seed $seed ($SECONDS s)"
    else
        echo "FAIL seed $seed: status $rc (replay: REPLKILL_SEEDS=$seed)"
        check "$d"/ack.* | head -10
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
echo "replicated objects: $ok of $trials node-loss trials kept every acknowledged write"
exit $fail
