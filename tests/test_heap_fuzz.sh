#!/bin/bash
# The allocator core's fuzz target: one plain process (no mpiexec), a fixed seed plus
# one from DSM_TEST_SEED when set, so it is deterministic and takes about a second.
set -u
fuzz=${top_builddir:-.}/tests/fuzz_heap
fail=0
for seed in 12345 ${DSM_TEST_SEED:-}; do
    "$fuzz" --seed "$seed" --iters 300000 || fail=1
done
"$fuzz" --seed 7 --iters 20000 --size 200000 || fail=1 # a tiny heap: NOMEM paths
exit $fail
