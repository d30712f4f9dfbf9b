/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * dsm-info: what this mpidsm installation can do on this machine, as ompi_info and
 * hwloc-info do for theirs.
 *
 *   dsm-info [--json] [--ranks N]
 *
 * Prints the version, the MPI library and the settings of it that matter to mpidsm
 * (Open MPI's osc setting and opened osc components, MPICH's device, the thread level
 * asked for and provided), whether hwloc is in, the node's topology, the data path and
 * segment size a job of N ranks on this machine would get (default N: the cores), and
 * every DSM_* setting with its value and default. It starts mpidsm in one process (a
 * singleton) exactly as a program does, so the path it reports is the library's own
 * decision for one node; for that run only it sets DSM_RESTART=never (no checkpoint is
 * read), DSM_VERBOSE=0, DSM_STATS=0 and DSM_HEAP_SIZE=16M (no large segment), after
 * recording the user's values. A malformed DSM_* value is reported with the reason and
 * mpidsm is not started. Exit status: 0, 1 when mpidsm could not start (the output says
 * why), 2 for bad arguments. Built beside dsmrun, whose --info runs it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "topo.h"
#include "win.h"

struct info {
    int ranks;
    bool started;
    char error[1024];
    char lib[MPI_MAX_LIBRARY_VERSION_STRING], device[128];
    int mpi_version, mpi_subversion, provided;
    char osc[4096], osc_components[512];
    dsm_topo_t topo;
    const char *topo_source;
    size_t rows;
    struct dsmi_env_row *row;
};

static const char *const level_names[] = {"single", "funneled", "serialized", "multiple"};

static const char *level_name(int level)
{
    const int levels[] = {MPI_THREAD_SINGLE, MPI_THREAD_FUNNELED, MPI_THREAD_SERIALIZED,
                          MPI_THREAD_MULTIPLE};
    for (int i = 0; i < 4; i++) {
        if (level == levels[i]) {
            return level_names[i];
        }
    }
    return "unknown";
}

static const struct dsmi_env_row *row(const struct info *in, const char *name)
{
    for (size_t i = 0; i < in->rows; i++) {
        if (strcmp(in->row[i].name, name) == 0) {
            return &in->row[i];
        }
    }
    return NULL; // every name asked for is in env_defs.h
}

#ifdef OPEN_MPI
/* Open MPI's opened osc components: each has an MPI_T variable osc_<name>_major_version. */
static void osc_components(char *out, size_t cap)
{
    int provided, n = 0, level = MPI_THREAD_SINGLE;
    out[0] = '\0';
    MPI_Query_thread(&level); // Open MPI's MPI_T_init_thread overwrites it (see win.c)
    if (MPI_T_init_thread(level, &provided) != MPI_SUCCESS || MPI_T_cvar_get_num(&n) != 0) {
        return;
    }
    for (int i = 0; i < n; i++) {
        char name[256], desc[1024];
        int nlen = sizeof name, dlen = sizeof desc, verb, bind, scope;
        MPI_Datatype dt;
        MPI_T_enum en;
        if (MPI_T_cvar_get_info(i, name, &nlen, &verb, &dt, &en, desc, &dlen, &bind, &scope) !=
                MPI_SUCCESS ||
            strncmp(name, "osc_", 4) != 0 || strlen(name) < 19 ||
            strcmp(name + strlen(name) - 14, "_major_version") != 0) {
            continue;
        }
        size_t used = strlen(out);
        snprintf(out + used, cap - used, "%s%.*s", used ? "," : "", (int)(strlen(name) - 18),
                 name + 4);
    }
    MPI_T_finalize();
}
#endif

/* The library's first line, and MPICH's "Device:" line. */
static void mpi_library(struct info *in)
{
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(v, &len);
    MPI_Get_version(&in->mpi_version, &in->mpi_subversion);
    snprintf(in->lib, sizeof in->lib, "%.*s", (int)strcspn(v, "\n"), v);
    for (char *t = strchr(in->lib, '\t'); t; t = strchr(t, '\t')) {
        *t = ' ';
    }
    const char *d = strstr(v, "Device:");
    in->device[0] = '\0';
    if (d != NULL) {
        d += strspn(d + 7, " \t") + 7;
        snprintf(in->device, sizeof in->device, "%.*s", (int)strcspn(d, "\n"), d);
    }
}

