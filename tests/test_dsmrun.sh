#!/bin/bash
# dsmrun: the flags it adds, exit status passing, timeouts and argument errors.
set -u
. "$(dirname "$0")/lib.sh"
dsmrun=${top_builddir:-.}/mpi-launch/dsmrun
dry=$("$dsmrun" --dry-run -n 64 /bin/true)
if "$dsmrun" --info | grep -q openmpi; then
    check "open mpi as root gets --allow-run-as-root" \
        bash -c "[[ \$(id -u) != 0 ]] || grep -q -- --allow-run-as-root <<<'$dry'"
    check "more ranks than cores gets --oversubscribe" grep -q -- --oversubscribe <<<"$dry"
fi
check "-n reaches the launcher" grep -q -E -- '-n 64' <<<"$dry"
# A launcher option whose value is a path is not the program: the job (and so the
# checkpoint directory dsmrun watches) is the program's, with or without --.
for sep in "" "--"; do
    dry=$("$dsmrun" --dry-run -n 2 --restarts 1 --ckpt-dir /tmp/dsm-dry --hostfile /etc/hosts \
        $sep /bin/true 2>&1)
    check "--hostfile /etc/hosts $sep: the program is /bin/true" \
        grep -q "checkpoints in /tmp/dsm-dry/true)" <<<"$dry"
done
"$dsmrun" -n 1 bash -c 'exit 3'
check "exit status is the program's" test $? == 3
"$dsmrun" -n 1 --timeout 2 sleep 30 2>/dev/null
check "a hang becomes exit 124 after --timeout" test $? == 124
"$dsmrun" -n x /bin/true 2>/dev/null
check "a bad -n is refused" test $? == 2
out=$("$dsmrun" -n 1 --ckpt-local off --flush-every 2 \
    bash -c 'echo "levels [${DSM_CKPT_LOCAL_DIR-unset}] [$DSM_CKPT_FLUSH_EVERY]"' 2>&1)
check "--ckpt-local off --flush-every 2 reach the ranks" grep -q "levels \[\] \[2\]" <<<"$out"
out=$("$dsmrun" -n 1 --ckpt-local /tmp/dsm-l bash -c 'echo "[$DSM_CKPT_LOCAL_DIR]"' 2>&1)
check "--ckpt-local DIR reaches the ranks" grep -q "\[/tmp/dsm-l\]" <<<"$out"
"$dsmrun" -n 1 --ckpt-local rel/dir /bin/true 2>/dev/null
check "a relative --ckpt-local is refused" test $? == 2
"$dsmrun" -n 1 --flush-every x /bin/true 2>/dev/null
check "a bad --flush-every is refused" test $? == 2
out=$("$dsmrun" -n 1 --shrink /bin/true 2>&1)
check "--shrink without --restarts is refused" test $? == 2
check "  and says so" grep -q -- "--shrink needs --restarts" <<<"$out"
out=$(env -u OMPI_MCA_orte_default_hostfile -u HYDRA_HOST_FILE -u SLURM_JOB_ID \
    "$dsmrun" -n 1 --restarts 1 --shrink --ckpt-dir /tmp/dsm-dry /bin/true 2>&1)
check "--shrink without a hostfile is refused" test $? == 2
check "  and says so" grep -q -- "--shrink needs a hostfile" <<<"$out"
if command -v srun >/dev/null; then
    dry=(--mpiexec srun --restarts 1 --shrink --ckpt-dir /tmp/dsm-dry --dry-run /bin/true)
    out=$(env -u SLURM_JOB_ID "$dsmrun" -n 2 "${dry[@]}" 2>&1)
    check "--shrink under srun outside an allocation is refused" test $? == 2
    check "  and says so" grep -q -- "--shrink under srun needs a Slurm allocation" <<<"$out"
    alloc=(SLURM_JOB_ID=7 SLURM_TASKS_PER_NODE="2(x2),1")
    out=$(env -u NPROCS "${alloc[@]}" SLURM_JOB_NODELIST="n[1-3]" "$dsmrun" "${dry[@]}" 2>&1)
    check "--shrink in an allocation takes its tasks (5)" grep -q -- "srun .* -n 5 /bin/true" <<<"$out"
    out=$(env "${alloc[@]}" SLURM_JOB_NODELIST="n[1-3" "$dsmrun" "${dry[@]}" 2>&1)
    check "a node list it cannot read is refused" grep -q -- "cannot read SLURM_JOB_NODELIST" <<<"$out"
fi
out=$("$dsmrun" -n 2 "${top_builddir:-.}/apps/dsm-demo" --rounds 10 2>&1)
check "runs a real program on 2 ranks" grep -q "all checks passed" <<<"$out"
exit $fail
