/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Every DSM_* environment variable, in one table. Each row:
 *   DSM_ENV(NAME, TYPE, DEFAULT, AGREE, CHOICES, DESCRIPTION)
 * NAME     the variable without its DSM_ prefix; also the field in struct dsmi_settings
 * TYPE     BOOL, LONG, SIZE (K/M/G/T suffixes, x1024), CHOICE (one of CHOICES), STRING
 * DEFAULT  the default as a string, parsed like a user's value
 * AGREE    true when every rank must have the same value (checked at dsm_init)
 * CHOICES  "a|b|c" for CHOICE; for LONG the accepted range "lo..hi" (either end may be
 *          empty; "" means "0..": no setting takes a negative number); "" otherwise
 * The table generates the settings struct, the parser, the DSM_VERBOSE dump and
 * docs/ENV.md (tests/test_env compares that file with the table).
 * No include guard: this file is included once per expansion.
 */
DSM_ENV(HEAP_SIZE, SIZE, "0", true, "",
        "bytes of each rank's segment; 0 = auto (node memory / ranks per node / 8, "
        "16 MiB to 1 GiB)")
DSM_ENV(THREADS, CHOICE, "single", true, "single|funneled|serialized|multiple",
        "MPI thread level mpidsm asks for; multiple lets threads call mpidsm at once")
DSM_ENV(ERRORS, CHOICE, "return", false, "return|abort",
        "return: calls return DSM_ERR_* codes; abort: print the error and MPI_Abort")
DSM_ENV(LOG_LEVEL, CHOICE, "error", false, "none|error|warn|info|debug",
        "which diagnostics are printed to stderr (rank-prefixed)")
DSM_ENV(VERBOSE, BOOL, "0", false, "", "rank 0 prints versions, topology and every setting at init")
DSM_ENV(STATS, BOOL, "0", false, "", "every rank prints its operation counters at finalize")
DSM_ENV(OMPI_OSC_FIX, BOOL, "1", true, "",
        "avoid Open MPI < 4.1.5's osc rdma compare-and-swap crash by selecting osc sm,pt2pt "
        "(or a shared-memory window) when mpidsm can")
DSM_ENV(DIRECT, BOOL, "1", true, "",
        "reach the segments of the ranks on the caller's node with loads and stores instead "
        "of MPI calls: on one node every rank, atomics included (CPU atomics); across nodes "
        "the node's ranks through node-shared memory, atomics by MPI (0 = always MPI "
        "one-sided calls, e.g. to exercise the network path)")
DSM_ENV(LOCK_TIMEOUT, LONG, "0", false, "0..1000000000", // nanoseconds must fit 64 bits
        "seconds a lock, rwlock or semaphore wait may last before it fails with "
        "DSM_ERR_TIMEOUT naming who waits for whom; 0 = wait for ever")
DSM_ENV(CKPT_DIR, STRING, "dsm-ckpt", true, "",
        "checkpoint directory, the same file system on every rank; files go to "
        "<dir>/<job>/<epoch>/")
DSM_ENV(CKPT_JOB, STRING, "", true, "",
        "job name under DSM_CKPT_DIR; empty = the program's name (basename of argv[0], as "
        "dsmrun uses)")
DSM_ENV(CKPT_KEEP, LONG, "2", true, "1..",
        "committed checkpoints kept; older ones are deleted after a newer one commits")
DSM_ENV(CKPT_INTERVAL, LONG, "0", false, "0..",
        "seconds between checkpoints taken by dsm_checkpoint_maybe (rank 0 decides); 0 = never")
DSM_ENV(CKPT_REPLICAS, BOOL, "0", true, "",
        "also keep each rank's checkpoint in a partner rank's memory and files (another "
        "node when there is one)")
DSM_ENV(RESTART, CHOICE, "never", true, "never|auto|required",
        "at dsm_init restore the newest committed checkpoint every rank can verify: auto = "
        "if there is one, required = fail without one")
DSM_ENV(CKPT_ASYNC, BOOL, "0", true, "",
        "dsm_checkpoint copies the images and returns; a background thread writes them and "
        "the epoch commits at the next checkpoint call, dsm_ckpt_wait or dsm_finalize")
