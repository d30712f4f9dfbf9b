#!/bin/bash
# Fault injection (issue 6): kill -9 a random rank of a running heat job at a random
# moment after its first committed checkpoint. dsmrun --restarts must relaunch it, heat
# must resume from the newest committed epoch, and the final grid must be bit-identical
# to a run without faults. FAULT_SEEDS picks the trials (default 3 seeds);
# mpi-launch/soak runs as many as asked.
set -u
top=${top_builddir:-.}
dsmrun=$top/mpi-launch/dsmrun
heat=$top/apps/heat
np=${NPROCS:-4}
seeds=${FAULT_SEEDS:-"1 2 3"}
marker=$((4000 + $$ % 97))          # a step count unique to this run, to find its ranks
args=(--nx 96 --ny 96 --steps "$marker" --ckpt-every 40)
# Timeouts scale with the suite's (TEST_TIMEOUT, 300 s by default): a busy machine or a
# slower MPI takes longer, and a test must fail only on a hang, never on load.
to=${TEST_TIMEOUT:-300}

ref=$("$dsmrun" -n "$np" --timeout "$to" "$heat" "${args[@]}" | sed -n 's/.*checksum \([0-9a-f]*\)$/\1/p')
[[ -n $ref ]] || { echo "FAIL: the fault-free reference run failed"; exit 1; }
echo "reference checksum: $ref"

command -v pgrep >/dev/null || { echo "FAIL: pgrep (Debian: procps) is needed"; exit 1; }

# The PIDs of this job's heat ranks (not dsmrun, not the launcher).
ranks() {
    local p
    for p in $(pgrep -f -- "--steps $marker"); do
        [[ $(cat "/proc/$p/comm" 2>/dev/null) == *heat ]] && echo "$p"
    done
}

fail=0 recovered=0 trials=0
for seed in $seeds; do
    RANDOM=$seed
    trials=$((trials + 1))
    dir=$(mktemp -d /tmp/dsm-fault.XXXXXX)
    "$dsmrun" -n "$np" --timeout $((2 * to)) --restarts 3 --ckpt-dir "$dir/ckpt" \
        "$heat" "${args[@]}" --expect "$ref" >"$dir/out" 2>&1 &
    job=$!
    # The moment: once a random committed epoch between 1 and 20 exists,
    # plus 0-40 ms (the run has about 100). Progress, not wall time, so a slow or busy machine still hits the run.
    target=$((1 + RANDOM % 20))
    for _ in $(seq $((20 * to))); do # at most $to s, and only while the job runs
        kill -0 "$job" 2>/dev/null || break
        newest=$(ls "$dir"/ckpt/*/*/COMMIT 2>/dev/null | sed 's|.*/\([0-9]*\)/COMMIT|\1|' | sort | tail -1)
        [[ -n $newest && $((10#$newest)) -ge $target ]] && break
        sleep 0.05
    done
    sleep "0.0$((RANDOM % 5))"
    victims=($(ranks))
    if [[ ${#victims[@]} -gt 0 ]]; then
        v=${victims[$((RANDOM % ${#victims[@]}))]}
        echo "seed $seed: kill -9 rank process $v (of ${#victims[@]}) after epoch $target"
        kill -9 "$v" 2>/dev/null
    else # a trial that injected nothing must not count as a recovery
        echo "FAIL seed $seed: the job ended before a rank could be killed"
        fail=1
        wait "$job"
        rm -rf "$dir"
        continue
    fi
    wait "$job"
    rc=$?
    if [[ $rc == 0 ]] && grep -q "expected $ref: equal" "$dir/out"; then
        recovered=$((recovered + 1))
        grep -E "restart|resumed" "$dir/out" | head -3
    else
        echo "FAIL seed $seed: status $rc"; tail -20 "$dir/out"; fail=1
    fi
    rm -rf "$dir"
done
echo "recovered $recovered/$trials"
exit $fail
