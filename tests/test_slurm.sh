#!/bin/bash
# Under a real Slurm on 2 simulated nodes (mpi-launch/slurm-local start 2: munged and
# slurmctld here, one slurmd in each node of mpi-launch/simcluster; one node on this
# machine when simcluster cannot run):
#  - sbatch -N 2 -n 4 mpi-launch/dsm.sbatch runs apps/dsm-demo across both nodes;
#  - sbatch -N 2 dsm.sbatch relaunches tests/crashy inside the allocation after a rank
#    is killed, from the epoch crashy committed in the shared checkpoint directory;
#  - srun --mpi=pmix -N 2 -n 4 apps/dsm-demo directly (pmi2 for an MPICH build, whose
#    PMI client speaks PMI-2; under pmix it would start 4 singletons);
#  - dsm.sbatch --shrink: node2 lost for good mid-run (slurm-local kill), heat goes on
#    with node1's ranks from the 4-rank checkpoint, bit-identical.
# dsm-demo runs with DSM_VERBOSE=1, whose topology line must say "on 2 node(s)".
# Skipped (77) without root or the Debian packages, or with DSM_TEST_SLURM=0. One run at
# a time per machine (a lock); the daemons and nodes this test started are removed on
# exit.
set -u
. "$(dirname "$0")/lib.sh"
top=$(cd "${top_builddir:-.}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
slurm_local=$src/mpi-launch/slurm-local
dsmrun=$top/mpi-launch/dsmrun
demo=$top/apps/dsm-demo
crashy=$top/tests/crashy
np=4
export SIMCLUSTER=$top/mpi-launch/simcluster
nn=2
"$SIMCLUSTER" check >/dev/null || nn=1

[[ ${DSM_TEST_SLURM:-1} != 0 ]] || { echo "SKIP: DSM_TEST_SLURM=0"; exit 77; }
reason=$("$slurm_local" check) || { echo "SKIP: Slurm cannot run here: $reason"; exit 77; }
[[ -x $demo ]] || { echo "SKIP: $demo not built"; exit 77; }

exec 9>"${TMPDIR:-/tmp}/mpidsm-slurm-test.lock"
flock -w 150 9 || { echo "SKIP: another Slurm test held the lock for 150 s"; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/dsm-slurm.XXXXXX")
started=0
finish() {
    [[ $started == 1 ]] && timeout "$(secs 60)" "$slurm_local" stop
    rm -rf "$work"
}
trap finish EXIT

"$slurm_local" status >/dev/null || started=1
# a lost node is declared DOWN after 10 s, not Slurm's 300 (the shrink case below)
export DSM_SLURM_SLURMD_TIMEOUT=${DSM_SLURM_SLURMD_TIMEOUT:-10}
setup=$(timeout "$(secs 90)" "$slurm_local" start "$nn") || { echo "FAIL: slurm-local start $nn"; exit 1; }
eval "$setup"
echo "Slurm up: $SLURM_CONF; $(sinfo -h -N -o '%N %c CPUs %T' | tr '\n' ' ')"
[[ $(sinfo -h -N -o %N | wc -l) -ge $nn ]] || { echo "FAIL: fewer than $nn nodes"; exit 1; }

# submit SCRIPT-ARGS...: sbatch dsm.sbatch, wait (bounded) until the job has left the
# queue; sets out (the job's output) and state
submit() {
    id=$(sbatch --parsable -N "$nn" -n "$np" -t 5 -o "$work/job-%j.out" \
        --export=ALL,DSMRUN="$dsmrun" "$src/mpi-launch/dsm.sbatch" "$@") || return 1
    echo "submitted job $id: $*"
    [[ -z ${on_start:-} ]] || $on_start
    local end=$((SECONDS + $(secs 100)))
    while ((SECONDS < end)); do
        [[ -z $(squeue -h -j "$id" 2>/dev/null) ]] && break
        sleep 0.25
    done
    state=$(scontrol show job "$id" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
    if [[ -n $(squeue -h -j "$id" 2>/dev/null) ]]; then
        echo "job $id still queued or running after $(secs 100) s: cancelling"
        scancel "$id"
        state=TIMEOUT
    fi
    out=$(cat "$work/job-$id.out" 2>/dev/null)
    sed 's/^/    | /' <<<"$out"
}

echo "== sbatch -N $nn dsm.sbatch apps/dsm-demo on $np tasks"
DSM_VERBOSE=1 submit --timeout "$(secs 80)" "$demo" --rounds 100
check "the job completed (state $state)" test "$state" == COMPLETED
check "all checks passed" grep -q "dsm-demo: all checks passed" <<<"$out"
check "$np ranks took part" grep -q "after $np ranks" <<<"$out"
check "the ranks spanned $nn node(s)" grep -q "$np ranks on $nn node(s)" <<<"$out"
check "the job ran under srun" grep -q "finished with status 0" <<<"$out"

echo "== sbatch -N $nn dsm.sbatch: a rank killed, relaunched inside the allocation"
if [[ -x $crashy ]]; then
    submit --ckpt-dir "$work/ck" --timeout "$(secs 60)" "$crashy"
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
echo "== srun --mpi=$mpi -N $nn -n $np apps/dsm-demo"
out=$(DSM_VERBOSE=1 timeout "$(secs 90)" srun --mpi="$mpi" -N "$nn" -n "$np" -t 2 "$demo" --rounds 100 2>&1)
rc=$?
grep -v '^\[dsm 0\]   ' <<<"$out" | sed 's/^/    | /' | tail -4
check "srun -N $nn -n $np passed (status $rc)" test "$rc" == 0
check "all checks passed on $np ranks" grep -q "after $np ranks" <<<"$out"
check "the ranks spanned $nn node(s)" grep -q "$np ranks on $nn node(s)" <<<"$out"
check "srun lists pmix" bash -c "srun --mpi=list 2>&1 | grep -q pmix"

# Last, as it loses a node: node2 dies for good once heat has committed an epoch (every
# epoch also in the shared directory, --flush-every 1, the level a restart on fewer
# ranks reads); the step ends when slurmctld declares node2 DOWN, dsm.sbatch's
# --no-kill keeps the allocation, and dsmrun --shrink relaunches on node1's 2 ranks,
# which resume the 4-rank checkpoint and end bit-identical to the serial computation.
kill_node2() {
    local i
    for ((i = 0; i < 600; i++)); do # 600 x 0.1 s: the first commit, 60 s at most
        compgen -G "$work/shrink/heat/*/COMMIT" >/dev/null && break
        sleep 0.1
    done
    "$slurm_local" kill node2 | sed 's/^/    /'
}
echo "== sbatch -N 2 dsm.sbatch --shrink: node2 lost for good, heat goes on on node1"
if [[ $nn != 2 || $started != 1 ]]; then
    echo "skip: needs 2 simulated nodes of an instance this test started (nodes $nn)"
else
    on_start=kill_node2 submit --shrink --flush-every 1 --ckpt-dir "$work/shrink" \
        --timeout "$(secs 80)" "$top/apps/heat" --nx 128 --ny 128 --steps 20000 \
        --ckpt-every 100 --verify
    check "the job completed (state $state)" test "$state" == COMPLETED
    check "Slurm saw node2 fail" grep -q "Node failure on node2" <<<"$out"
    check "relaunched on node1's 2 ranks" grep -q \
        "dsmrun: --shrink: no answer from node2: relaunching on 1 of 2 hosts with 2 ranks instead of 4" \
        <<<"$out"
    check "heat resumed on 2 ranks from 4" grep -q "heat: regridded from 4 to 2 ranks" <<<"$out"
    check "from a checkpoint" grep -q "heat: resumed at step [1-9][0-9]* of 20000" <<<"$out"
    check "bit-identical to the serial run" grep -q "heat: serial checksum .*: equal" <<<"$out"
fi
exit $fail
