# SPDX-License-Identifier: BSD-3-Clause
# Shared by the shell tests; each sources it first: . "$(dirname "$0")/lib.sh"
#
# Time bounds: every bound a test sets is written for a quiet machine and stretched by
# secs() when the suite's TEST_TIMEOUT (300 s by default) is raised for a busy one, so
# a loaded CI machine gets more time and never less.
fail=0

# secs N: N seconds scaled by TEST_TIMEOUT/300, never below N
secs() {
    local t=${TEST_TIMEOUT:-300} s
    s=$(($1 * t / 300))
    ((s < $1)) && s=$1
    echo "$s"
}

# check DESCRIPTION COMMAND...: the command must succeed; a failure is counted in fail
check() {
    local what=$1
    shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi
}

# show TEXT: the text indented, as the output of what a check looked at
show() { sed 's/^/    | /' <<<"$1"; }

# soak SCRIPT SEEDVAR TRIALS "$@": the soak scripts' driver. Takes [--trials N]
# [--first-seed S] from the arguments and runs tests/SCRIPT with SEEDVAR holding N
# (default TRIALS) seeds from S (default 1); the script prints recovered/trials.
soak() {
    local script=$1 var=$2 trials=$3 first=1
    shift 3
    while [[ $# -gt 0 ]]; do
        case $1 in
            --trials | --first-seed)
                [[ $# -ge 2 ]] || { echo "${0##*/}: $1 needs a number" >&2; exit 2; }
                if [[ $1 == --trials ]]; then trials=$2; else first=$2; fi
                shift 2 ;;
            *) echo "usage: ${0##*/} [--trials N] [--first-seed S]" >&2; exit 2 ;;
        esac
    done
    [[ $trials =~ ^[1-9][0-9]*$ && $first =~ ^[0-9]+$ ]] || { echo "soak: bad numbers" >&2; exit 2; }
    export top_builddir=${top_builddir:-.}
    export "$var=$(seq "$first" $((first + trials - 1)))"
    bash "$(dirname "$0")/$script"
}

# cluster_up NAME K: the tests that use simulated nodes (mpi-launch/simcluster) start
# the same way: skip (77) with DSM_TEST_CLUSTER=0 or where namespaces cannot be made,
# else start K nodes in a cluster of their own and remove it (and $work, a fresh
# directory) on exit, also after a failure. Sets top, sc, apps, to and work.
cluster_up() {
    local name=$1 k=$2 reason
    top=$(cd "${top_builddir:-.}" && pwd)
    sc=$top/mpi-launch/simcluster
    apps=$top/apps
    to=${TEST_TIMEOUT:-300}
    [[ ${DSM_TEST_CLUSTER:-1} != 0 ]] || { echo "SKIP: DSM_TEST_CLUSTER=0"; exit 77; }
    reason=$("$sc" check) || { echo "SKIP: no simulated cluster here: $reason"; exit 77; }
    export SIMCLUSTER_DIR=${TMPDIR:-/tmp}/dsm-$name.$$
    work=$(mktemp -d "${TMPDIR:-/tmp}/dsm-$name.XXXXXX")
    trap 'timeout 60 "$sc" down >/dev/null 2>&1; rm -rf "$work"' EXIT
    trap 'exit 130' INT TERM
    "$sc" up "$k" >/dev/null || { echo "FAIL: simcluster up $k"; exit 1; }
}

# ack_check LOG...: the records kvstore --replicas --ack-log keeps (one file per rank:
# "S n time" at each start on n ranks, the same time on every rank; W key version before
# a put, A key version when it returned, R key version at a start, F key version at the
# end) must show no lost write: every start finds each key at its last acknowledged
# version (or the put in flight), and the end too. The starts' times order the attempts,
# whose owners of a key may differ (a restart on another rank count). Prints what is
# wrong and a summary; false when something is.
ack_check() {
    awk '
    $1 == "S" { cur[FILENAME] = $3; if (!($3 in seen)) { seen[$3] = 1; id[++na] = $3 }; next }
    { a = cur[FILENAME]; rec[a, ++n[a]] = $0 }
    END {
        for (i = 2; i <= na; i++) { # the attempts in time order (a few: insertion sort)
            t = id[i]
            for (j = i - 1; j >= 1 && id[j] + 0 > t + 0; j--) id[j + 1] = id[j]
            id[j + 1] = t
        }
        for (x = 1; x <= na; x++) {
            a = id[x]
            for (i = 1; i <= n[a]; i++) {
                split(rec[a, i], f, " ")
                k = f[2]; v = f[3]; want = (k in last) ? last[k] : 0
                if (f[1] == "W") { intent[k] = v; pending[k] = 1 }
                else if (f[1] == "A") { last[k] = v; pending[k] = 0; acked++ }
                else if (f[1] == "R") {
                    if (v != want && !(pending[k] && v == intent[k])) {
                        printf "attempt %d: key %s: a start found version %s, last acknowledged %s\n", x, k, v, want
                        bad++
                    }
                    last[k] = v; pending[k] = 0; starts++
                } else if (f[1] == "F") {
                    if (v != want) { printf "attempt %d: key %s: final version %s, last acknowledged %s\n", x, k, v, want; bad++ }
                    finals++
                }
            }
        }
        printf "    %d acknowledged puts, %d key starts, %d final keys checked in %d attempts\n", acked, starts, finals, na
        exit bad > 0
    }' "$@"
}
