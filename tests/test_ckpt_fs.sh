#!/bin/bash
# The checkpoint tree from outside, through dsmrun and apps/heat:
#  - a symbolic link named like an epoch in the job directory: retention leaves its
#    target's files alone (and the link);
#  - a symbolic link as the job directory: refused with a message naming it, its
#    target keeps its mode and gets no epoch;
#  - a job name with characters outside [A-Za-z0-9._-]: dsmrun finds the epoch the
#    library wrote (dsm-ckpt-dir, the library's own function) and says so on relaunch;
#  - a job directory that exists but cannot be read: DSM_RESTART=auto stops with
#    DSM_ERR_IO instead of starting from step 0 (as an unprivileged user via setpriv
#    when run as root, since root reads anything).
set -u
. "$(dirname "$0")/lib.sh"
top=$(cd "${top_builddir:-.}" && pwd)
dsmrun=$top/mpi-launch/dsmrun
heat=$top/apps/heat
np=2
work=$(mktemp -d "${TMPDIR:-/tmp}/dsm-ckpt-fs.XXXXXX")
trap 'chmod -R u+rwx "$work" 2>/dev/null; rm -rf "$work"' EXIT
run() { # run ARGS...: dsmrun with a bound; sets out and rc
    out=$(timeout "$(secs 240)" "$dsmrun" -n "$np" --timeout "$(secs 120)" "$@" 2>&1)
    rc=$?
    show "$out"
}
heat_args=(--nx 64 --ny 64 --steps 20 --ckpt-every 5)

echo "== an epoch-numbered link in the job directory"
mkdir -p "$work/D/ck/heat" "$work/D/victim"
touch "$work/D/victim/"{a,b,c}
ln -s "$work/D/victim" "$work/D/ck/heat/00000001"
DSM_CKPT_KEEP=1 run --ckpt-dir "$work/D/ck" "$heat" "${heat_args[@]}"
check "heat ran (status $rc)" test "$rc" = 0
check "the link's target keeps its files" test -e "$work/D/victim/a" -a -e "$work/D/victim/c"
check "the link itself is left" test -L "$work/D/ck/heat/00000001"
check "the newest epoch committed" test -e "$work/D/ck/heat/00000005/COMMIT"

echo "== a link as the job directory"
mkdir -p "$work/E/ck" "$work/E/target"
chmod 755 "$work/E/target"
ln -s "$work/E/target" "$work/E/ck/heat"
run --ckpt-dir "$work/E/ck" "$heat" "${heat_args[@]}"
check "heat fails (status $rc)" test "$rc" != 0
check "the message names the link" grep -q "E/ck/heat is a symbolic link: refused" <<<"$out"
check "the target keeps mode 755" test "$(stat -c %a "$work/E/target")" = 755
check "the target got no epoch" test -z "$(ls -A "$work/E/target")"

echo "== a job name with '/' and ' ': dsmrun and the library agree"
export DSM_CKPT_JOB="exp/1 a"
DSM_CKPT_CRASH=commit DSM_CKPT_CRASH_EPOCH=2 run --restarts 1 --ckpt-dir "$work/F" \
    "$heat" "${heat_args[@]}"
check "the job succeeded on the relaunch (status $rc)" test "$rc" = 0
check "the epochs are in the encoded directory" compgen -G "$work/F/exp%2F1%20a/*/COMMIT"
check "dsmrun resumes from epoch 1" grep -q "epoch 00000001 (.*/F/exp%2F1%20a/00000001)" <<<"$out"
check "heat resumed at step 5" grep -q "heat: resumed at step 5 " <<<"$out"
check "dsm-ckpt-dir prints it" test "$("$top/mpi-launch/dsm-ckpt-dir" /x "a/b" prog)" = "/x/a%2Fb"
check "dsm-ckpt-dir names the program's job" \
    test "$("$top/mpi-launch/dsm-ckpt-dir" /x "" /some/where/heat)" = "/x/heat"
long=$(printf 'y%.0s' $(seq 300))
check "dsm-ckpt-dir refuses a name too long" \
    bash -c '! "$1" /x "$2" prog 2>/dev/null' _ "$top/mpi-launch/dsm-ckpt-dir" "$long"
unset DSM_CKPT_JOB

echo "== an unreadable job directory"
mkdir -p "$work/G/ck"
chmod 755 "$work" "$work/G" "$work/G/ck"
as=()
if [[ $(id -u) == 0 ]]; then
    if ! command -v setpriv >/dev/null || ! setpriv --reuid=65534 --regid=65534 \
        --clear-groups test -x "$heat"; then
        echo "SKIP  this part: setpriv cannot run $heat as an unprivileged user here"
        exit $fail
    fi
    as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    chown -R 65534:65534 "$work/G"
fi
"${as[@]}" "$dsmrun" -n "$np" --timeout "$(secs 120)" --ckpt-dir "$work/G/ck" "$heat" "${heat_args[@]}" \
    >/dev/null 2>&1
chmod 0 "$work/G/ck/heat"
# no checkpoints in this run: starting from step 0 would go unnoticed to the end
out=$(DSM_RESTART=auto HOME=$work "${as[@]}" timeout "$(secs 240)" "$dsmrun" -n "$np" --timeout "$(secs 120)" \
    --ckpt-dir "$work/G/ck" "$heat" --nx 64 --ny 64 --steps 20 2>&1)
rc=$?
show "$out"
check "heat fails (status $rc)" test "$rc" != 0
check "dsm_init says why, with DSM_ERR_IO" \
    grep -q "dsm_init: restart: cannot read the checkpoints.*Permission denied (DSM_ERR_IO)" \
    <<<"$out"
check "not from step 0" bash -c '! grep -q "^heat: 64x64" <<<"$1"' _ "$out"
exit $fail
