/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Runtime internals shared by every subsystem: the global state, the settings parsed
 * from the DSM_* table, error reporting, logging, the abort path and statistics.
 * Everything here is written once in dsm_init (single-threaded) and read afterwards;
 * the statistics are the only state updated on the data path.
 */
#ifndef DSMI_RUNTIME_H
#define DSMI_RUNTIME_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mpidsm.h"

#define DSMI_HIDDEN __attribute__((visibility("hidden")))

/* ---- settings (generated from env_defs.h) ---- */
#define DSMI_ENV_CTYPE_BOOL bool
#define DSMI_ENV_CTYPE_LONG long
#define DSMI_ENV_CTYPE_SIZE size_t
#define DSMI_ENV_CTYPE_CHOICE int
#define DSMI_ENV_CTYPE_STRING const char *

struct dsmi_settings {
#define DSM_ENV(name, type, def, agree, choices, desc) DSMI_ENV_CTYPE_##type name;
#include "env_defs.h"
#undef DSM_ENV
};

/* Indices of the CHOICE values, in table order. */
enum { DSMI_THREADS_SINGLE, DSMI_THREADS_FUNNELED, DSMI_THREADS_SERIALIZED, DSMI_THREADS_MULTIPLE };
enum { DSMI_ERRORS_RETURN, DSMI_ERRORS_ABORT };
enum {
    DSMI_LOG_NONE,
    DSMI_LOG_ALWAYS = DSMI_LOG_NONE,
    DSMI_LOG_ERROR,
    DSMI_LOG_WARN,
    DSMI_LOG_INFO,
    DSMI_LOG_DEBUG
};

/* Parse every DSM_* variable into *out (defaults for unset ones). On a malformed value,
 * returns DSM_ERR_ENV and writes "DSM_X=value: reason" into why. */
DSMI_HIDDEN int dsmi_env_parse(struct dsmi_settings *out, char *why, size_t whylen);
/* The node's local storage, what "auto" means for DSM_CKPT_LOCAL_DIR and DSM_REPL_DIR:
 * $SIMCLUSTER_NODE_DIR, else $TMPDIR (batch systems point it at the node's local disk),
 * else /tmp. */
DSMI_HIDDEN const char *dsmi_env_node_local_dir(void);
/* Collective: DSM_OK when every AGREE variable has the same value on all ranks. */
DSMI_HIDDEN int dsmi_env_check_agree(const struct dsmi_settings *s, MPI_Comm comm);
/* Print each setting, its value and default (rank 0, DSM_VERBOSE). */
DSMI_HIDDEN void dsmi_env_dump(const struct dsmi_settings *s);
/* Write the Markdown table of docs/ENV.md. */
DSMI_HIDDEN void dsmi_env_doc(FILE *f);
/* Write the ENVIRONMENT section of mpidsm(7) (man markup; envdoc --man). */
DSMI_HIDDEN void dsmi_env_man(FILE *f);
/* One setting as dsm-info shows it (dsmi_env_row). */
struct dsmi_env_row {
    char name[64], type[160], value[256];
    const char *def, *desc, *raw; // raw: the environment's value, NULL when unset
    bool agree, valid;            // valid: raw (or the default) parses
};
DSMI_HIDDEN size_t dsmi_env_count(void);
DSMI_HIDDEN void dsmi_env_row(size_t i, struct dsmi_env_row *out);
/* Strict parsers, exposed for the tests. */
DSMI_HIDDEN int dsmi_parse_bool(const char *s, bool *out);
DSMI_HIDDEN int dsmi_parse_long(const char *s, long *out);
DSMI_HIDDEN int dsmi_parse_size(const char *s, size_t *out);
DSMI_HIDDEN int dsmi_parse_choice(const char *s, const char *choices, int *out);

/* ---- global state ---- */
struct dsmi_state {
    bool up;         // dsm_init succeeded, dsm_finalize not yet run
    bool own_mpi;    // dsm_init called MPI_Init and finalize must end MPI
    bool mt;         // MPI_THREAD_MULTIPLE in use: counters must be atomic
    bool cfg_valid;  // cfg holds parsed settings (else defaults apply to logging)
    bool cas_broken; // compare-and-swap would crash (see win.c) and is refused
    int rank, nranks;
    MPI_Comm comm; // private duplicate, MPI_ERRORS_RETURN
    struct dsmi_settings cfg;
};
DSMI_HIDDEN extern struct dsmi_state dsmi_rt;

