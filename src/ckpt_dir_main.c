/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * dsm-ckpt-dir: print the directory that holds a checkpoint job's epochs.
 *
 *   dsm-ckpt-dir DSM_CKPT_DIR DSM_CKPT_JOB PROGRAM
 *
 * The job is DSM_CKPT_JOB when not empty, else PROGRAM's basename, exactly as dsm_init
 * decides: both call dsmi_ckpt_job_dir, so dsmrun (which runs this) and the library
 * never look in different places. Exit status 0 with the directory on stdout; 2 with a
 * message on stderr when the name is refused (the library would refuse it with
 * DSM_ERR_ENV) or the arguments are wrong. No MPI: it only computes a name.
 */
#include <limits.h>
#include <stdio.h>

#include "ckpt.h"

int main(int argc, char **argv)
{
    if (argc != 4 || argv[1][0] == '\0') {
        fprintf(stderr, "usage: dsm-ckpt-dir DSM_CKPT_DIR DSM_CKPT_JOB PROGRAM\n"
                        "  prints the checkpoint directory of the job (DSM_CKPT_JOB may be "
                        "empty: PROGRAM's basename is the job)\n");
        return 2;
    }
    char name[DSMI_CKPT_JOB_MAX], dir[DSMI_CKPT_DIR_MAX], why[DSMI_WHY];
    if (dsmi_ckpt_job_dir(argv[1], argv[2], argv[3], name, dir, why) != DSM_OK) {
        fprintf(stderr, "dsm-ckpt-dir: %s\n", why);
        return 2;
    }
    printf("%s\n", dir);
    return 0;
}
