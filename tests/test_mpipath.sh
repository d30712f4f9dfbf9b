#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The MPI-call data path. On one node mpidsm moves data with loads, stores and CPU
# atomics (DSM_DIRECT, src/win.h), so the other suites exercise that path; this one runs
# the rma, heap, sync, signal, strided, atomic, array and hybrid suites again with
# DSM_DIRECT=0, where every access is an MPI one-sided call, the path a job across nodes
# takes between nodes.
top=${top_builddir:-.}
np=${NPROCS:-4}
to=${TEST_TIMEOUT:-300}
fail=0
for t in test_rma test_heap test_sync test_signal test_strided test_atomic test_array test_reduce \
    test_array_ckpt test_hybrid; do
    DSM_DIRECT=0 "$top/mpi-launch/dsmrun" -n "$np" --timeout "$to" "$top/tests/$t" >"$t.mpipath.out" 2>&1
    rc=$?
    grep -q "data path: MPI one-sided calls" "$t.mpipath.out" || [[ $t != test_rma ]] ||
        { echo "FAIL $t did not report the MPI data path"; rc=1; }
    if [[ $rc == 0 ]]; then
        echo "ok   $t with DSM_DIRECT=0"
    else
        echo "FAIL $t with DSM_DIRECT=0 (status $rc):"
        tail -n 40 "$t.mpipath.out"
        fail=1
    fi
done
exit $fail
