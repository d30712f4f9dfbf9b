/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/* Prints docs/ENV.md from the DSM_* table (make env-doc), or with --man the ENVIRONMENT
 * section of mpidsm(7) (man/mangen.pl puts it in the page). */
#include "runtime.h"

#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--man") == 0) {
        dsmi_env_man(stdout);
    } else {
        dsmi_env_doc(stdout);
    }
    return 0;
}
