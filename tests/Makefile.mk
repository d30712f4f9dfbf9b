TEST_EXTENSIONS = .sh
# CUnit suites, one per subsystem, each run under mpiexec by mpi-launch/dsmrun.
# Override the rank count or launcher: make check NPROCS=2 MPIEXEC=mpiexec.mpich
if DSM_TESTS
NPROCS ?= 4
TEST_TIMEOUT ?= 300
check_LTLIBRARIES = tests/libharness.la
tests_libharness_la_SOURCES = tests/harness.c tests/harness.h
tests_libharness_la_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)

DSM_TEST_LDADD = tests/libharness.la src/libdsmcore.la $(CUNIT_LIBS) -lpthread
DSM_TEST_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)

check_PROGRAMS += tests/test_runtime tests/test_env tests/test_gptr tests/test_rma
tests_test_runtime_SOURCES = tests/test_runtime.c
tests_test_runtime_LDADD = $(DSM_TEST_LDADD)
tests_test_runtime_CFLAGS = $(DSM_TEST_CFLAGS)
tests_test_env_SOURCES = tests/test_env.c
tests_test_env_LDADD = $(DSM_TEST_LDADD)
tests_test_env_CFLAGS = $(DSM_TEST_CFLAGS)
tests_test_gptr_SOURCES = tests/test_gptr.c
tests_test_gptr_LDADD = $(DSM_TEST_LDADD)
tests_test_gptr_CFLAGS = $(DSM_TEST_CFLAGS)
tests_test_rma_SOURCES = tests/test_rma.c
tests_test_rma_LDADD = $(DSM_TEST_LDADD)
tests_test_rma_CFLAGS = $(DSM_TEST_CFLAGS)
check_PROGRAMS += tests/test_sync
tests_test_sync_SOURCES = tests/test_sync.c
tests_test_sync_LDADD = $(DSM_TEST_LDADD)
tests_test_sync_CFLAGS = $(DSM_TEST_CFLAGS)

# DSM_ERRORS=abort must end the job: expected to fail.
check_PROGRAMS += tests/xfail_errors_abort
tests_xfail_errors_abort_SOURCES = tests/xfail_errors_abort.c
tests_xfail_errors_abort_LDADD = src/libdsmcore.la
XFAIL_TESTS += tests/xfail_errors_abort
check_PROGRAMS += tests/test_ckpt
tests_test_ckpt_SOURCES = tests/test_ckpt.c
tests_test_ckpt_LDADD = $(DSM_TEST_LDADD)
tests_test_ckpt_CFLAGS = $(DSM_TEST_CFLAGS)

# Shell tests: dsmrun itself, the demo app, the installed library (pkg-config).
check_SCRIPTS = tests/test_dsmrun.sh tests/test_apps.sh tests/test_mpipath.sh
EXTRA_DIST += $(check_SCRIPTS)

TESTS += $(check_PROGRAMS) $(check_SCRIPTS)
LOG_COMPILER = $(top_builddir)/mpi-launch/dsmrun
AM_LOG_FLAGS = -n $(NPROCS) --timeout $(TEST_TIMEOUT)
SH_LOG_COMPILER = $(SHELL)
AM_TESTS_ENVIRONMENT = NPROCS=$(NPROCS); export NPROCS; \
	DSM_HEAP_SIZE=64M; export DSM_HEAP_SIZE; \
	top_builddir=$(top_builddir); export top_builddir; \
	TEST_TIMEOUT=$(TEST_TIMEOUT); export TEST_TIMEOUT; \
	$(DSM_TEST_LOOPBACK)
# Network rule: jobs on this machine talk over loopback only. Without this, the TCP and
# UCX paths (dsmrun --net) pick the machine's own non-loopback address. The simulated
# nodes (simcluster, slurm-local) export their bridge's interfaces over these.
DSM_TEST_LOOPBACK = OMPI_MCA_btl_tcp_if_include=lo; export OMPI_MCA_btl_tcp_if_include; \
	OMPI_MCA_oob_tcp_if_include=lo; export OMPI_MCA_oob_tcp_if_include; \
	UCX_NET_DEVICES=lo; export UCX_NET_DEVICES; HYDRA_IFACE=lo; export HYDRA_IFACE;

