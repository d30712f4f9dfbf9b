#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Every CUnit suite and test_progress across simulated nodes (mpi-launch/simcluster):
# 2 nodes x 2 ranks, and test_runtime again on 3 nodes with 2+1+1 ranks, where ranks per node differ.
# Across nodes the data path is hybrid (loads and stores within a node, MPI between
# nodes; test_rma and test_hybrid insist on it, and test_hybrid storms words that ranks
# of both kinds hit at once), and test_runtime checks nnodes, node ids and local ranks
# against the hostfile's layout (DSM_TEST_NODE_RANKS). Skipped (77) without root, namespaces
# or with DSM_TEST_CLUSTER=0. The cluster is removed on exit, also after a failure.
set -u
top=$(cd "${top_builddir:-.}" && pwd)
sc=$top/mpi-launch/simcluster
# Per suite: twice TEST_TIMEOUT. 4 ranks of 2 nodes on this 2-core machine run slower
# than on one node; test_ckpt took 291 s over osc pt2pt and 503 s over osc ucx (the
# default now) at load 22, against 300 s.
to=$((2 * ${TEST_TIMEOUT:-300}))
[[ ${DSM_TEST_CLUSTER:-1} != 0 ]] || { echo "SKIP: DSM_TEST_CLUSTER=0"; exit 77; }
reason=$("$sc" check) || { echo "SKIP: no simulated cluster here: $reason"; exit 77; }
export SIMCLUSTER_DIR=${TMPDIR:-/tmp}/dsm-cluster.$$
trap 'timeout 60 "$sc" down' EXIT
trap 'exit 130' INT TERM
"$sc" up 3 || { echo "FAIL: simcluster up 3"; exit 1; }
# Open MPI's path across these nodes is UCX (simcluster's default, pml and osc ucx). Its
# threads cases hang there (test_rma threads timed out after 600 s; memsim with 2
# threads per rank too; not understood yet, issue 14), so on Open MPI the CUnit suites
# run as before this change: over osc pt2pt (SIMCLUSTER_NET=tcp; over UCX without the
# progress thread test_ckpt's root table starved), with tests/libthreadcap (a PMPI
# shim capping the level at MPI_THREAD_SERIALIZED, which osc pt2pt needs) and
# DSM_THREADS=serialized: the threads cases are no-ops there. MPICH runs them. test_progress (a rank computing without MPI calls while the others do
# remote fetch-adds and allocations on its memory; hangs without passive progress) runs
# without the shim on both: the progress thread needs MPI_THREAD_MULTIPLE.
capped=()
if "$top/mpi-launch/dsmrun" --info | grep -q "built for: openmpi"; then
    capped=(env DSM_THREADS=serialized LD_PRELOAD="$top/tests/.libs/libthreadcap.so")
fi

fail=0
# suite LAYOUT TEST: run tests/TEST with LAYOUT ranks per node (node1, node2, ...)
suite() {
    local layout=$1 t=$2 rc start=$SECONDS
    # in the background: a signal to this script then ends it (and, by its exit trap,
    # the cluster with every rank) at once instead of after the job
    local cap=("${capped[@]}") net=${SIMCLUSTER_NET:-}
    [[ ${#cap[@]} == 0 ]] || net=tcp
    [[ $t != test_progress ]] || cap=() net=${SIMCLUSTER_NET:-}
    SIMCLUSTER_NET=$net DSM_TEST_NODE_RANKS=$layout "$sc" run --ppn "$layout" --timeout "$to" -- "${cap[@]}" "$top/tests/$t" \
        >"$t.cluster-${layout//,/-}.out" 2>&1 &
    wait $!
    rc=$?
    if [[ $rc == 0 ]]; then
        echo "ok   $t on nodes ${layout//,/+} ($((SECONDS - start)) s)"
    else
        echo "FAIL $t on nodes ${layout//,/+} (status $rc, $((SECONDS - start)) s):"
        tail -n 40 "$t.cluster-${layout//,/-}.out"
        fail=1
    fi
}
for t in test_runtime test_env test_gptr test_rma test_sync test_heap test_placement test_ckpt \
    test_progress test_signal test_strided test_atomic test_array test_reduce test_array_ckpt \
    test_hybrid; do
    suite 2,2 "$t"
done
suite 2,1,1 test_runtime
exit $fail