DSM_ENV(CKPT_LOCAL_DIR, STRING, "auto", false, "",
        "node-local checkpoint level: each rank writes its image to "
        "<dir>/<job>.<tag>/<epoch>/ on its own node (tag: 12 hex digits naming "
        "DSM_CKPT_DIR's job directory) and its partner (another node when there is one) "
        "keeps a copy in its node-local dir; only every DSM_CKPT_FLUSH_EVERY-th epoch also "
        "goes to DSM_CKPT_DIR. auto (the default) = on when the job spans more than one node, "
        "in $SIMCLUSTER_NODE_DIR, else $TMPDIR (Slurm and most batch systems point it at the "
        "node's local disk), else /tmp: the local disk takes a checkpoint at disk speed while "
        "the shared file system is shared by every node of every job; off on one node, where "
        "a local level adds no protection. A path = on, also on one node. Empty = off: every "
        "image goes to DSM_CKPT_DIR")
DSM_ENV(CKPT_FLUSH_EVERY, LONG, "4", true, "0..",
        "with DSM_CKPT_LOCAL_DIR: epochs whose number is a multiple of this also go to "
        "DSM_CKPT_DIR (the shared level, which survives losing any nodes); 4 keeps the "
        "shared file system's load at a quarter and loses at most 3 epochs when a node and "
        "its partner's node fail together; 1 = every epoch, 0 = never")
DSM_ENV(CKPT_CRASH, CHOICE, "none", false, "none|write|commit",
        "TEST HOOK for fault injection (tests/test_fault_ckpt.sh), never for production: at "
        "epoch DSM_CKPT_CRASH_EPOCH of a run that restored no checkpoint (a relaunch that "
        "resumes from an earlier epoch does not die again: use an epoch of 2 or more), write "
        "= the last rank raises SIGKILL after half of its image file is written, commit = "
        "rank 0 raises SIGKILL after every image is written, before COMMIT")
DSM_ENV(CKPT_CRASH_EPOCH, LONG, "1", false, "1..",
        "TEST HOOK: the checkpoint epoch at which DSM_CKPT_CRASH fires")
/* Passive progress (src/progress.c). */
DSM_ENV(PROGRESS, CHOICE, "auto", true, "auto|on|off",
        "a thread that drives MPI's progress engine so that remote operations on this rank's "
        "memory complete while it computes without calling MPI: auto = when the data path "
        "uses MPI calls on a window that is not shared memory and MPI gives "
        "MPI_THREAD_MULTIPLE (mpidsm asks for it when it initialises MPI and the job may span "
        "nodes), else a warning; on = the same but dsm_init fails without it; off = never")
DSM_ENV(PROGRESS_INTERVAL, LONG, "50", false, "1..100000",
        "microseconds the progress thread sleeps between two polls of MPI: the longest a "
        "remote operation waits for a busy rank, beyond the network")
DSM_ENV(WAIT_TIMEOUT, LONG, "0", false, "0..1000000000", // nanoseconds must fit 64 bits
        "seconds a dsm_wait_until* or dsm_signal_wait_until may last before it fails with "
        "DSM_ERR_TIMEOUT; 0 = wait for ever")
DSM_ENV(WAIT_SLEEP, LONG, "100", false, "0..1000000",
        "longest sleep in microseconds between two polls of a waiting dsm_wait_until* (the "
        "sleep doubles from 1 us up to this; 0 = never sleep, only yield the core)")
/* Replicated objects (src/repl.c). */
DSM_ENV(REPL_SIZE, SIZE, "0", true, "",
        "bytes of each rank's store of replicated objects (dsm_repl_alloc), a file mapped "
        "from DSM_REPL_DIR; 0 = replicated objects off")
DSM_ENV(REPL_DIR, STRING, "auto", false, "",
        "node-local directory of the replicated objects' stores "
        "(<dir>/<job>.<tag>/repl/rank-<r>.store, tag as DSM_CKPT_LOCAL_DIR's); auto = "
        "$SIMCLUSTER_NODE_DIR, else $TMPDIR, else "
        "/tmp")
/* The allocator's owner-private fast path (issue 18). */
DSM_ENV(HEAP_CACHE, SIZE, "512K", false, "",
        "bytes of freed small blocks (up to 256 B) each rank keeps for its own next "
        "allocations, taken and freed without the heap lock; at most 1/16 of the heap; "
        "0 = off")