checkprogs: $(check_PROGRAMS) $(check_LTLIBRARIES) $(DSM_TEST_HELPERS)

# Launcher tests: restarts after a killed rank, Slurm (skipped without root/Slurm), the
# network paths. tests/crashy is a helper they run, built by make check, not a test.
DSM_TEST_HELPERS = tests/crashy
EXTRA_PROGRAMS = tests/crashy
tests_crashy_SOURCES = tests/crashy.c
# LD_PRELOAD shim for test_netpath.sh: caps the MPI thread level for osc pt2pt
check_LTLIBRARIES += tests/libthreadcap.la
tests_libthreadcap_la_SOURCES = tests/thread_cap.c
tests_libthreadcap_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
check_SCRIPTS += tests/test_dsmrun_restart.sh tests/test_slurm.sh tests/test_netpath.sh
check-am: $(DSM_TEST_HELPERS)
CLEANFILES += $(DSM_TEST_HELPERS) *.mpipath.out

endif
EXTRA_DIST += tests/outside.c tests/lib.sh mpi-launch/quickstart

# The heap: its CUnit suite, and the allocator core's fuzz target, a plain program run
# once by a shell test (one process, no mpiexec).
if DSM_TESTS
check_PROGRAMS += tests/test_heap tests/test_placement
tests_test_heap_SOURCES = tests/test_heap.c
tests_test_heap_LDADD = $(DSM_TEST_LDADD)
tests_test_heap_CFLAGS = $(DSM_TEST_CFLAGS)
tests_test_placement_SOURCES = tests/test_placement.c
tests_test_placement_LDADD = $(DSM_TEST_LDADD)
tests_test_placement_CFLAGS = $(DSM_TEST_CFLAGS)
noinst_PROGRAMS += tests/fuzz_heap
tests_fuzz_heap_SOURCES = tests/fuzz_heap.c
tests_fuzz_heap_LDADD = src/libdsmcore.la
check_SCRIPTS += tests/test_heap_fuzz.sh
check_SCRIPTS += tests/test_fault.sh
check_SCRIPTS += tests/test_fault_ckpt.sh
endif
EXTRA_DIST += tests/soak_fault.sh
# The checkpoint tree through dsmrun: links never followed, encoded job names, an
# unreadable job directory.
if DSM_TESTS
check_SCRIPTS += tests/test_ckpt_fs.sh
endif

# dsmrun: the configured MPI's launcher (issue 12 item 12) and supervision of its job:
# signals, kill -9 of dsmrun, resuming by default, the user's DSM_RESTART (item 11).
if DSM_TESTS
check_SCRIPTS += tests/test_dsmrun_launcher.sh tests/test_dsmrun_supervise.sh
endif

# Simulated nodes (mpi-launch/simcluster): every suite and the apps across 2-3 nodes.
if DSM_TESTS
check_SCRIPTS += tests/test_cluster.sh tests/test_cluster_apps.sh
CLEANFILES += *.cluster-*.out
endif

# The toolchain around the library (issue 19): the CMake package, the man pages,
# dsm-info, dsm-bench --plot.
if DSM_TESTS
check_SCRIPTS += tests/test_cmake.sh tests/test_man.sh tests/test_dsm_info.sh tests/test_bench_plot.sh
endif

# Passive progress (issue 14 item 2): a computing target must not stall remote
# operations on its memory. test_progress runs under dsmrun on the default path; the
# script runs it on one node over the MPI paths (DSM_DIRECT=0, and Open MPI's UCX).
if DSM_TESTS
check_PROGRAMS += tests/test_progress
tests_test_progress_SOURCES = tests/test_progress.c
tests_test_progress_LDADD = src/libdsmcore.la
check_SCRIPTS += tests/test_progress_paths.sh
endif

# The heap lock's fairness (issue 12 item 10): the suite on the default data path, and
# a script running it again on the MPI path and, on Open MPI, over TCP and UCX.
if DSM_TESTS
check_PROGRAMS += tests/test_heaplock
tests_test_heaplock_SOURCES = tests/test_heaplock.c
tests_test_heaplock_LDADD = $(DSM_TEST_LDADD)
tests_test_heaplock_CFLAGS = $(DSM_TEST_CFLAGS)
check_SCRIPTS += tests/test_heaplock_paths.sh
endif

