#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The heap lock's fairness (tests/test_heaplock.c) on the paths where the old lock
# starved remote allocations: the MPI data path (DSM_DIRECT=0) and, on Open MPI, the
# network paths (dsmrun --net=tcp as tests/test_netpath.sh forces it, where no progress
# thread can run and the owner drives MPI itself; --net=ucx, where the progress thread
# lands remote tickets while the owner is busy). The default path runs as
# tests/test_heaplock itself (this script has another name: make would give both one log).
set -u
top=$(cd "${top_builddir:-.}" && pwd)
dsmrun=$top/mpi-launch/dsmrun
np=${NPROCS:-4}
to=${TEST_TIMEOUT:-300}
fail=0
run() { # run NAME DSMRUN-ARGS...: the suite must pass
    local name=$1 out rc
    shift
    out=$(timeout $((to + 30)) "$dsmrun" -n "$np" --timeout "$to" "$@" "$top/tests/test_heaplock" 2>&1)
    rc=$?
    grep -E "owner:|network path|UCX is not usable" <<<"$out" | sed 's/^ */    | /'
    if [[ $rc == 0 ]]; then
        echo "ok   test_heaplock $name"
    else
        echo "FAIL test_heaplock $name (status $rc):"
        tail -n 20 <<<"$out"
        fail=1
    fi
}
DSM_DIRECT=0 run "with DSM_DIRECT=0"
# The network paths are test_netpath's to allow: the sanitizer lane turns them off
# (DSM_TEST_NETPATH=0), where the thread-level shim cannot be preloaded before ASan.
if [[ ${DSM_TEST_NETPATH:-1} == 0 ]]; then
    echo "skip --net=tcp and --net=ucx: DSM_TEST_NETPATH=0"
elif [[ $("$dsmrun" --info | sed -n 's/.*built for: //p') == openmpi ]]; then
    shim=$top/tests/.libs/libthreadcap.so # osc pt2pt refuses MPI_THREAD_MULTIPLE
    if [[ -f $shim ]]; then
        run "over TCP (--net=tcp)" --net=tcp -x LD_PRELOAD="$shim" --
    else
        echo "skip --net=tcp: $shim not built"
    fi
    run "over UCX (--net=ucx)" --net=ucx
fi
exit $fail
