#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Soak: the node-kill trials of tests/test_repl_node_kill.sh (kvstore --replicas 3 on 3
# simulated nodes, a random node killed with SIGKILL and its storage wiped at a random
# moment, every acknowledged put checked after the relaunch) as many times as asked,
# then the quorum case once. Needs root (simulated nodes).
#   tests/soak_repl_node_kill.sh [--trials N] [--first-seed S]   (from a build dir)
set -u
. "$(dirname "$0")/lib.sh"
soak test_repl_node_kill.sh REPLKILL_SEEDS 20 "$@"
