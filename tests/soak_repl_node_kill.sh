#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Soak: the node-kill trials of tests/test_repl_node_kill.sh (kvstore --replicas 3 on 3
# simulated nodes, a random node killed with SIGKILL and its storage wiped at a random
# moment, every acknowledged put checked after the relaunch) as many times as asked,
# then the quorum case once. Needs root (simulated nodes).
#   tests/soak_repl_node_kill.sh [--trials N] [--first-seed S]   (from a build dir)
set -u
trials=20 first=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --trials) trials=$2; shift 2 ;;
        --first-seed) first=$2; shift 2 ;;
        *) echo "usage: soak_repl_node_kill.sh [--trials N] [--first-seed S]" >&2; exit 2 ;;
    esac
done
[[ $trials =~ ^[1-9][0-9]*$ && $first =~ ^[0-9]+$ ]] || { echo "soak: bad numbers" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
export top_builddir=${top_builddir:-.}
REPLKILL_SEEDS=$(seq "$first" $((first + trials - 1))) bash "$here/test_repl_node_kill.sh"
