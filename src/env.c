/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * The DSM_* settings: strict parsing of the table in env_defs.h, the cross-rank
 * agreement check, the DSM_VERBOSE dump, the docs/ENV.md and mpidsm(7) generators and
 * the listing dsm-info prints.
 * getenv of DSM_* settings happens here and nowhere else in src/.
 */
#include "runtime.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum env_type { T_BOOL, T_LONG, T_SIZE, T_CHOICE, T_STRING };

struct env_row {
    const char *name; // without the DSM_ prefix
    enum env_type type;
    const char *def;
    bool agree;
    const char *choices;
    const char *desc;
    size_t field; // offset of the value in struct dsmi_settings
};

static const struct env_row rows[] = {
#define DSM_ENV(n, t, d, a, c, s) {#n, T_##t, d, a, c, s, offsetof(struct dsmi_settings, n)},
#include "env_defs.h"
#undef DSM_ENV
};
#define NROWS (sizeof rows / sizeof rows[0])

static const char *const type_names[] = {"bool", "integer", "size", "choice", "string"};

/* The type as docs/ENV.md and error messages name it: "integer in 0..", "choice (one
 * of a|b)". */
static void type_str(const struct env_row *r, char *buf, size_t len)
{
    if (r->type == T_CHOICE) {
        snprintf(buf, len, "choice (one of %s)", r->choices);
    } else if (r->type == T_LONG) {
        snprintf(buf, len, "integer in %s", r->choices[0] ? r->choices : "0..");
    } else {
        snprintf(buf, len, "%s", type_names[r->type]);
    }
}

/* Size spellings docs/ENV.md quotes; tests/test_env parses each from the document. */
static const char *const size_ok[] = {"16M", "16m", "16MB", "16mb", "16MiB", "16mib"};
static const char *const size_refused[] = {"16B", "16 M", "1.5M", "-16M", "16MBB", "0x10"};

int dsmi_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return DSM_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return DSM_OK;
        }
    }
    return DSM_ERR_ENV;
}

int dsmi_parse_long(const char *s, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || isspace((unsigned char)*s)) {
        return DSM_ERR_ENV;
    }
    *out = v;
    return DSM_OK;
}

/* Digits, then an optional K/M/G/T (x1024 each, optional trailing B/iB), any case:
 * 16M, 16m, 16MB, 16mb, 16MiB all mean 16 MiB, as Slurm and Open MPI read them. The
 * spellings docs/ENV.md shows (size_ok, size_refused) are checked against this parser
 * by tests/test_env. */
int dsmi_parse_size(const char *s, size_t *out)
{
    char *end = NULL;
    if (!isdigit((unsigned char)*s)) {
        return DSM_ERR_ENV; // rejects signs, spaces and empty strings
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0) {
        return DSM_ERR_ENV;
    }
    unsigned shift = 0;
    const char *units = "KMGT";
    const char *u = *end ? strchr(units, toupper((unsigned char)*end)) : NULL;
    if (*end) {
        if (u == NULL) {
            return DSM_ERR_ENV;
        }
        shift = 10 * (unsigned)(u - units + 1);
        end++;
        if (strcasecmp(end, "") != 0 && strcasecmp(end, "B") != 0 && strcasecmp(end, "iB") != 0) {
            return DSM_ERR_ENV;
        }
    }
    if (shift && v > (SIZE_MAX >> shift)) {
        return DSM_ERR_ENV; // overflow
    }
    *out = (size_t)(v << shift);
    return DSM_OK;
}

/* A LONG row's range "lo..hi" (either end may be empty; "" = "0.."): is v inside? */
static bool long_in_range(long v, const char *range)
{
    const char *dots = strstr(range, "..");
    long lo = 0, hi = LONG_MAX;
    if (dots != NULL && dots != range) {
        lo = strtol(range, NULL, 10);
    }
    if (dots != NULL && dots[2] != '\0') {
        hi = strtol(dots + 2, NULL, 10);
    }
    return v >= lo && v <= hi;
}

int dsmi_parse_choice(const char *s, const char *choices, int *out)
{
    size_t len = strlen(s);
    int idx = 0;
    for (const char *p = choices; *p; idx++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && len > 0 && strncasecmp(s, p, n) == 0) {
            *out = idx;
            return DSM_OK;
        }
        p += n + (bar ? 1 : 0);
    }
    return DSM_ERR_ENV;
}

