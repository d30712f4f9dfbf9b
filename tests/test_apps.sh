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
run "$apps/heat" --nx 64 --ny 64 --steps 40 --verify
run "$apps/kvstore" --ops 2000 --keys 2000 --read-ratio 0.5
run "$apps/kvstore" --ops 300 --keys 500 --mode mpi
# memsim's failure drill checkpoints; into a directory of the test's own, removed after
msck=$(mktemp -d "${TMPDIR:-/tmp}/dsm-memsim.XXXXXX")
DSM_CKPT_DIR=$msck run "$apps/memsim" --threads 2 --ops 300
rm -rf "$msck"
run "$apps/pipeline" --items 300 --block 100 --depth 3
run "$apps/matmul" --n 48 --block 5
# bad arguments are refused with status 2 before MPI starts
for bad in "heat --nx 1" "kvstore --read-ratio 2" "memsim --threads 0" "pipeline --depth 0" "matmul --n 0"; do
    "$apps/${bad%% *}" ${bad#* } >/dev/null 2>&1
    if [[ $? != 2 ]]; then echo "FAIL: $bad was not refused with status 2"; fail=1; fi
done
np=$((np < 2 ? 2 : np)) # the benchmark measures rank 0 -> rank 1
run "$apps/dsm-bench" rma --quick --rounds 1
run "$apps/dsm-bench" heap --quick --rounds 1
run "$apps/dsm-bench" xfer --quick --rounds 1
ck=$(mktemp -d /tmp/dsm-bench-ckpt.XXXXXX) # the checkpoints and dd's scratch file
DSM_CKPT_DIR=$ck DSM_HEAP_SIZE=8M run "$apps/dsm-bench" ckpt --quick --rounds 1
rm -rf "$ck"
exit $fail
