#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The apps' smoke runs across simulated nodes (mpi-launch/simcluster), 2 nodes x 2 ranks,
# and dsm-demo on 3 nodes with 2+1+1 ranks; each app (dsm-bench nodes too) checks its
# own results. Across
# nodes every access takes the MPI path. memsim runs one thread per rank on Open MPI
# (see below).
# Skipped (77) without root or namespaces, or with DSM_TEST_CLUSTER=0. The cluster is
# removed on exit, also after a failure.
set -u
. "$(dirname "$0")/lib.sh"
cluster_up cluster-apps 3
log=$work/log
run() { # run LAYOUT PROGRAM ARGS...: on LAYOUT ranks per node
    local layout=$1 start=$SECONDS out rc
    shift
    echo "== nodes ${layout//,/+}: ${*#$apps/}"
    # in the background: a signal to this script then ends it (and, by its exit trap,
    # the cluster with every rank) at once instead of after the job
    DSM_VERBOSE=1 "$sc" run --ppn "$layout" --timeout "$to" -- "$@" >"$log" 2>&1 &
    wait $!
    rc=$?
    out=$(cat "$log")
    grep -v '^\[dsm 0\]   ' <<<"$out" | tail -n 4 | sed 's/^/    | /'
    local nodes=$(($(tr -cd , <<<"$layout" | wc -c) + 1))
    if ! grep -q "ranks on $nodes node(s)" <<<"$out"; then
        echo "FAIL: the job did not span $nodes nodes"
        rc=1
    fi
    if [[ $rc == 0 ]]; then
        echo "ok   ($((SECONDS - start)) s)"
    else
        echo "FAIL (status $rc, $((SECONDS - start)) s)"
        fail=1
    fi
}
run 2,2 "$apps/dsm-demo" --rounds 200
run 2,1,1 "$apps/dsm-demo" --rounds 200
run 2,2 "$apps/heat" --nx 64 --ny 64 --steps 40 --verify
# kvstore's lock hand-overs cross the network: ~20 ops/s here on 2 loaded cores
run 2,2 "$apps/kvstore" --ops 100 --keys 100 --read-ratio 0.5
run 2,2 "$apps/kvstore" --ops 100 --keys 100 --mode mpi
# dsm-bench nodes (same-node and other-node peer beside raw MPI) checks the work it
# times; a smoke run: it must measure both peers, not skip
run 2,2 "$apps/dsm-bench" nodes --quick --rounds 1
grep -q "^other-node fetch-add" "$log" || { echo "FAIL: dsm-bench nodes measured no other-node peer"; fail=1; }
if "$top/mpi-launch/dsmrun" --info | grep -q "built for: openmpi"; then
    # Open MPI's path across nodes is osc ucx (with passive progress and the fair heap
    # lock), but memsim with 2 threads per rank there did not finish in 280 s at load
    # 22 (not understood yet, issue 14): memsim runs one thread per rank on Open MPI,
    # 150 operations per half (300 took 40 s on an idle machine, 85 s in CI).
    DSM_CKPT_DIR=$work/ck DSM_THREADS=serialized run 2,2 "$apps/memsim" --threads 1 --ops 150
else
    DSM_CKPT_DIR=$work/ck run 2,2 "$apps/memsim" --threads 2 --ops 300
fi
exit $fail
