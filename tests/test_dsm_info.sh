#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# dsm-info (issue 19): its --json goes through a JSON parser (jq) and says what the
# build and the environment say: the version configure set, hwloc as configured, every
# DSM_* variable of src/env_defs.h in order with its default, a user's value, a
# malformed value (not started, exit 1, still JSON), the data path (direct on one node,
# MPI calls with DSM_DIRECT=0), the ranks asked for, the thread level MPI provides, the
# MPI's osc components (Open MPI) or device (MPICH). dsmrun --info runs it.
top=${top_builddir:-.}
src=${srcdir:-.}
info=$top/mpi-launch/dsm-info
command -v jq >/dev/null || { echo "SKIP: jq not installed (Debian: jq)"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/dsm-info.XXXXXX")
trap 'rm -rf "$work"' EXIT
bad=0
fail() { echo "FAIL: $*"; bad=1; }
# make check sets DSM_HEAP_SIZE and others: each run starts from no DSM_* setting
unset_dsm=()
for v in $(env | sed -n 's/^\(DSM_[A-Z_0-9]*\)=.*/\1/p'); do unset_dsm+=(-u "$v"); done
# j NAME [VAR=value...]: run dsm-info --json with only those settings, keep its status,
# parse it
j() {
    local name=$1; shift
    env "${unset_dsm[@]}" "$@" timeout 120 "$info" --json >"$work/$name.json" 2>"$work/$name.err"
    echo $? >"$work/$name.rc"
    jq -e . "$work/$name.json" >/dev/null || { fail "$name: not JSON"; cat "$work/$name.json"; }
}
q() { jq -r "$2" "$work/$1.json"; }          # q NAME FILTER
t() { [[ $(q "$1" "$2") == true ]] || fail "$1: $2 (got: $(jq -c . "$work/$1.json" | head -c 600))"; }

j plain
t plain '.started and .error == null'
[[ $(cat "$work/plain.rc") == 0 ]] || fail "plain: exit $(cat "$work/plain.rc")"
version=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$top/config.h")
t plain ".version == \"$version\""
hw=$(sed -n 's/^#define DSM_TEST_CONFIGURED_HWLOC \([01]\).*/\1/p' "$top/tests/configured.h")
t plain ".hwloc == $([[ $hw == 1 ]] && echo true || echo false)"
# every variable of the table, in its order, with its default
sed -n 's/^DSM_ENV(\([A-Z_0-9]*\), *[A-Z]*, *"\([^"]*\)".*/DSM_\1=\2/p' "$src/src/env_defs.h" >"$work/table"
q plain '.settings[] | "\(.name)=\(.default)"' >"$work/listed"
[[ -s $work/table ]] && cmp -s "$work/table" "$work/listed" ||
    fail "settings differ from env_defs.h: $(diff "$work/table" "$work/listed" | head -5)"
t plain '[.settings[] | .valid and (.set | not) and .value != null] | all'
t plain '.job.data_path == "direct" and .job.nodes == 1 and .job.ranks == .topology.cores'
t plain '.topology.cores >= 1 and .topology.node_memory > 0'
t plain '.mpi.thread_level_asked == "single"'
if [[ $(q plain .mpi.library) == "Open MPI"* ]]; then
    t plain '.mpi.osc_components | split(",") | index("sm") != null'
else
    t plain '.mpi.device != null'
fi

j user DSM_HEAP_SIZE=32M DSM_DIRECT=0 DSM_THREADS=multiple
t user '.settings[] | select(.name == "DSM_HEAP_SIZE") | .value == "33554432" and .raw == "32M" and .set'
t user '.job.segment_size == 33554432 and .job.data_path == "mpi"'
t user '.mpi.thread_level_asked == "multiple" and .mpi.thread_level_provided == "multiple"'

j bad DSM_HEAP_SIZE=12Q
[[ $(cat "$work/bad.rc") == 1 ]] || fail "bad: exit $(cat "$work/bad.rc"), not 1"
t bad '(.started | not) and (.error | test("DSM_HEAP_SIZE=.12Q. is not a valid size"))'
t bad '[.settings[] | select(.valid | not) | .name] == ["DSM_HEAP_SIZE"]'

# --ranks, and dsmrun --info -n passing it on
env "${unset_dsm[@]}" timeout 120 "$info" --ranks 3 >"$work/text" 2>&1 || fail "dsm-info --ranks 3: status $?"
grep -q "^a job of 3 ranks on this machine: data path direct" "$work/text" ||
    fail "text: $(cat "$work/text")"
while read -r v; do
    grep -q "^  ${v%%=*} " "$work/text" || fail "text lacks ${v%%=*}"
done <"$work/table"
"$info" --ranks 0 >/dev/null 2>&1; [[ $? == 2 ]] || fail "--ranks 0 not refused with status 2"
timeout 120 "$top/mpi-launch/dsmrun" --info -n 3 >"$work/dsmrun" 2>&1
grep -q "^mpidsm $version$" "$work/dsmrun" && grep -q "^a job of 3 ranks" "$work/dsmrun" ||
    fail "dsmrun --info -n 3 does not show dsm-info: $(head -20 "$work/dsmrun")"
[[ $bad == 0 ]] && echo "ok   dsm-info"
exit $bad
