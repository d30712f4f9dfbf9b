/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Passive progress (design decision 7): a thread that polls MPI so that remote
 * operations on this rank's memory complete while the rank computes. See progress.c.
 */
#ifndef DSMI_PROGRESS_H
#define DSMI_PROGRESS_H

#include "runtime.h"

/* Before MPI_Init: the thread level mpidsm should ask for, given the one DSM_THREADS
 * wants: MPI_THREAD_MULTIPLE when DSM_PROGRESS is not off and the job may need the
 * thread (see progress.c), else want. */
DSMI_HIDDEN int dsmi_progress_thread_level(int want);
/* Subsystem: start the thread when the data path needs it (collective). */
DSMI_HIDDEN int dsmi_progress_start(void);
/* Subsystem: stop and join the thread; no-op when none runs. */
DSMI_HIDDEN int dsmi_progress_stop(void);
/* Whether the thread runs (DSM_VERBOSE banner, tests). */
DSMI_HIDDEN bool dsmi_progress_running(void);

#endif /* DSMI_PROGRESS_H */
