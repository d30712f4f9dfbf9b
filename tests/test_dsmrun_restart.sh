#!/bin/bash
# dsmrun --restarts with tests/crashy (a plain MPI program, no checkpoint library):
#  - a rank killed by SIGKILL on the first attempt: the job is relaunched with
#    DSM_RESTART=auto from the newest committed epoch and then succeeds; the log names
#    the signal, the rank (when the launcher says it) and the epoch;
#  - a program that always exits 3 is retried once, then dsmrun gives up with status 3;
#  - the relaunch resumes from the newest epoch with a COMMIT file;
#  - without --restarts nothing is relaunched; stdin reaches the program;
#  - SIGINT to dsmrun mid-run stops the job: status 130, and no rank is left when dsmrun
#    returns.
set -u
. "$(dirname "$0")/lib.sh"
command -v pgrep >/dev/null || { echo "FAIL: pgrep (Debian: procps) is needed"; exit 1; }
top=$(cd "${top_builddir:-.}" && pwd)
dsmrun=$top/mpi-launch/dsmrun
crashy=$top/tests/crashy
np=${NPROCS:-4}
[[ -x $crashy ]] || { echo "SKIP: $crashy not built (make check builds it)"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/dsmrun-restart.XXXXXX")
trap 'rm -rf "$work"' EXIT
run() { # run ARGS...: dsmrun with a bound; sets out and rc
    out=$(timeout "$(secs 240)" "$dsmrun" -n "$np" --timeout "$(secs 60)" "$@" 2>&1)
    rc=$?
    show "$out"
}

echo "== a rank killed on the first attempt"
run --restarts 2 --ckpt-dir "$work/ck" "$crashy"
check "relaunched and succeeded (status $rc)" test "$rc" == 0
check "the cause names SIGKILL" grep -q "attempt 1 of 3 failed: .*signal SIGKILL" <<<"$out"
if "$dsmrun" --info | grep -q "^launcher:.*(openmpi"; then
    check "the cause names the rank (Open MPI says it)" \
        grep -q "failed: rank $((np - 1)): signal SIGKILL" <<<"$out"
fi
check "the restart names its epoch" grep -q "attempt 2: restarting from epoch 00000001" <<<"$out"
check "the relaunch has DSM_RESTART=auto" grep -q "crashy: attempt 2 on $np ranks, DSM_RESTART=auto" <<<"$out"
check "the program's output got through" grep -q "crashy: attempt 2 succeeded" <<<"$out"
check "one restart, not more" test "$(grep -c 'restarting from' <<<"$out")" == 1

echo "== the newest committed epoch, not an uncommitted one"
mkdir -p "$work/cke/crashy/00000007" "$work/cke/crashy/00000012" "$work/cke/crashy/junk"
touch "$work/cke/crashy/00000007/COMMIT" "$work/cke/crashy/junk/COMMIT"
run --restarts 1 --ckpt-dir "$work/cke" "$crashy"
check "relaunched and succeeded (status $rc)" test "$rc" == 0
check "resumes from 00000007 (00000012 has no COMMIT)" \
    grep -q "attempt 2: restarting from epoch 00000007" <<<"$out"

echo "== stdin reaches the program"
out=$(echo "stdin-ok" | timeout "$(secs 60)" "$dsmrun" -n 1 --timeout "$(secs 30)" --restarts 1 cat 2>&1)
check "the program read dsmrun's stdin" grep -q "stdin-ok" <<<"$out"

echo "== a program that always exits 3"
run --restarts 5 --ckpt-dir "$work/ck3" "$crashy" --exit 3
check "gives up with the program's status (3, got $rc)" test "$rc" == 3
check "after the same failure twice" grep -q "the same failure twice from epoch none" <<<"$out"
check "two attempts, not six" test "$(grep -c 'failed: ' <<<"$out")" == 2

echo "== no --restarts: no relaunch"
run --ckpt-dir "$work/ck0" "$crashy"
check "the killed job's status comes back (non-zero: $rc)" test "$rc" != 0
check "nothing relaunched" test "$(grep -c 'crashy: attempt' <<<"$out")" == 1

echo "== SIGINT to dsmrun mid-run"
set -m # the job gets its own process group, so SIGINT is not ignored in it
"$dsmrun" -n "$np" --timeout "$(secs 120)" --restarts 3 --ckpt-dir "$work/cki" "$crashy" --sleep 100 \
    >"$work/int.log" 2>&1 &
pid=$!
set +m
for ((i = 0; i < 300; i++)); do # the ranks are up when the program has started
    [[ $(pgrep -c -f -- "$crashy --sleep") -ge $np ]] && break
    sleep 0.1
done
sleep 1
start=$SECONDS
kill -INT "$pid"
for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
wait "$pid"
rc=$?
took=$((SECONDS - start))
show "$(cat "$work/int.log")"
check "status 130 (got $rc)" test "$rc" == 130
check "stopped within 10 s (took ${took}s)" test "$took" -le 10
check "not relaunched" grep -q "stopped by SIGINT; not restarting" "$work/int.log"
# dsmrun returns only when the job's ranks are gone, also Open MPI's, which sit in
# process groups of their own (comm: the launcher's command line names crashy too)
left=
for p in $(pgrep -f -- "$crashy --sleep"); do
    [[ $(cat "/proc/$p/comm" 2>/dev/null) == crashy ]] && left+=" $p"
done
check "no rank left running when dsmrun returned${left:+ (pids:$left)}" test -z "$left"
[[ -n $left ]] && kill -KILL $left
exit $fail
