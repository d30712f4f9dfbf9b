/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Placement (placement.c): which rank an allocation goes to. The hash functions are
 * pure (no MPI, no state) so tests and benchmarks can study the distribution offline.
 */
#ifndef DSMI_PLACEMENT_H
#define DSMI_PLACEMENT_H

#include "runtime.h"

/* 64-bit hash of len bytes (MurmurHash64A's mixing; len 0 is fine). */
DSMI_HIDDEN uint64_t dsmi_place_key_hash(const void *key, size_t len);
/* Jump consistent hash of a 64-bit value onto 0..nranks-1 (nranks >= 1). */
DSMI_HIDDEN int dsmi_place_jump(uint64_t h, int nranks);
/* The rank of a key among nranks: dsmi_place_jump(dsmi_place_key_hash(key, len), n). */
DSMI_HIDDEN int dsmi_place_hash(const void *key, size_t len, int nranks);

#endif /* DSMI_PLACEMENT_H */
