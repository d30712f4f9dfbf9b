#!/bin/bash
# dsmrun supervises its job (issue 12 item 11):
#  - SIGTERM or SIGHUP to dsmrun: it returns 128+N only when every process of the job is
#    gone, also ranks that ignore SIGTERM (SIGKILL after the grace period) and Open MPI's
#    ranks, which sit in process groups of their own;
#  - kill -9 of dsmrun: the job does not run on unsupervised (dsmrun's watchdog stops it),
#    and rerunning the same command resumes from the newest committed checkpoint
#    without the user adding DSM_RESTART=auto; the result equals a fault-free run's;
#  - a user's own DSM_RESTART is kept on every attempt: a typo is refused by the library
#    on every attempt, and so is `required` without a checkpoint.
# Every process dsmrun starts inherits DSMRUN_TEST_MARK from it: the test finds them by
# that variable in /proc/PID/environ, checks none is left, and kills any at exit.
set -u
. "$(dirname "$0")/lib.sh"
top=$(cd "${top_builddir:-.}" && pwd)
dsmrun=$top/mpi-launch/dsmrun
crashy=$top/tests/crashy
heat=$top/apps/heat
np=${NPROCS:-4}
unset DSM_RESTART # what dsmrun does by itself, unless a case sets it
[[ -x $crashy ]] || { echo "SKIP: $crashy not built (make check builds it)"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/dsmrun-supervise.XXXXXX")
mark=DSMRUN_TEST_MARK=$work
marked() { # PIDs of the processes started by this test's dsmrun runs
    grep -l -s -z -x -F -- "$mark" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3
}
marked_named() { # marked_named COMM: those of them whose command name is COMM
    local p
    for p in $(marked); do
        [[ $(cat "/proc/$p/comm" 2>/dev/null) == "$1" ]] && echo "$p"
    done
}
kill_marked() { # what a failed case left behind must not disturb the next ones
    local left
    left=$(marked)
    [[ -n $left ]] && kill -KILL $left 2>/dev/null
    await 10 none_marked
}
trap 'kill_marked; rm -rf "$work"' EXIT
run() { # run ARGS...: dsmrun with a bound; sets out and rc
    out=$(timeout "$(secs 240)" env "$mark" "$dsmrun" -n "$np" --timeout "$(secs 120)" "$@" 2>&1)
    rc=$?
    show "$out"
}
start() { # start LOG ARGS...: dsmrun in the background (own process group); sets pid
    local log=$1; shift
    set -m
    env "$mark" "$dsmrun" -n "$np" --timeout "$(secs 120)" "$@" >"$log" 2>&1 &
    pid=$!
    set +m
}
await() { # await SECONDS COMMAND...: poll until the command succeeds; false on timeout
    local i n=$(($(secs "$1") * 10)); shift
    for ((i = 0; i < n; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}
count_ge() { [[ $($1 | wc -w) -ge $2 ]]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
none_marked() { [[ -z $(marked) ]]; }

# A rank that ignores SIGTERM, SIGINT and SIGHUP (its sleeps inherit that): only SIGKILL
# ends it. Not an MPI program: both launchers start it all the same.
cat >"$work/stubborn" <<'EOF'
#!/bin/bash
trap '' TERM INT HUP
while :; do sleep 0.2; done
EOF
chmod +x "$work/stubborn"

echo "== SIGTERM to dsmrun; the ranks ignore SIGTERM"
start "$work/term.log" "$work/stubborn"
check "the ranks started" await 60 count_ge "marked_named stubborn" "$np"
t0=$SECONDS
kill -TERM "$pid"
await 60 gone "$pid" || kill -KILL "$pid"
wait "$pid"
rc=$?
left=$(marked_named stubborn)
took=$((SECONDS - t0))
show "$(cat "$work/term.log")"
check "status 143 (got $rc)" test "$rc" == 143
check "no rank left when dsmrun returned${left:+ (pids: $left)}" test -z "$left"
check "dsmrun returned within 30 s (took ${took}s)" test "$took" -le 30
check "nothing dsmrun started left after 10 s" await 10 none_marked
kill_marked

echo "== SIGHUP to dsmrun; MPI ranks"
start "$work/hup.log" "$crashy" --sleep 100
check "the ranks started" await 60 count_ge "marked_named crashy" "$np"
kill -HUP "$pid"
await 60 gone "$pid" || kill -KILL "$pid"
wait "$pid"
rc=$?
left=$(marked_named crashy)
show "$(cat "$work/hup.log")"
check "status 129 (got $rc)" test "$rc" == 129
check "no rank left when dsmrun returned${left:+ (pids: $left)}" test -z "$left"
check "nothing dsmrun started left after 10 s" await 10 none_marked
kill_marked

echo "== kill -9 of dsmrun running heat, then the same command again"
# A run of about 20 s, so that dsmrun is killed early in it (after the first of 40
# checkpoints): the step count comes from a short run's speed (Open MPI's direct path
# is 50 times faster here than MPICH's). A job that ran on after the kill would have
# committed its later epochs, and the rerun would resume near the end.
ms=$(DSM_CKPT_DIR=$work/ref timeout "$(secs 240)" "$dsmrun" -n "$np" --timeout "$(secs 200)" "$heat" --nx 96 --ny 96 \
    --steps 300 2>/dev/null | sed -n 's|.* \([0-9.]*\) ms/step.*|\1|p')
steps=$(awk -v ms="${ms:-1}" 'BEGIN { s = int(20000 / (ms > 0.1 ? ms : 0.1)); print (s < 400 ? 400 : s > 60000 ? 60000 : s) }')
args=(--nx 96 --ny 96 --steps "$steps" --ckpt-every $((steps / 40)))
echo "heat: ${ms:-?} ms/step: ${args[*]}"
ref=$(DSM_CKPT_DIR=$work/ref timeout "$(secs 240)" "$dsmrun" -n "$np" --timeout "$(secs 200)" "$heat" "${args[@]}" 2>/dev/null |
    sed -n 's/.*checksum \([0-9a-f]*\)$/\1/p')
check "the fault-free reference run gave a checksum" test -n "$ref"
line=(--restarts 2 --ckpt-dir "$work/ck" "$heat" "${args[@]}" --expect "${ref:-0}")
start "$work/k9.log" "${line[@]}"
have_commit() { compgen -G "$work/ck/heat/*/COMMIT" >/dev/null; }
check "a checkpoint was committed" await 120 have_commit
check "heat was still running when dsmrun was killed" count_ge "marked_named heat" "$np"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
check "the job stopped after dsmrun was killed (within 10 s)" await 10 none_marked
check "dsmrun's watchdog stopped it" grep -q "dsmrun (pid $pid) is gone: stopping its job" "$work/k9.log"
left=$(marked)
[[ -n $left ]] && show "$(ps -o pid,cmd -p "$(echo $left | tr ' ' ,)")"
kill_marked
run "${line[@]}"
check "the rerun succeeded (status $rc)" test "$rc" == 0
at=$(sed -n 's/^heat: resumed at step \([0-9]*\) of.*/\1/p' <<<"$out" | head -1)
check "it resumed from a checkpoint (step ${at:-none})" test -n "$at"
check "... from early in the run: the job did not run on (step ${at:-none} of $steps)" \
    test "${at:-$steps}" -lt $((steps / 2))
check "the result equals the fault-free run's" grep -q "expected $ref: equal" <<<"$out"

echo "== the user's DSM_RESTART is kept on every attempt"
out=$(DSM_RESTART=required timeout "$(secs 240)" env "$mark" "$dsmrun" -n "$np" --timeout "$(secs 60)" \
    --restarts 2 --ckpt-dir "$work/ckq" "$crashy" 2>&1)
rc=$?
show "$out"
starts=$(grep -E '^crashy: attempt [0-9]+ on ' <<<"$out")
check "the killed first attempt was relaunched" test "$(grep -c . <<<"$starts")" -ge 2
check "every attempt saw DSM_RESTART=required" \
    test "$(grep -c 'DSM_RESTART=required$' <<<"$starts")" == "$(grep -c . <<<"$starts")"
check "dsmrun gave up (status $rc)" test "$rc" != 0
out=$(DSM_RESTART=atuo timeout "$(secs 240)" env "$mark" "$dsmrun" -n "$np" --timeout "$(secs 60)" \
    --restarts 2 --ckpt-dir "$work/ckt" "$heat" --nx 64 --ny 64 --steps 20 2>&1)
rc=$?
show "$out"
check "a DSM_RESTART typo fails every attempt (status $rc)" test "$rc" != 0
check "the library refused it" grep -q "heat: dsm_init failed.*DSM_RESTART" <<<"$out"
check "... on the relaunch too" grep -q "attempt 2 of 3 failed" <<<"$out"
check "dsmrun gave up after the same failure twice" grep -q "the same failure twice" <<<"$out"
exit $fail