/* ---- errors and logging ---- */
/* Record and log a failure of call func; returns code. Aborts with DSM_ERRORS=abort. */
DSMI_HIDDEN int dsmi_fail(int code, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Probes: a caller that tries something and handles one failure code as an answer
 * (placement trying a rank that may be full) brackets the call with these. While the
 * bracket is open, dsmi_fail with that code on this thread only records the message
 * (dsm_last_error): it neither logs, counts nor aborts under DSM_ERRORS=abort. Any other
 * code fails as usual. Brackets replace rather than stack: an inner one with another
 * code suspends the outer one until dsmi_probe_end(outer) restores it. Returns the
 * outer bracket's code for that call. */
DSMI_HIDDEN int dsmi_probe_begin(int expected);
DSMI_HIDDEN void dsmi_probe_end(int outer);
/* A public call implemented with another public one names itself: while the outermost
 * DSMI_CALL_AS runs, a failure anywhere inside reports "outer: inner: cause", so
 * dsm_last_error starts with the call the user made. The expression's value is call's. */
#define DSMI_CALL_AS(outer, call) (dsmi_call_enter(outer), dsmi_call_leave(call))
DSMI_HIDDEN void dsmi_call_enter(const char *outer);
DSMI_HIDDEN int dsmi_call_leave(int rc);
/* The same for a failed MPI call: includes MPI's error string, file and line. */
DSMI_HIDDEN int dsmi_fail_mpi(int mpirc, const char *func, const char *what, const char *file,
                              int line);
DSMI_HIDDEN void dsmi_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
DSMI_HIDDEN _Noreturn void dsmi_abort(const char *file, int line, const char *func,
                                      const char *msg);

#define DSM_ASSERT(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            dsmi_abort(__FILE__, __LINE__, __func__, "assertion failed: " #cond);                  \
        }                                                                                          \
    } while (0)
/* Expensive checks, compiled in by configure --enable-debug (DSM_DEBUG in config.h). */
#ifdef DSM_DEBUG
#define DSM_ASSERT_DEBUG(cond) DSM_ASSERT(cond)
#else
#define DSM_ASSERT_DEBUG(cond) ((void)0)
#endif
/* True when DSM_ASSERT_DEBUG evaluates its condition in the library (DSM_VERBOSE, tests). */
DSMI_HIDDEN bool dsmi_debug_asserts(void);

/* Run an MPI call; on failure return DSM_ERR_MPI from the enclosing function. */
#define DSMI_MPI(func, call)                                                                       \
    do {                                                                                           \
        int mpirc_ = (call);                                                                       \
        if (mpirc_ != MPI_SUCCESS) {                                                               \
            return dsmi_fail_mpi(mpirc_, func, #call, __FILE__, __LINE__);                         \
        }                                                                                          \
    } while (0)

/* Return DSM_ERR_STATE from the enclosing function when mpidsm is not running. */
#define DSMI_CHECK_UP(func)                                                                        \
    do {                                                                                           \
        if (!dsmi_rt.up) {                                                                         \
            return dsmi_fail(DSM_ERR_STATE, func,                                                  \
                             "mpidsm is not initialised "                                          \
                             "(call dsm_init first)");                                             \
        }                                                                                          \
    } while (0)

/* ---- statistics: one counter set per rank, relaxed atomics only under threads ---- */
struct dsmi_counters {
    _Atomic uint64_t puts, gets, bytes_put, bytes_got, atomics, flushes, flush_ns, errors;
    _Atomic uint64_t ops_direct, ops_mpi; // data-path calls by path (rma.c, atomic.c)
    _Atomic uint64_t repl_writes, repl_reads, repl_cas, repl_repairs; // repl.c
};
DSMI_HIDDEN extern struct dsmi_counters dsmi_stat;

/* Data-path counters are kept only with DSM_STATS=1: they cost a few ns per operation,
 * which is a fifth of a put on shared memory. */
static inline void dsmi_count(_Atomic uint64_t *c, uint64_t n)
{
    if (__builtin_expect(!dsmi_rt.cfg.STATS, 1)) {
        return;
    }
    if (dsmi_rt.mt) {
        atomic_fetch_add_explicit(c, n, memory_order_relaxed);
    } else { // one thread: a plain load/store pair, no locked instruction
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                              memory_order_relaxed);
    }
}
DSMI_HIDDEN uint64_t dsmi_now_ns(void);

#endif /* DSMI_RUNTIME_H */
