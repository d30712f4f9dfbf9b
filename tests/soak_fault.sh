#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Soak: run the kill -9 fault-injection trial of tests/test_fault.sh as many times as
# asked and print recovered/trials.
#   tests/soak_fault.sh [--trials N] [--first-seed S]     (from a build directory)
set -u
. "$(dirname "$0")/lib.sh"
export DSM_HEAP_SIZE=${DSM_HEAP_SIZE:-64M}
soak test_fault.sh FAULT_SEEDS 50 "$@"
