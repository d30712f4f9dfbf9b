/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * crashy: a plain MPI program that fails on purpose, for testing dsmrun --restarts
 * without the checkpoint library.
 *
 *   crashy              crash once: the first attempt commits a fake epoch, then the last
 *                       rank raises SIGKILL; a later attempt (DSM_RESTART=auto) succeeds
 *   crashy --exit N     every attempt ends with exit status N on every rank
 *   crashy --sleep S    run S seconds (a barrier every 10 ms), then succeed
 *
 * It keeps its own progress in DSM_CKPT_DIR/<job>/crashy.attempts (job = DSM_CKPT_JOB or
 * the program's basename) and makes DSM_CKPT_DIR/<job>/<epoch>/COMMIT as the checkpoint
 * library would, so dsmrun finds "the newest committed epoch". Rank 0 does all file work
 * between two barriers, so every rank sees the same attempt number.
 */
#include <errno.h>
#include <limits.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char jobdir[PATH_MAX];

/* DSM_CKPT_DIR/<job>, created; false (with a message) when the directory is unusable. */
static int set_jobdir(const char *argv0)
{
    const char *dir = getenv("DSM_CKPT_DIR");
    const char *job = getenv("DSM_CKPT_JOB");
    const char *base = strrchr(argv0, '/');
    if (dir == NULL || dir[0] == '\0') {
        fprintf(stderr, "crashy: DSM_CKPT_DIR is not set\n");
        return 0;
    }
    if (job == NULL || job[0] == '\0') {
        job = base != NULL ? base + 1 : argv0;
    }
    snprintf(jobdir, sizeof jobdir, "%s/%s", dir, job);
    (void)mkdir(dir, 0755);
    if (mkdir(jobdir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "crashy: mkdir %s: %s\n", jobdir, strerror(errno));
        return 0;
    }
    return 1;
}

/* Rank 0: read, increment and store the attempt counter; commit a fake epoch numbered
 * after the attempt. Returns the attempt number (1 = first), or -1 on an I/O error. */
static int next_attempt(void)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 64];
    int attempt = 0;
    snprintf(path, sizeof path, "%s/crashy.attempts", jobdir);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fscanf(f, "%d", &attempt) != 1) {
            attempt = 0;
        }
        fclose(f);
    }
    attempt++;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%d\n", attempt) < 0 || fclose(f) != 0 || rename(tmp, path)) {
        fprintf(stderr, "crashy: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/%08d", jobdir, attempt);
    (void)mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%08d/COMMIT", jobdir, attempt);
    f = fopen(path, "w");
    if (f == NULL || fclose(f) != 0) {
        fprintf(stderr, "crashy: cannot write %s\n", path);
        return -1;
    }
    return attempt;
}

static int crash_once(int rank, int size)
{
    int attempt = rank == 0 ? next_attempt() : 0;
    MPI_Bcast(&attempt, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (attempt < 0) {
        return 1;
    }
    const char *restart = getenv("DSM_RESTART");
    if (rank == 0) {
        printf("crashy: attempt %d on %d ranks, DSM_RESTART=%s\n", attempt, size,
               restart != NULL ? restart : "(unset)");
        fflush(stdout);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (attempt == 1) {
        if (rank == size - 1) {
            raise(SIGKILL); // a rank lost as a node would be: no clean-up, no message
        }
        MPI_Barrier(MPI_COMM_WORLD); // the launcher ends the job while we wait here
        return 1;
    }
    if (restart == NULL || strcmp(restart, "auto") != 0) {
        fprintf(stderr, "crashy: attempt %d without DSM_RESTART=auto\n", attempt);
        return 1;
    }
    if (rank == 0) {
        printf("crashy: attempt %d succeeded\n", attempt);
    }
    return 0;
}

static void run_for(double seconds)
{
    const double end = MPI_Wtime() + seconds;
    const struct timespec pause = {0, 10 * 1000 * 1000};
    int more = 1;
    while (more) {
        nanosleep(&pause, NULL); // sleep, not spin: the ranks share two cores
        more = MPI_Wtime() < end;
        MPI_Bcast(&more, 1, MPI_INT, 0, MPI_COMM_WORLD); // rank 0's clock decides
    }
}

int main(int argc, char **argv)
{
    int rank, size, rc = 0;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc == 3 && strcmp(argv[1], "--exit") == 0) {
        rc = atoi(argv[2]);
    } else if (argc == 3 && strcmp(argv[1], "--sleep") == 0) {
        run_for(atof(argv[2]));
    } else if (argc == 1) {
        int ok = rank == 0 ? set_jobdir(argv[0]) : 1;
        MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
        rc = ok ? crash_once(rank, size) : 2;
    } else {
        if (rank == 0) {
            fprintf(stderr, "usage: crashy [--exit N | --sleep SECONDS]\n");
        }
        rc = 2;
    }
    MPI_Finalize();
    return rc;
}
