/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Errors, diagnostics and the one abort path.
 *
 * A failing call goes through dsmi_fail: it formats "[dsm R] call: cause (DSM_ERR_X)"
 * into a per-thread buffer (dsm_last_error), prints it when DSM_LOG_LEVEL allows, and
 * aborts the job when DSM_ERRORS=abort. Broken invariants go through dsmi_abort, which
 * prints file, line, function and a backtrace, then calls MPI_Abort.
 */
#include "runtime.h"

#include <execinfo.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const err_names[] = {
    [DSM_OK] = "success",
    [DSM_ERR_ARG] = "invalid argument",
    [DSM_ERR_NOMEM] = "out of memory",
    [DSM_ERR_STATE] = "invalid state",
    [DSM_ERR_RANGE] = "address or rank out of range",
    [DSM_ERR_ENV] = "bad environment setting",
    [DSM_ERR_MPI] = "MPI error",
    [DSM_ERR_UNSUPPORTED] = "not supported",
    [DSM_ERR_INTERNAL] = "internal error",
    [DSM_ERR_INVALID] = "invalid pointer or object",
    [DSM_ERR_BUSY] = "busy",
    [DSM_ERR_TIMEOUT] = "timed out",
    [DSM_ERR_NOTFOUND] = "not found",
    [DSM_ERR_IO] = "I/O error",
    [DSM_ERR_CORRUPT] = "corrupt data",
    [DSM_ERR_MISMATCH] = "checkpoint does not fit this job",
    [DSM_ERR_QUORUM] = "replicated object lost a majority of its copies",
};
_Static_assert(sizeof err_names / sizeof err_names[0] == DSM_ERR_COUNT,
               "err_names and enum dsm_err disagree");

static const char *const err_symbols[] = {
    "DSM_OK",           "DSM_ERR_ARG",     "DSM_ERR_NOMEM",   "DSM_ERR_STATE",
    "DSM_ERR_RANGE",    "DSM_ERR_ENV",     "DSM_ERR_MPI",     "DSM_ERR_UNSUPPORTED",
    "DSM_ERR_INTERNAL", "DSM_ERR_INVALID", "DSM_ERR_BUSY",    "DSM_ERR_TIMEOUT",
    "DSM_ERR_NOTFOUND", "DSM_ERR_IO",      "DSM_ERR_CORRUPT", "DSM_ERR_MISMATCH",
    "DSM_ERR_QUORUM",
};
_Static_assert(sizeof err_symbols / sizeof err_symbols[0] == DSM_ERR_COUNT,
               "err_symbols and enum dsm_err disagree");

static _Thread_local char last_error[512];
static _Thread_local int probe_expect;       // a code dsmi_fail only records (0: none)
static _Thread_local const char *outer_call; // the user's call, set by DSMI_CALL_AS
static _Thread_local int outer_depth;        // nested DSMI_CALL_AS: the outermost names

struct dsmi_counters dsmi_stat;

const char *dsm_strerror(int err)
{
    if (err < 0 || err >= DSM_ERR_COUNT) {
        return "unknown error";
    }
    return err_names[err];
}

const char *dsm_last_error(void)
{
    return last_error;
}

int dsm_version(void)
{
    return DSM_VERSION;
}

static int log_level(void)
{
    // Before dsm_init has parsed DSM_LOG_LEVEL (or after a failed parse), errors show.
    return dsmi_rt.cfg_valid ? dsmi_rt.cfg.LOG_LEVEL : DSMI_LOG_ERROR;
}

static int my_rank(void)
{
    int rank = -1, up = 0;
    if (dsmi_rt.up) {
        return dsmi_rt.rank;
    }
    MPI_Initialized(&up);
    if (up) {
        int down = 0;
        MPI_Finalized(&down);
        if (!down) {
            MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        }
    }
    return rank;
}

void dsmi_log(int level, const char *fmt, ...)
{
    if (level > log_level()) {
        return;
    }
    char line[1024];
    int n = snprintf(line, sizeof line, "[dsm %d] ", my_rank());
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", line); // one call per line keeps ranks' lines whole
}

static _Noreturn void abort_job(void)
{
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (up && !down) {
        MPI_Abort(dsmi_rt.up ? dsmi_rt.comm : MPI_COMM_WORLD, 1);
    }
    _exit(1);
}

void dsmi_abort(const char *file, int line, const char *func, const char *msg)
{
    fprintf(stderr, "[dsm %d] %s:%d %s: %s\n", my_rank(), file, line, func, msg);
    void *frames[32];
    int n = backtrace(frames, 32);
    backtrace_symbols_fd(frames, n, 2);
    abort_job();
}

bool dsmi_debug_asserts(void)
{
    bool evaluated = false;
    DSM_ASSERT_DEBUG((evaluated = true)); // the macro itself, not DSM_DEBUG, decides
    return evaluated;
}

int dsmi_probe_begin(int expected)
{
    int outer = probe_expect;
    probe_expect = expected;
    return outer;
}

void dsmi_probe_end(int outer)
{
    probe_expect = outer;
}

void dsmi_call_enter(const char *outer)
{
    if (outer_depth++ == 0) {
        outer_call = outer;
    }
}

int dsmi_call_leave(int rc)
{
    if (--outer_depth == 0) {
        outer_call = NULL;
    }
    return rc;
}

int dsmi_fail(int code, const char *func, const char *fmt, ...)
{
    char cause[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cause, sizeof cause, fmt, ap);
    va_end(ap);
    const char *sym = (code > 0 && code < DSM_ERR_COUNT) ? err_symbols[code] : "?";
    bool nested = outer_call != NULL && strcmp(outer_call, func) != 0;
    snprintf(last_error, sizeof last_error, "[dsm %d] %s%s%s: %s (%s)", my_rank(),
             nested ? outer_call : "", nested ? ": " : "", func, cause, sym);
    if (code == probe_expect) { // an answer the probing caller handles, not a failure
        return code;
    }
    atomic_fetch_add_explicit(&dsmi_stat.errors, 1, memory_order_relaxed); // always kept
    if (dsmi_rt.cfg.ERRORS == DSMI_ERRORS_ABORT) {
        fprintf(stderr, "%s; aborting (DSM_ERRORS=abort)\n", last_error);
        abort_job();
    }
    if (log_level() >= DSMI_LOG_ERROR) {
        fprintf(stderr, "%s\n", last_error);
    }
    return code;
}

int dsmi_fail_mpi(int mpirc, const char *func, const char *what, const char *file, int line)
{
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    if (MPI_Error_string(mpirc, msg, &len) != MPI_SUCCESS) {
        snprintf(msg, sizeof msg, "MPI error %d", mpirc);
    }
    return dsmi_fail(DSM_ERR_MPI, func, "%s failed at %s:%d: %s", what, file, line, msg);
}

uint64_t dsmi_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