static int parse_one(const struct env_row *r, const char *val, struct dsmi_settings *out)
{
    char *field = (char *)out + r->field;
    switch (r->type) {
    case T_BOOL:
        return dsmi_parse_bool(val, (bool *)field);
    case T_LONG: {
        long v = 0;
        int rc = dsmi_parse_long(val, &v);
        if (rc == DSM_OK && !long_in_range(v, r->choices)) {
            rc = DSM_ERR_ENV; // e.g. DSM_LOCK_TIMEOUT=-5 would mean "wait for ever"
        }
        if (rc == DSM_OK) {
            *(long *)field = v;
        }
        return rc;
    }
    case T_SIZE:
        return dsmi_parse_size(val, (size_t *)field);
    case T_CHOICE:
        return dsmi_parse_choice(val, r->choices, (int *)field);
    case T_STRING:
        *(const char **)field = val; // environment strings live as long as the process
        return DSM_OK;
    }
    return DSM_ERR_INTERNAL;
}

const char *dsmi_env_node_local_dir(void)
{
    static const char *const from[] = {"SIMCLUSTER_NODE_DIR", "TMPDIR"};
    for (size_t i = 0; i < sizeof from / sizeof *from; i++) {
        const char *d = getenv(from[i]);
        if (d != NULL && d[0] == '/') {
            return d;
        }
    }
    return "/tmp";
}

int dsmi_env_parse(struct dsmi_settings *out, char *why, size_t whylen)
{
    struct dsmi_settings s;
    memset(&s, 0, sizeof s);
    int rc = DSM_OK;
    for (size_t i = 0; i < NROWS; i++) {
        DSM_ASSERT(parse_one(&rows[i], rows[i].def, &s) == DSM_OK); // defaults must parse
        char name[64];
        snprintf(name, sizeof name, "DSM_%s", rows[i].name);
        const char *val = getenv(name);
        if (val == NULL || rc != DSM_OK) {
            continue;
        }
        if (parse_one(&rows[i], val, &s) != DSM_OK) {
            char kind[160];
            type_str(&rows[i], kind, sizeof kind);
            snprintf(why, whylen, "%s='%s' is not a valid %s", name, val, kind);
            rc = DSM_ERR_ENV;
        }
    }
    *out = s;
    return rc;
}

/* A printable value of one setting. */
static void value_str(const struct env_row *r, const struct dsmi_settings *s, char *buf, size_t len)
{
    const char *field = (const char *)s + r->field;
    switch (r->type) {
    case T_BOOL:
        snprintf(buf, len, "%s", *(const bool *)field ? "1" : "0");
        break;
    case T_LONG:
        snprintf(buf, len, "%ld", *(const long *)field);
        break;
    case T_SIZE:
        snprintf(buf, len, "%zu", *(const size_t *)field);
        break;
    case T_CHOICE: {
        int idx = *(const int *)field;
        const char *p = r->choices;
        for (int i = 0; i < idx && p; i++) {
            p = strchr(p, '|');
            p = p ? p + 1 : NULL;
        }
        size_t n = p ? strcspn(p, "|") : 0;
        snprintf(buf, len, "%.*s", (int)n, p ? p : "");
        break;
    }
    case T_STRING:
        snprintf(buf, len, "%s", *(const char *const *)field ? *(const char *const *)field : "");
        break;
    }
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037u;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    }
    return h;
}

int dsmi_env_check_agree(const struct dsmi_settings *s, MPI_Comm comm)
{
    uint64_t mine[NROWS], lo[NROWS], hi[NROWS];
    for (size_t i = 0; i < NROWS; i++) {
        char buf[256];
        value_str(&rows[i], s, buf, sizeof buf);
        mine[i] = rows[i].agree ? fnv1a(buf) : 0;
    }
    DSMI_MPI("dsm_init", MPI_Allreduce(mine, lo, (int)NROWS, MPI_UINT64_T, MPI_MIN, comm));
    DSMI_MPI("dsm_init", MPI_Allreduce(mine, hi, (int)NROWS, MPI_UINT64_T, MPI_MAX, comm));
    for (size_t i = 0; i < NROWS; i++) {
        if (lo[i] != hi[i]) {
            char buf[256];
            value_str(&rows[i], s, buf, sizeof buf);
            return dsmi_fail(DSM_ERR_ENV, "dsm_init",
                             "DSM_%s must be the same on every rank, but differs (here: '%s')",
                             rows[i].name, buf);
        }
    }
    return DSM_OK;
}

