#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Soak: the node-kill trials of tests/test_node_kill.sh (a random node of 2 simulated
# nodes killed with SIGKILL and its storage wiped, heat and kvstore alternating) as many
# times as asked, and print recovered/trials. Needs root (simulated nodes).
#   tests/soak_node_kill.sh [--trials N] [--first-seed S] [--cases]   (from a build dir)
# --cases also runs the fixed cases (during a write, both nodes lost, a node lost for
# good and the job shrunk).
set -u
. "$(dirname "$0")/lib.sh"
export NODEKILL_CASES=
args=()
for a in "$@"; do
    if [[ $a == --cases ]]; then NODEKILL_CASES="write both noshared grow shrink"; else args+=("$a"); fi
done
soak test_node_kill.sh NODEKILL_SEEDS 50 "${args[@]}"
