/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Replicated objects (src/repl.c): fixed-size objects kept as R copies in node-local,
 * file-backed stores that outlive the processes, written under a per-object version
 * lock and rebuilt from a majority of copies after a relaunch.
 */
#ifndef DSMI_REPL_H
#define DSMI_REPL_H

#include "runtime.h"

/* Collective: open (or, without DSM_RESTART, empty) this rank's store, agree on the
 * object table and rebuild every object from its copies. DSM_OK when DSM_REPL_SIZE is 0. */
DSMI_HIDDEN int dsmi_repl_start(void);
DSMI_HIDDEN int dsmi_repl_stop(void);

/* Collective, from dsm_checkpoint() before the images are written: put every live
 * object's current version and bytes, with the object table, into a block of rank 0's
 * heap named by the root "dsm:repl-image" (freed when no object lives), so the epoch
 * holds them. DSM_OK when replicated objects are off. */
DSMI_HIDDEN int dsmi_repl_image(const char *fn);

/* For the tests: where copy c (0 = the first holder) of o keeps the slot of the current
 * version: the holder's rank, and when it is the caller, the slot's address in its
 * mapped store (the test damages it there). DSM_ERR_ARG for a bad o or c. */
DSMI_HIDDEN int dsmi_repl_copy_slot(dsm_repl_t o, int c, int *rank, void **addr);

/* For the tests: this rank's store directory, <root>/<job>.<tag>/repl ("" when off). */
DSMI_HIDDEN const char *dsmi_repl_dir(void);

#endif /* DSMI_REPL_H */
