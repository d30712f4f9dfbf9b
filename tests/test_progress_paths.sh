#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Passive progress on one node (issue 14 item 2): tests/test_progress (a target that
# computes without calling MPI while the others do remote fetch-adds and allocations on
# its memory; count-based, it hangs without progress) on the MPI data paths of one node:
# DSM_DIRECT=0 (MPICH ch4:ucx, Open MPI osc sm), and on Open MPI also osc ucx over UCX's
# TCP (dsmrun --net=ucx), whose target needs progress even on one node; plus
# DSM_PROGRESS=on, which must start the thread or fail dsm_init. The cluster test runs it
# across nodes. DSM_TEST_PROGRESS=0 skips (77).
set -u
top=$(cd "${top_builddir:-.}" && pwd)
dsmrun=$top/mpi-launch/dsmrun
np=${NPROCS:-4}
to=${TEST_TIMEOUT:-300}
[[ ${DSM_TEST_PROGRESS:-1} != 0 ]] || { echo "SKIP: DSM_TEST_PROGRESS=0"; exit 77; }
fail=0
run() { # run DESCRIPTION DSMRUN-ARGS...: test_progress must pass
    local what=$1 rc start=$SECONDS
    shift
    out=$(timeout $((to + 30)) "$dsmrun" -n "$np" --timeout "$to" "$@" -- "$top/tests/test_progress" 2>&1)
    rc=$?
    if [[ $rc == 0 ]] && grep -q "^ok:" <<<"$out"; then
        echo "ok   $what ($((SECONDS - start)) s)"
    else
        echo "FAIL $what (status $rc, $((SECONDS - start)) s):"
        tail -n 20 <<<"$out"
        fail=1
    fi
}
DSM_DIRECT=0 run "DSM_DIRECT=0"
DSM_DIRECT=0 DSM_PROGRESS=on DSM_THREADS=serialized run "DSM_DIRECT=0 DSM_PROGRESS=on DSM_THREADS=serialized"
if "$dsmrun" --info | grep -q "built for: openmpi"; then
    out=$("$dsmrun" --net=ucx --dry-run -n 2 x 2>&1)
    if grep -q "UCX is not usable" <<<"$out"; then
        echo "skip Open MPI over UCX: not usable here"
    else
        run "Open MPI osc ucx over TCP (dsmrun --net=ucx)" --net=ucx
    fi
fi
exit $fail
