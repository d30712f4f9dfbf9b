#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Replicated objects (tests/test_repl.c) on the MPI path: the stores as one MPI window
# (DSM_DIRECT=0), as every job that spans nodes uses them. Open MPI serves that window
# with osc ucx (dsmrun --net=ucx): its osc pt2pt refuses windows under the
# MPI_THREAD_MULTIPLE the harness asks for, and osc rdma's compare-and-swap crashes
# before 4.1.5. The direct path runs as tests/test_repl itself.
set -u
top=$(cd "${top_builddir:-.}" && pwd)
dsmrun=$top/mpi-launch/dsmrun
np=${NPROCS:-4}
to=${TEST_TIMEOUT:-300}
args=()
if [[ $("$dsmrun" --info | sed -n 's/.*built for: //p') == openmpi ]]; then
    [[ ${DSM_TEST_NETPATH:-1} != 0 ]] || { echo "SKIP: DSM_TEST_NETPATH=0 (Open MPI needs --net=ucx)"; exit 77; }
    args=(--net=ucx)
fi
out=$(DSM_DIRECT=0 timeout $((to + 30)) "$dsmrun" -n "$np" --timeout "$to" "${args[@]}" \
    "$top/tests/test_repl" 2>&1)
rc=$?
if [[ $rc == 0 ]]; then
    echo "ok   test_repl with DSM_DIRECT=0 ${args[*]}"
    exit 0
fi
echo "FAIL test_repl with DSM_DIRECT=0 ${args[*]} (status $rc):"
tail -n 30 <<<"$out"
exit 1
