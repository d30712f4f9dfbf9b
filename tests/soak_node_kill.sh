#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Soak: the node-kill trials of tests/test_node_kill.sh (a random node of 2 simulated
# nodes killed with SIGKILL and its storage wiped, heat and kvstore alternating) as many
# times as asked, and print recovered/trials. Needs root (simulated nodes).
#   tests/soak_node_kill.sh [--trials N] [--first-seed S] [--cases]   (from a build dir)
# --cases also runs the fixed cases (during a write, both nodes lost).
set -u
trials=50 first=1 cases=
while [[ $# -gt 0 ]]; do
    case $1 in
        --trials) trials=$2; shift 2 ;;
        --first-seed) first=$2; shift 2 ;;
        --cases) cases="write both noshared"; shift ;;
        *) echo "usage: soak_node_kill.sh [--trials N] [--first-seed S] [--cases]" >&2; exit 2 ;;
    esac
done
[[ $trials =~ ^[1-9][0-9]*$ && $first =~ ^[0-9]+$ ]] || { echo "soak: bad numbers" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
export top_builddir=${top_builddir:-.}
NODEKILL_SEEDS=$(seq "$first" $((first + trials - 1))) NODEKILL_CASES=$cases \
    bash "$here/test_node_kill.sh"
