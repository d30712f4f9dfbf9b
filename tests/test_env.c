/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * env: the strict parsers value by value, and docs/ENV.md equal to what the table in
 * src/env_defs.h generates (so the documentation cannot drift from the code).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "runtime.h"

static void test_env_bool(void)
{
    const char *yes[] = {"1", "true", "TRUE", "yes", "Yes", "on", "ON"};
    const char *no[] = {"0", "false", "no", "off", "OFF"};
    const char *bad[] = {"", "2", "y", "tru", " 1", "1 ", "enable"};
    bool v;
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        v = false;
        CU_ASSERT(dsmi_parse_bool(yes[i], &v) == DSM_OK && v);
    }
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        v = true;
        CU_ASSERT(dsmi_parse_bool(no[i], &v) == DSM_OK && !v);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CU_ASSERT_EQUAL(dsmi_parse_bool(bad[i], &v), DSM_ERR_ENV);
    }
}

static void test_env_size(void)
{
    struct {
        const char *s;
        size_t v;
    } good[] = {
        {"0", 0},
        {"4096", 4096},
        {"1K", 1024},
        {"1k", 1024},
        {"2M", 2u << 20},
        {"3G", (size_t)3 << 30},
        {"1T", (size_t)1 << 40},
        {"5MB", 5u << 20},
        {"5MiB", 5u << 20},
        {"16m", 16u << 20},
        {"16mb", 16u << 20},
        {"16mib", 16u << 20},
        {"2kB", 2048},
        {"1GiB", (size_t)1 << 30},
    };
    const char *bad[] = {"",
                         "-1",
                         "+1",
                         " 1",
                         "1 ",
                         "1X",
                         "1KK",
                         "M",
                         "1.5M",
                         "99999999999999999999",
                         "20000000000000T",
                         "0x10",
                         "16B",
                         "16Mi",
                         "16MBB",
                         "16iB",
                         "16 MB",
                         "16M B"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        size_t v = 1;
        CU_ASSERT_EQUAL(dsmi_parse_size(good[i].s, &v), DSM_OK);
        CU_ASSERT_EQUAL(v, good[i].v);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t v = 7;
        CU_ASSERT_EQUAL(dsmi_parse_size(bad[i], &v), DSM_ERR_ENV);
        CU_ASSERT_EQUAL(v, 7);
    }
}

static void test_env_long_choice(void)
{
    long l = 0;
    CU_ASSERT(dsmi_parse_long("-42", &l) == DSM_OK && l == -42);
    CU_ASSERT_EQUAL(dsmi_parse_long("4x", &l), DSM_ERR_ENV);
    CU_ASSERT_EQUAL(dsmi_parse_long("", &l), DSM_ERR_ENV);
    CU_ASSERT_EQUAL(dsmi_parse_long("99999999999999999999999", &l), DSM_ERR_ENV);
    int c = -1;
    CU_ASSERT(dsmi_parse_choice("b", "a|b|c", &c) == DSM_OK && c == 1);
    CU_ASSERT(dsmi_parse_choice("C", "a|b|c", &c) == DSM_OK && c == 2);
    CU_ASSERT_EQUAL(dsmi_parse_choice("", "a|b|c", &c), DSM_ERR_ENV);
    CU_ASSERT_EQUAL(dsmi_parse_choice("ab", "a|b|c", &c), DSM_ERR_ENV);
    CU_ASSERT_EQUAL(dsmi_parse_choice("a|b", "a|b|c", &c), DSM_ERR_ENV);
}

/* docs/ENV.md must be exactly what the table generates (make env-doc rewrites it). */
static void test_env_doc_matches_table(void)
{
    if (harness_rank() != 0) {
        return;
    }
    const char *srcdir = getenv("srcdir");
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/ENV.md", srcdir ? srcdir : ".");
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL(f);
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return;
    }
    static char have[65536], want[65536];
    size_t nh = fread(have, 1, sizeof have - 1, f);
    fclose(f);
    have[nh] = '\0';
    FILE *m = fmemopen(want, sizeof want - 1, "w");
    dsmi_env_doc(m);
    fclose(m);
    CU_ASSERT_STRING_EQUAL(have, want);
    if (strcmp(have, want) != 0) {
        fprintf(stderr, "docs/ENV.md is stale: run 'make env-doc'\n");
    }
}

/* Every size spelling docs/ENV.md quotes does what it says: the backquoted values of
 * the sentence "Sizes are ... `16M`, ... all mean 16 MiB ...; `16B`, ... are refused." */
static void test_env_doc_size_spellings(void)
{
    static char doc[65536];
    FILE *m = fmemopen(doc, sizeof doc - 1, "w");
    dsmi_env_doc(m);
    fclose(m);
    char *start = strstr(doc, "Sizes are"), *mean = strstr(doc, "all mean 16 MiB");
    char *refused = mean ? strstr(mean, "are refused") : NULL;
    CU_ASSERT_FATAL(start != NULL && mean != NULL && refused != NULL && start < mean);
    int ok = 0, bad = 0;
    for (char *p = strchr(start, '`'); p != NULL && p < refused; p = strchr(p, '`')) {
        char *q = strchr(p + 1, '`');
        CU_ASSERT_FATAL(q != NULL);
        char val[32] = "";
        snprintf(val, sizeof val, "%.*s", (int)(q - p - 1), p + 1);
        size_t v = 7;
        if (p < mean) {
            CU_ASSERT_EQUAL(dsmi_parse_size(val, &v), DSM_OK);
            CU_ASSERT_EQUAL(v, (size_t)16 << 20);
            ok++;
        } else {
            CU_ASSERT_EQUAL(dsmi_parse_size(val, &v), DSM_ERR_ENV);
            bad++;
        }
        p = q + 1;
    }
    CU_ASSERT(ok >= 5 && bad >= 5); // 16M, 16m, 16MB, 16mb, 16MiB; and refusals
}

static CU_TestInfo cases[] = {
    {"bool", test_env_bool},
    {"size", test_env_size},
    {"long_choice", test_env_long_choice},
    {"doc_matches_table", test_env_doc_matches_table},
    {"doc_size_spellings", test_env_doc_size_spellings},
    CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
    struct harness_suite s = {"env", 1, false, cases};
    return harness_main(argc, argv, &s);
}
