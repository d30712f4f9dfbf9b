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
