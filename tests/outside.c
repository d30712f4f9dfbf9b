/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * An outside program: built only with `pkg-config --cflags --libs mpidsm` against an
 * installed mpidsm (mpi-launch/quickstart check). It inits, puts, gets, fetch-adds and
 * compare-and-swaps a global pointer, and exits 0 only when every result is right.
 */
#include <mpidsm.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (dsm_init(&argc, &argv) != DSM_OK) {
        fprintf(stderr, "outside: dsm_init: %s\n", dsm_last_error());
        return 1;
    }
    int me = dsm_rank(), n = dsm_nranks(), ok = 1;
    dsm_gptr_t block = DSM_GPTR_NULL, mine, right, counter, slot;
    ok &= dsm_alloc_all(256, &block) == DSM_OK; // the same offset on every rank
    uint64_t off = dsm_gptr_offset(block);
    ok &= dsm_gptr_make(me, off, &mine) == DSM_OK;
    ok &= dsm_gptr_make((me + 1) % n, off, &right) == DSM_OK;
    ok &= dsm_gptr_make(0, off + 64, &counter) == DSM_OK;
    ok &= dsm_gptr_make(0, off + 128, &slot) == DSM_OK;
    int64_t v = 1000 + me, got = 0, old = 0;
    ok &= dsm_put(right, &v, sizeof v) == DSM_OK;
    if (me == 0) {
        ok &= dsm_atomic_store_i64(counter, 0) == DSM_OK;
        ok &= dsm_atomic_store_gptr(slot, DSM_GPTR_NULL) == DSM_OK;
    }
    ok &= dsm_barrier() == DSM_OK;
    ok &= dsm_get(&got, mine, sizeof got) == DSM_OK && got == 1000 + (me + n - 1) % n;
    ok &= dsm_atomic_fetch_add_i64(counter, 1, &old) == DSM_OK;
    dsm_gptr_t prev;
    ok &= dsm_atomic_cas_gptr(slot, DSM_GPTR_NULL, mine, &prev) == DSM_OK;
    int won = dsm_gptr_is_null(prev), winners = 0;
    ok &= dsm_barrier() == DSM_OK;
    MPI_Allreduce(&won, &winners, 1, MPI_INT, MPI_SUM, dsm_comm());
    ok &= winners == 1;
    ok &= dsm_atomic_load_i64(counter, &got) == DSM_OK && got == n;
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, dsm_comm());
    if (me == 0) {
        printf("outside: %s\n", all ? "put, get, fetch-add and CAS work" : "FAILED");
    }
    dsm_free_all(block);
    dsm_finalize();
    return all ? 0 : 1;
}
