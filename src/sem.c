/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * dsm_sem: a counting semaphore in one 64-bit word of user memory,
 * magic << 40 | value (value < 2^40), updated only with MPI_UINT64_T atomics.
 *
 * wait/trywait decrement with a compare-and-swap that never takes the value below
 * zero; post is one fetch-and-add (undone if it hit a word that is not a semaphore or
 * the maximum). A waiter on a zero semaphore polls the word with back-off: semaphores
 * have no owner to queue behind, and the waiters that find a unit first take it (no
 * FIFO promise). Visibility: post is a release (sync.c's fence before the add), a
 * successful wait an acquire (MPI_Win_sync after the CAS), so a post hands over the
 * poster's writes exactly as a mutex unlock does.
 */
#include <stdio.h>

#include "sync.h"

#define SEM_MAGIC UINT64_C(0x73656d) // "sem"
#define SEM_VALUE(w) ((w)&DSM_SEM_VALUE_MAX)
#define SEM_VALID(w) (((w) >> 40) == SEM_MAGIC)

static int sem_fail(int code, dsm_gptr_t s, const char *func, const char *why)
{
    char name[48];
    return dsmi_fail(code, func, "semaphore %s %s", dsm_gptr_str(s, name, sizeof name), why);
}

/* Take one unit: DSM_OK, DSM_ERR_BUSY (value 0, try_only), DSM_ERR_TIMEOUT. */
static int take(dsm_gptr_t s, bool try_only, const char *func)
{
    DSMI_CHECK_UP(func);
    uint64_t cur = 0, seen = 0;
    struct dsmi_wait w;
    dsmi_wait_begin(&w);
    int rc = dsmi_sync_load(s, true, &cur, func);
    while (rc == DSM_OK) {
        if (!SEM_VALID(cur)) {
            return sem_fail(DSM_ERR_STATE, s, func, "is not initialised (call dsm_sem_init)");
        }
        if (SEM_VALUE(cur) > 0) {
            if ((rc = dsmi_sync_cas(s, true, cur, cur - 1, &seen, func)) != DSM_OK) {
                return rc;
            }
            if (seen == cur) {
                return dsmi_sync_fence(false, func);
            }
            cur = seen; // someone else moved it: retry at once with the fresh value
            continue;
        }
        if (try_only) {
            return DSM_ERR_BUSY; // a result, not a failure: not logged
        }
        if (dsmi_wait_step(&w)) {
            return sem_fail(DSM_ERR_TIMEOUT, s, func,
                            "timed out (DSM_LOCK_TIMEOUT) waiting: "
                            "its value stayed 0 (no dsm_sem_post)");
        }
        rc = dsmi_sync_load(s, true, &cur, func);
    }
    return rc;
}

int dsm_sem_wait(dsm_gptr_t s)
{
    return take(s, false, "dsm_sem_wait");
}

int dsm_sem_trywait(dsm_gptr_t s)
{
    return take(s, true, "dsm_sem_trywait");
}

int dsm_sem_post(dsm_gptr_t s)
{
    const char *func = "dsm_sem_post";
    DSMI_CHECK_UP(func);
    uint64_t old = 0;
    int rc = dsmi_sync_fence(true, func);
    if (rc != DSM_OK || (rc = dsmi_sync_fop(s, true, MPI_SUM, 1, &old, func)) != DSM_OK) {
        return rc;
    }
    if (SEM_VALID(old) && SEM_VALUE(old) < DSM_SEM_VALUE_MAX) {
        return DSM_OK;
    }
    dsmi_sync_fop(s, true, MPI_SUM, UINT64_MAX, NULL, func); // undo: add -1 (mod 2^64)
    return SEM_VALID(old) ? sem_fail(DSM_ERR_RANGE, s, func, "is at DSM_SEM_VALUE_MAX")
                          : sem_fail(DSM_ERR_STATE, s, func,
                                     "is not initialised (call "
                                     "dsm_sem_init)");
}

int dsm_sem_getvalue(dsm_gptr_t s, uint64_t *value)
{
    const char *func = "dsm_sem_getvalue";
    DSMI_CHECK_UP(func);
    uint64_t cur = 0;
    if (value == NULL) {
        return dsmi_fail(DSM_ERR_ARG, func, "value is NULL");
    }
    int rc = dsmi_sync_load(s, true, &cur, func);
    if (rc != DSM_OK) {
        return rc;
    }
    if (!SEM_VALID(cur)) {
        return sem_fail(DSM_ERR_STATE, s, func, "is not initialised (call dsm_sem_init)");
    }
    *value = SEM_VALUE(cur);
    return DSM_OK;
}

int dsm_sem_init(dsm_gptr_t s, uint64_t value)
{
    const char *func = "dsm_sem_init";
    DSMI_CHECK_UP(func);
    if (value > DSM_SEM_VALUE_MAX) {
        return dsmi_fail(DSM_ERR_ARG, func, "value %llu exceeds DSM_SEM_VALUE_MAX",
                         (unsigned long long)value);
    }
    int rc = dsmi_sync_fence(true, func);
    return rc == DSM_OK ? dsmi_sync_store(s, true, SEM_MAGIC << 40 | value, func) : rc;
}

int dsm_sem_destroy(dsm_gptr_t s)
{
    const char *func = "dsm_sem_destroy";
    DSMI_CHECK_UP(func);
    uint64_t cur = 0, seen = 0;
    int rc = dsmi_sync_load(s, true, &cur, func);
    if (rc != DSM_OK) {
        return rc;
    }
    if (!SEM_VALID(cur)) {
        return sem_fail(DSM_ERR_STATE, s, func, "is not initialised (call dsm_sem_init)");
    }
    if ((rc = dsmi_sync_cas(s, true, cur, 0, &seen, func)) != DSM_OK) {
        return rc;
    }
    return seen == cur ? DSM_OK
                       : sem_fail(DSM_ERR_STATE, s, func,
                                  "changed while being "
                                  "destroyed: still in use");
}
