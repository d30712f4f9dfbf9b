#!/bin/bash
# Under a real single-node Slurm (mpi-launch/slurm-local: munged, slurmctld, slurmd):
#  - sbatch mpi-launch/dsm.sbatch runs apps/dsm-demo on 4 tasks and passes;
#  - sbatch dsm.sbatch relaunches tests/crashy inside the allocation after a rank is
#    killed, from the epoch crashy committed;
#  - srun --mpi=pmix -n 4 apps/dsm-demo directly (pmi2 for an MPICH build, whose PMI
#    client speaks PMI-2; under pmix it would start 4 singletons).
# Skipped (77) without root or the Debian packages, or with DSM_TEST_SLURM=0. One run at
# a time per machine (a lock); the daemons this test started are stopped on exit.
set -u
top=$(cd "${top_builddir:-.}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
slurm_local=$src/mpi-launch/slurm-local
dsmrun=$top/mpi-launch/dsmrun
demo=$top/apps/dsm-demo
crashy=$top/tests/crashy
np=4

[[ ${DSM_TEST_SLURM:-1} != 0 ]] || { echo "SKIP: DSM_TEST_SLURM=0"; exit 77; }
reason=$("$slurm_local" check) || { echo "SKIP: Slurm cannot run here: $reason"; exit 77; }
[[ -x $demo ]] || { echo "SKIP: $demo not built"; exit 77; }

exec 9>"${TMPDIR:-/tmp}/mpidsm-slurm-test.lock"
flock -w 150 9 || { echo "SKIP: another Slurm test held the lock for 150 s"; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/dsm-slurm.XXXXXX")
started=0
finish() {
    [[ $started == 1 ]] && timeout 60 "$slurm_local" stop
    rm -rf "$work"
}
trap finish EXIT
fail=0
check() { # check DESCRIPTION COMMAND...: the command must succeed
    local what=$1; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi
}

"$slurm_local" status >/dev/null || started=1
setup=$(timeout 60 "$slurm_local" start) || { echo "FAIL: slurm-local start"; exit 1; }
eval "$setup"
echo "Slurm up: $SLURM_CONF; $(sinfo -h -N -o '%N %c CPUs %T')"

# submit SCRIPT-ARGS...: sbatch dsm.sbatch, wait (bounded) until the job has left the
# queue; sets out (the job's output) and state
submit() {
    local id i
    id=$(sbatch --parsable -n "$np" -t 5 -o "$work/job-%j.out" \
        --export=ALL,DSMRUN="$dsmrun" "$src/mpi-launch/dsm.sbatch" "$@") || return 1
    echo "submitted job $id: $*"
    for ((i = 0; i < 400; i++)); do # 400 x 0.25 s: 100 s at most
        [[ -z $(squeue -h -j "$id" 2>/dev/null) ]] && break
        sleep 0.25
    done
    state=$(scontrol show job "$id" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
    if [[ -n $(squeue -h -j "$id" 2>/dev/null) ]]; then
        echo "job $id still queued or running after 100 s: cancelling"
        scancel "$id"
        state=TIMEOUT
    fi
    out=$(cat "$work/job-$id.out" 2>/dev/null)
    sed 's/^/    | /' <<<"$out"
}

echo "== sbatch dsm.sbatch apps/dsm-demo on $np tasks"
submit --timeout 80 "$demo" --rounds 100
check "the job completed (state $state)" test "$state" == COMPLETED
check "all checks passed" grep -q "dsm-demo: all checks passed" <<<"$out"
check "$np ranks took part" grep -q "after $np ranks" <<<"$out"
check "the job ran under srun" grep -q "finished with status 0" <<<"$out"

echo "== sbatch dsm.sbatch: a rank killed, relaunched inside the allocation"
if [[ -x $crashy ]]; then
    submit --ckpt-dir "$work/ck" --timeout 60 "$crashy"
    check "the job completed (state $state)" test "$state" == COMPLETED
    check "the killed rank was seen" grep -q "attempt 1 of 4 failed: .*SIGKILL" <<<"$out"
    check "relaunched from the committed epoch" \
        grep -q "attempt 2: restarting from epoch 00000001" <<<"$out"
    check "the relaunch succeeded" grep -q "crashy: attempt 2 succeeded" <<<"$out"
else
    echo "skip: $crashy not built"
fi

mpi=pmix
"$dsmrun" --info | grep -q "built for: mpich" && mpi=pmi2
echo "== srun --mpi=$mpi -n $np apps/dsm-demo"
out=$(timeout 90 srun --mpi="$mpi" -n "$np" -t 2 "$demo" --rounds 100 2>&1)
rc=$?
sed 's/^/    | /' <<<"$out" | tail -4
check "srun -n $np passed (status $rc)" test "$rc" == 0
check "all checks passed on $np ranks" grep -q "after $np ranks" <<<"$out"
check "srun lists pmix" bash -c "srun --mpi=list 2>&1 | grep -q pmix"
exit $fail
