/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The heap subsystem. Until the allocator lands (issue 3) this holds only its contract
 * with the runtime: nothing to start, the whole segment counts as used.
 */
#include "heap.h"

#include "win.h"

int dsmi_heap_start(void)
{
    return DSM_OK;
}

int dsmi_heap_stop(void)
{
    return DSM_OK;
}

uint64_t dsmi_heap_extent(void)
{
    return dsmi_w.size;
}

int dsmi_heap_reload(void)
{
    return DSM_OK;
}
