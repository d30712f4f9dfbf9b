/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The per-rank allocator that lives inside the window (heap.c). Its contract with the
 * rest of the runtime: all of its state is in the segment (header region
 * DSMI_HDR_HEAP_*, usage in DSMI_HDR_USAGE_*, block headers in the heap), as offsets.
 */
#ifndef DSMI_HEAP_H
#define DSMI_HEAP_H

#include "runtime.h"

/* Subsystem start/stop (runtime.c's table). Start is collective. */
DSMI_HIDDEN int dsmi_heap_start(void);
DSMI_HIDDEN int dsmi_heap_stop(void);
/* Bytes from the start of this rank's segment that can hold live data: a checkpoint
 * writes [0, extent) and may skip the rest. */
DSMI_HIDDEN uint64_t dsmi_heap_extent(void);
/* The segment's bytes were replaced (restart or recovery): validate the heap's
 * metadata and rebuild anything derived from it. DSM_ERR_CORRUPT when invalid. */
DSMI_HIDDEN int dsmi_heap_reload(void);

#endif /* DSMI_HEAP_H */