/* Start mpidsm as a one-rank job and note what it decided; then stop it. */
static void probe(struct info *in, int *argc, char ***argv)
{
    setenv("DSM_RESTART", "never", 1);
    setenv("DSM_VERBOSE", "0", 1);
    setenv("DSM_STATS", "0", 1);
    setenv("DSM_HEAP_SIZE", "16M", 1);
    if (dsm_init(argc, argv) != DSM_OK) {
        snprintf(in->error, sizeof in->error, "%s", dsm_last_error());
        return;
    }
    in->started = true;
    mpi_library(in);
    MPI_Query_thread(&in->provided);
    dsmi_win_osc_setting(in->osc, sizeof in->osc);
#ifdef OPEN_MPI
    osc_components(in->osc_components, sizeof in->osc_components);
#endif
    dsm_topology(&in->topo);
    in->topo_source = dsmi_topo_source();
    dsm_finalize();
}

/* The segment each of n ranks on this node would get (runtime.c's rule for 0). */
static size_t segment_for(const struct info *in, int n)
{
    const struct dsmi_env_row *r = row(in, "DSM_HEAP_SIZE");
    size_t size = (size_t)strtoull(r->value, NULL, 10);
    if (size != 0 || n < 1) {
        return size;
    }
    size = (size_t)(in->topo.node_memory / (uint64_t)n / 8);
    size = size < ((size_t)16 << 20) ? (size_t)16 << 20 : size;
    size = size > ((size_t)1 << 30) ? (size_t)1 << 30 : size;
    return size & ~(((size_t)1 << 20) - 1);
}

/* The data path of an n-rank job on this node: the singleton's decision, which
 * depends only on being on one node, DSM_DIRECT and the osc setting. */
static const char *path_name(const struct info *in)
{
    return in->topo.direct_ranks > 0 ? "direct" : "mpi";
}

static const char *path_detail(const struct info *in)
{
    if (in->topo.direct_ranks > 0) {
        return "loads, stores and CPU atomics on every rank's segment, mapped through an MPI "
               "shared-memory window";
    }
    if (strcmp(row(in, "DSM_DIRECT")->value, "0") == 0) {
        return "MPI one-sided calls (DSM_DIRECT=0)";
    }
    return "MPI one-sided calls (no shared-memory window: see DSM_LOG_LEVEL=info)";
}

/* ---- text ---- */

static void print_text(const struct info *in)
{
    printf("mpidsm %d.%d.%d\n", DSM_VERSION_MAJOR, DSM_VERSION_MINOR, DSM_VERSION_PATCH);
#ifdef DSM_HAVE_HWLOC
    printf("hwloc: yes (built with hwloc)\n");
#else
    printf("hwloc: no (built without hwloc: topology from sysconf)\n");
#endif
    if (!in->started) {
        printf("not started: %s\n", in->error);
    } else {
        printf("MPI: %s (MPI %d.%d)\n", in->lib, in->mpi_version, in->mpi_subversion);
        if (in->device[0]) {
            printf("MPI device: %s\n", in->device);
        }
#ifdef OPEN_MPI
        printf("osc setting: %s; osc components opened: %s\n", in->osc[0] ? in->osc : "(default)",
               in->osc_components[0] ? in->osc_components : "(unknown)");
#endif
        printf("thread level: asked %s (DSM_THREADS), provided %s\n", row(in, "DSM_THREADS")->value,
               level_name(in->provided));
        const dsm_topo_t *t = &in->topo;
        printf("topology (%s): %d NUMA node(s), %d cores, %d hardware threads, %.1f GiB\n",
               in->topo_source, t->numa_nodes, t->cores, t->pus,
               (double)t->node_memory / (1024.0 * 1024 * 1024));
        printf("a job of %d ranks on this machine: data path %s: %s; segment %zu bytes per "
               "rank%s\n",
               in->ranks, path_name(in), path_detail(in), segment_for(in, in->ranks),
               in->ranks > t->cores ? "; oversubscribed (more ranks than cores)" : "");
    }
    printf("settings:\n");
    for (size_t i = 0; i < in->rows; i++) {
        const struct dsmi_env_row *r = &in->row[i];
        if (r->valid) {
            printf("  %-20s = %-12s (default %s%s)\n", r->name, r->value, r->def,
                   r->raw ? "; set" : "");
        } else {
            printf("  %-20s = %-12s INVALID: not a valid %s\n", r->name, r->raw, r->type);
        }
    }
}

/* ---- JSON ---- */

static void jstr(const char *s)
{
    putchar('"');
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c < 0x20) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

