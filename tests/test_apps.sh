#!/bin/bash
# Smoke-run every app at NPROCS ranks through dsmrun: each checks its own results and
# exits non-zero when a check fails.
set -u
dsmrun=${top_builddir:-.}/mpi-launch/dsmrun
apps=${top_builddir:-.}/apps
np=${NPROCS:-4}
to=${TEST_TIMEOUT:-300}
fail=0
run() {
    echo "== $*"
    if ! "$dsmrun" -n "$np" --timeout "$to" "$@"; then echo "FAIL: $*"; fail=1; fi
}
run "$apps/dsm-demo" --rounds 200
run "$apps/dsm-bench" rma --quick --rounds 1
run "$apps/dsm-bench" heap --quick --rounds 1
exit $fail