# Signals and waiting, strided and indexed transfers (issue 17). Also run with
# DSM_DIRECT=0 (test_mpipath.sh) and across simulated nodes (test_cluster.sh).
if DSM_TESTS
check_PROGRAMS += tests/test_signal
tests_test_signal_SOURCES = tests/test_signal.c
tests_test_signal_LDADD = $(DSM_TEST_LDADD)
tests_test_signal_CFLAGS = $(DSM_TEST_CFLAGS)
check_PROGRAMS += tests/test_strided
tests_test_strided_SOURCES = tests/test_strided.c
tests_test_strided_LDADD = $(DSM_TEST_LDADD)
tests_test_strided_CFLAGS = $(DSM_TEST_CFLAGS)
check_PROGRAMS += tests/test_atomic
tests_test_atomic_SOURCES = tests/test_atomic.c
tests_test_atomic_LDADD = $(DSM_TEST_LDADD) -lm
tests_test_atomic_CFLAGS = $(DSM_TEST_CFLAGS)
check_PROGRAMS += tests/test_array
tests_test_array_SOURCES = tests/test_array.c
tests_test_array_LDADD = $(DSM_TEST_LDADD)
tests_test_array_CFLAGS = $(DSM_TEST_CFLAGS)
check_PROGRAMS += tests/test_reduce
tests_test_reduce_SOURCES = tests/test_reduce.c
tests_test_reduce_LDADD = $(DSM_TEST_LDADD)
tests_test_reduce_CFLAGS = $(DSM_TEST_CFLAGS)
check_PROGRAMS += tests/test_array_ckpt
tests_test_array_ckpt_SOURCES = tests/test_array_ckpt.c
tests_test_array_ckpt_LDADD = $(DSM_TEST_LDADD)
tests_test_array_ckpt_CFLAGS = $(DSM_TEST_CFLAGS)
endif

# Checkpoint levels (issue 13 parts 4-5): node-local, partner and shared levels on one
# node, and whole nodes killed on simulated nodes (soak: tests/soak_node_kill.sh).
if DSM_TESTS
check_SCRIPTS += tests/test_ckpt_levels.sh tests/test_node_kill.sh
endif
EXTRA_DIST += tests/soak_node_kill.sh

# Restart on a different rank count (issue 15): a structure built on 4 ranks restarted
# on 2, 3 and 6, and chained; tests/regroup is its helper program, run by the script.
if DSM_TESTS
DSM_TEST_HELPERS += tests/regroup
EXTRA_PROGRAMS += tests/regroup
tests_regroup_SOURCES = tests/regroup.c
tests_regroup_LDADD = src/libdsmcore.la
check_SCRIPTS += tests/test_ckpt_regroup.sh
endif

# Hybrid data path and dsm_ptr (issue 14 parts 1 and 3): the path per (caller, target)
# pair, DSM_STATS by path, dsm_ptr, and the mixed storm (fetch-add totals, a CAS-built
# lock, the MCS mutex, allocation on every heap at once). One node here; 2 simulated
# nodes x 2 ranks in test_cluster.sh, where same-node and other-node peers mix.
if DSM_TESTS
check_PROGRAMS += tests/test_hybrid
tests_test_hybrid_SOURCES = tests/test_hybrid.c
tests_test_hybrid_CFLAGS = $(DSM_TEST_CFLAGS)
tests_test_hybrid_LDADD = $(DSM_TEST_LDADD)
endif
# Replicated objects (issue 16): the CUnit suite (direct path) and the same on the MPI path.
if DSM_TESTS
check_PROGRAMS += tests/test_repl
tests_test_repl_SOURCES = tests/test_repl.c
tests_test_repl_LDADD = $(DSM_TEST_LDADD)
tests_test_repl_CFLAGS = $(DSM_TEST_CFLAGS)
check_SCRIPTS += tests/test_repl_paths.sh
# Whole nodes lost under kvstore --replicas 3 (soak: tests/soak_repl_node_kill.sh).
check_SCRIPTS += tests/test_repl_node_kill.sh
endif
EXTRA_DIST += tests/soak_repl_node_kill.sh