static void jkey(const char *k, const char *v, const char *sep)
{
    jstr(k);
    putchar(':');
    if (v) {
        jstr(v);
    } else {
        printf("null");
    }
    printf("%s", sep);
}

static void print_json_settings(const struct info *in)
{
    printf("\"settings\":[");
    for (size_t i = 0; i < in->rows; i++) {
        const struct dsmi_env_row *r = &in->row[i];
        printf("%s{", i ? "," : "");
        jkey("name", r->name, ",");
        jkey("value", r->valid ? r->value : NULL, ",");
        jkey("raw", r->raw, ",");
        jkey("default", r->def, ",");
        jkey("type", r->type, ",");
        printf("\"set\":%s,\"valid\":%s,\"same_on_all_ranks\":%s,", r->raw ? "true" : "false",
               r->valid ? "true" : "false", r->agree ? "true" : "false");
        jkey("meaning", r->desc, "}");
    }
    printf("]");
}

static void print_json(const struct info *in)
{
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", DSM_VERSION_MAJOR, DSM_VERSION_MINOR, DSM_VERSION_PATCH);
    printf("{");
    jkey("version", v, ",");
#ifdef DSM_HAVE_HWLOC
    printf("\"hwloc\":true,");
#else
    printf("\"hwloc\":false,");
#endif
    printf("\"started\":%s,", in->started ? "true" : "false");
    jkey("error", in->started ? NULL : in->error, ",");
    if (in->started) {
        const dsm_topo_t *t = &in->topo;
        printf("\"mpi\":{");
        jkey("library", in->lib, ",");
        printf("\"standard\":\"%d.%d\",", in->mpi_version, in->mpi_subversion);
        jkey("device", in->device[0] ? in->device : NULL, ",");
        jkey("osc", in->osc, ",");
        jkey("osc_components", in->osc_components, ",");
        jkey("thread_level_asked", row(in, "DSM_THREADS")->value, ",");
        jkey("thread_level_provided", level_name(in->provided), "},");
        printf("\"topology\":{");
        jkey("source", in->topo_source, ",");
        printf("\"numa_nodes\":%d,\"cores\":%d,\"pus\":%d,\"node_memory\":%llu},", t->numa_nodes,
               t->cores, t->pus, (unsigned long long)t->node_memory);
        printf("\"job\":{\"ranks\":%d,\"nodes\":1,", in->ranks);
        jkey("data_path", path_name(in), ",");
        jkey("data_path_detail", path_detail(in), ",");
        printf("\"segment_size\":%zu,\"oversubscribed\":%s},", segment_for(in, in->ranks),
               in->ranks > t->cores ? "true" : "false");
    }
    print_json_settings(in);
    printf("}\n");
}

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: dsm-info [--json] [--ranks N]\n"
               "  what this mpidsm can do here: version, MPI, hwloc, topology, the data path\n"
               "  of a job of N ranks on this machine (default: one per core), every DSM_*\n"
               "  setting with its value and default\n");
    return rc;
}

int main(int argc, char **argv)
{
    struct info in = {.ranks = 0};
    bool json = false;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--ranks") == 0 && i + 1 < argc &&
                   (in.ranks = (int)strtol(argv[i + 1], &end, 10)) > 0 && *end == '\0') {
            i++;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return usage(stdout, 0);
        } else {
            fprintf(stderr, "dsm-info: bad argument '%s'\n", argv[i]);
            return usage(stderr, 2);
        }
    }
    in.rows = dsmi_env_count();
    in.row = calloc(in.rows, sizeof *in.row);
    bool valid = in.row != NULL;
    snprintf(in.error, sizeof in.error, "%s", valid ? "" : "out of memory");
    for (size_t i = 0; in.row != NULL && i < in.rows; i++) {
        dsmi_env_row(i, &in.row[i]);
        if (!in.row[i].valid && valid) {
            valid = false;
            snprintf(in.error, sizeof in.error, "%s='%s' is not a valid %s", in.row[i].name,
                     in.row[i].raw, in.row[i].type);
        }
    }
    if (valid) {
        probe(&in, &argc, &argv); // after the rows: they hold the user's values
    }
    if (in.started && in.ranks == 0) {
        in.ranks = in.topo.cores > 0 ? in.topo.cores : 1;
    }
    if (json) {
        print_json(&in);
    } else {
        print_text(&in);
    }
    free(in.row);
    return in.started ? 0 : 1;
}
