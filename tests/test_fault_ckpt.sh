#!/bin/bash
# Fault injection inside a checkpoint (issue 6 item 3): with the test hook
# DSM_CKPT_CRASH a rank of a heat job raises SIGKILL in the middle of writing its image
# of epoch 2 (write: the last rank, after half its file) or after every image of epoch 2
# is written but before COMMIT (commit: rank 0). The hook fires only in a run that
# restored no checkpoint, i.e. in dsmrun's first attempt (the relaunch resumes epoch 1).
# dsmrun --restarts must relaunch from epoch 1 (the half-written / uncommitted epoch 2
# must not be used) and the final grid must be bit-identical to a fault-free run.
set -u
top=${top_builddir:-.}
dsmrun=$top/mpi-launch/dsmrun
heat=$top/apps/heat
np=${NPROCS:-4}
args=(--nx 64 --ny 64 --steps 48 --ckpt-every 8)

ref=$("$dsmrun" -n "$np" --timeout "${TEST_TIMEOUT:-300}" "$heat" "${args[@]}" | sed -n 's/.*checksum \([0-9a-f]*\)$/\1/p')
[[ -n $ref ]] || { echo "FAIL: the fault-free reference run failed"; exit 1; }
echo "reference checksum: $ref"

fail=0
for point in write commit; do
    dir=$(mktemp -d /tmp/dsm-fault-ckpt.XXXXXX)
    env -u DSM_RESTART DSM_CKPT_CRASH=$point DSM_CKPT_CRASH_EPOCH=2 \
        "$dsmrun" -n "$np" --timeout "${TEST_TIMEOUT:-300}" --restarts 3 --ckpt-dir "$dir/ckpt" \
        "$heat" "${args[@]}" --expect "$ref" >"$dir/out" 2>&1
    rc=$?
    why=
    [[ $rc == 0 ]] || why="status $rc"
    grep -q "expected $ref: equal" "$dir/out" || why+=" checksum differs"
    grep -q "DSM_CKPT_CRASH=$point (test hook)" "$dir/out" || why+=" the hook did not fire"
    grep -q "restarting from epoch 00000001 " "$dir/out" || why+=" not restarted from epoch 1"
    grep -q "restarting from epoch 00000002" "$dir/out" && why+=" restarted from epoch 2"
    [[ $(grep -c "test hook" "$dir/out") == 1 ]] || why+=" the hook fired more than once"
    if [[ -z $why ]]; then
        echo "$point: killed in epoch 2, restarted from epoch 1, checksum equal"
        grep -E "restarting from|resumed" "$dir/out" | head -2
    else
        echo "FAIL $point:$why"; tail -30 "$dir/out"; fail=1
    fi
    rm -rf "$dir"
done
exit $fail
