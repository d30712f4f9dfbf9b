/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/* Prints docs/ENV.md from the DSM_* table (make env-doc). */
#include "runtime.h"

int main(void)
{
    dsmi_env_doc(stdout);
    return 0;
}