void dsmi_env_dump(const struct dsmi_settings *s)
{
    for (size_t i = 0; i < NROWS; i++) {
        char buf[256];
        value_str(&rows[i], s, buf, sizeof buf);
        dsmi_log(DSMI_LOG_ALWAYS, "  DSM_%-16s = %-12s (default %s)", rows[i].name, buf,
                 rows[i].def);
    }
}

/* "`a`, `b` and `c`" */
static void quoted_list(FILE *f, const char *const *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s`%s`", i == 0 ? "" : i + 1 == n ? " and " : ", ", items[i]);
    }
}

void dsmi_env_doc(FILE *f)
{
    fprintf(f, "# mpidsm environment variables\n\n"
               "Generated from `src/env_defs.h` by `make env-doc`; do not edit by hand.\n"
               "Values are parsed strictly: booleans 1/0, true/false, yes/no, on/off (any "
               "case); integers are decimal and must lie in the range shown (`lo..` has no "
               "upper bound). Sizes are digits with an optional unit K, M, G or T (x1024 "
               "each, any case), which may be followed by B or iB (any case): ");
    quoted_list(f, size_ok, sizeof size_ok / sizeof *size_ok);
    fprintf(f, " all mean 16 MiB (16777216 bytes); ");
    quoted_list(f, size_refused, sizeof size_refused / sizeof *size_refused);
    fprintf(f, " are refused. Anything else makes `dsm_init` fail with `DSM_ERR_ENV`.\n\n"
               "| variable | type | default | same on all ranks | meaning |\n"
               "| --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; i < NROWS; i++) {
        const struct env_row *r = &rows[i];
        char kind[160];
        type_str(r, kind, sizeof kind);
        for (char *p = strchr(kind, '|'); p; p = strchr(p, '|')) {
            *p = '/'; // '|' would end a Markdown table cell
        }
        fprintf(f, "| `DSM_%s` | %s | `%s` | %s | %s |\n", r->name, kind, r->def,
                r->agree ? "yes" : "no", r->desc);
    }
}

/* The ENVIRONMENT section of mpidsm(7), in man(7) markup: the same rows as docs/ENV.md. */
void dsmi_env_man(FILE *f)
{
    fprintf(f, ".PP\nEvery setting is a DSM_* environment variable, read once by dsm_init and "
               "parsed strictly: a malformed value makes dsm_init fail with DSM_ERR_ENV. "
               "Booleans are 1/0, true/false, yes/no or on/off; sizes are digits with an "
               "optional K, M, G or T (x1024 each, any case, optionally followed by B or iB). "
               "Settings marked \"same on every rank\" are compared across ranks at "
               "dsm_init. dsm-info prints each setting with its value and default.\n");
    for (size_t i = 0; i < NROWS; i++) {
        const struct env_row *r = &rows[i];
        char kind[160];
        type_str(r, kind, sizeof kind);
        fprintf(f, ".TP\n.B DSM_%s\n%s; default \\(lq%s\\(rq%s.\n%s%s.\n", r->name, kind, r->def,
                r->agree ? "; the same on every rank" : "", r->desc[0] == '.' ? "\\&" : "",
                r->desc);
    }
}

size_t dsmi_env_count(void)
{
    return NROWS;
}

/* Row i for dsm-info: name, type, default, whether it must agree, meaning, the raw
 * value from the environment (NULL when unset) and the value in effect ("" when the
 * raw value is malformed: then valid is false). */
void dsmi_env_row(size_t i, struct dsmi_env_row *out)
{
    const struct env_row *r = &rows[i];
    char name[64];
    snprintf(name, sizeof name, "DSM_%s", r->name);
    *out = (struct dsmi_env_row){.desc = r->desc, .def = r->def, .agree = r->agree};
    snprintf(out->name, sizeof out->name, "%s", name);
    type_str(r, out->type, sizeof out->type);
    out->raw = getenv(name);
    struct dsmi_settings s;
    memset(&s, 0, sizeof s);
    out->valid = parse_one(r, out->raw ? out->raw : r->def, &s) == DSM_OK;
    if (out->valid) {
        value_str(r, &s, out->value, sizeof out->value);
    }
}
