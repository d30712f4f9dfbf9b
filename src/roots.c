/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Named roots: a table of (name, global pointer) in rank 0's header region
 * DSMI_HDR_ROOTS_*, so it is part of rank 0's checkpoint image and a restarted program
 * finds its data structures by name.
 *
 * Layout of the region: [0, 8) a lock word (0 free, else holder rank + 1), [8, 64)
 * spare, then ROOT_SLOTS entries {char name[32]; uint64_t gptr}; an empty name is a free
 * slot. Any rank reads and writes the table with RMA under the lock, taken with
 * compare-and-swap and released with an atomic replace; every RMA call here completes
 * at the target on return (rma.h), so the table writes are visible before the release.
 */
#include "ckpt.h"

#include <string.h>
#include <time.h>

#include "rma.h"
#include "win.h"

#define ROOT_TABLE_OFF 64u
#define ROOT_SLOTS ((DSMI_HDR_ROOTS_SIZE - ROOT_TABLE_OFF) / sizeof(struct root))
#define LOCK_WAIT_NS ((uint64_t)30 * 1000000000u)

struct root {
    char name[DSMI_CKPT_NAME];
    uint64_t g;
};
_Static_assert(sizeof(struct root) == 40, "root entries are 40 bytes");

static int lock_table(const char *fn)
{
    int64_t want = dsmi_rt.rank + 1, free_ = 0, old = -1;
    uint64_t start = dsmi_now_ns();
    dsm_gptr_t g = dsmi_gptr(0, DSMI_HDR_ROOTS_OFF);
    for (;;) {
        int rc = dsmi_rma_cas(g, &want, &free_, &old, MPI_INT64_T, false, fn);
        if (rc != DSM_OK || old == 0) {
            return rc;
        }
        if (dsmi_now_ns() - start > LOCK_WAIT_NS) {
            return dsmi_fail(DSM_ERR_TIMEOUT, fn, "the root table stayed locked by rank %lld",
                             (long long)old - 1);
        }
        // Let the holder run: ranks may outnumber cores.
        nanosleep(&(struct timespec){0, 20000}, NULL);
    }
}

static int unlock_table(const char *fn)
{
    int64_t zero = 0;
    return dsmi_rma_fop(dsmi_gptr(0, DSMI_HDR_ROOTS_OFF), &zero, NULL, MPI_INT64_T, MPI_REPLACE,
                        false, fn);
}

static int read_table(struct root *t, const char *fn)
{
    return dsmi_rma_get(t, dsmi_gptr(0, DSMI_HDR_ROOTS_OFF + ROOT_TABLE_OFF),
                        ROOT_SLOTS * sizeof *t, false, fn);
}

static int check(const char *name, const char *fn)
{
    DSMI_CHECK_UP(fn);
    if (name == NULL || name[0] == '\0' || strlen(name) >= DSMI_CKPT_NAME) {
        return dsmi_fail(DSM_ERR_ARG, fn, "a root name must be 1..%d characters",
                         DSMI_CKPT_NAME - 1);
    }
    return DSM_OK;
}

/* Under the lock: the slot holding name, else a free one (-1 when full). */
static int find_slot(const struct root *t, const char *name, bool *found)
{
    int free_slot = -1;
    for (int i = 0; i < (int)ROOT_SLOTS; i++) {
        if (strncmp(t[i].name, name, DSMI_CKPT_NAME) == 0) {
            *found = true;
            return i;
        }
        if (t[i].name[0] == '\0' && free_slot < 0) {
            free_slot = i;
        }
    }
    *found = false;
    return free_slot;
}

static int update(const char *name, dsm_gptr_t g, const char *fn)
{
    struct root t[ROOT_SLOTS]; // 16 KiB on the stack keeps it thread safe
    bool found = false;
    int rc = read_table(t, fn);
    if (rc != DSM_OK) {
        return rc;
    }
    int i = find_slot(t, name, &found);
    if (g.bits == 0 && !found) {
        return dsmi_fail(DSM_ERR_NOTFOUND, fn, "no root called '%s' to remove", name);
    }
    if (i < 0) {
        return dsmi_fail(DSM_ERR_NOMEM, fn, "the root table is full (%zu names)",
                         (size_t)ROOT_SLOTS);
    }
    struct root e = {.g = g.bits};
    if (g.bits != 0) {
        snprintf(e.name, sizeof e.name, "%s", name); // null removes: the slot is freed
    }
    return dsmi_rma_put(dsmi_gptr(0, DSMI_HDR_ROOTS_OFF + ROOT_TABLE_OFF + i * sizeof e), &e,
                        sizeof e, false, fn);
}

int dsm_root_set(const char *name, dsm_gptr_t g)
{
    static const char *const fn = "dsm_root_set";
    int rc = check(name, fn), r = 0;
    MPI_Aint disp;
    if (rc != DSM_OK) {
        return rc;
    }
    if (g.bits != 0 && (rc = dsmi_translate(g, 0, true, fn, &r, &disp)) != DSM_OK) {
        return rc;
    }
    if ((rc = lock_table(fn)) != DSM_OK) {
        return rc;
    }
    rc = update(name, g, fn);
    int urc = unlock_table(fn);
    return rc != DSM_OK ? rc : urc;
}

int dsmi_root_find(const char *name, dsm_gptr_t *out, const char *fn)
{
    struct root t[ROOT_SLOTS]; // 16 KiB on the stack keeps it thread safe
    int rc = lock_table(fn);
    if (rc != DSM_OK) {
        return rc;
    }
    bool found = false;
    rc = read_table(t, fn);
    int i = rc == DSM_OK ? find_slot(t, name, &found) : -1;
    int urc = unlock_table(fn);
    if (rc != DSM_OK || urc != DSM_OK) {
        return rc != DSM_OK ? rc : urc;
    }
    if (!found) {
        return DSM_ERR_NOTFOUND;
    }
    out->bits = t[i].g;
    return DSM_OK;
}

int dsm_root_get(const char *name, dsm_gptr_t *out)
{
    static const char *const fn = "dsm_root_get";
    int rc = check(name, fn);
    if (rc == DSM_OK && out == NULL) {
        rc = dsmi_fail(DSM_ERR_ARG, fn, "out is NULL");
    }
    if (rc != DSM_OK) {
        return rc;
    }
    rc = dsmi_root_find(name, out, fn);
    if (rc == DSM_ERR_NOTFOUND) {
        return dsmi_fail(DSM_ERR_NOTFOUND, fn, "no root called '%s'", name);
    }
    return rc;
}
