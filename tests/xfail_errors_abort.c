/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * With DSM_ERRORS=abort a failing call prints its message and aborts the job, so this
 * program must end with a non-zero status (it is listed in XFAIL_TESTS). Should the
 * call return instead, the program exits 0 and the harness reports an unexpected pass.
 */
#include <stdio.h>
#include <stdlib.h>

#include "mpidsm.h"

int main(int argc, char **argv)
{
    setenv("DSM_ERRORS", "abort", 1);
    if (dsm_init(&argc, &argv) != DSM_OK) {
        return 0; // not the failure we are looking for
    }
    char buf[8] = {0};
    dsm_put(DSM_GPTR_NULL, buf, sizeof buf); // DSM_ERR_ARG: must abort here
    fprintf(stderr, "xfail_errors_abort: dsm_put returned instead of aborting\n");
    dsm_finalize();
    return 0;
}
