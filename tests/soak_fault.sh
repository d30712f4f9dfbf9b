#!/bin/bash
# Soak: run the kill -9 fault-injection trial of tests/test_fault.sh as many times as
# asked and print recovered/trials.
#   tests/soak_fault.sh [--trials N] [--first-seed S]     (from a build directory)
set -u
trials=50 first=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --trials) trials=$2; shift 2 ;;
        --first-seed) first=$2; shift 2 ;;
        *) echo "usage: soak_fault.sh [--trials N] [--first-seed S]" >&2; exit 2 ;;
    esac
done
[[ $trials =~ ^[1-9][0-9]*$ && $first =~ ^[0-9]+$ ]] || { echo "soak: bad numbers" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
export top_builddir=${top_builddir:-.} DSM_HEAP_SIZE=${DSM_HEAP_SIZE:-64M}
FAULT_SEEDS=$(seq "$first" $((first + trials - 1))) bash "$here/test_fault.sh"
