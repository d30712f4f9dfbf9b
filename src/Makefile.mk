# The library. Everything is built once into a convenience library, which the shared
# libmpidsm wraps (exporting only DSM_API symbols) and which the tests link directly so
# they can reach internal functions.
noinst_LTLIBRARIES += src/libdsmcore.la
src_libdsmcore_la_SOURCES = \
	src/runtime.c src/runtime.h src/env.c src/env_defs.h src/log.c \
	src/win.c src/win.h src/gptr.c src/rma.c src/rma.h \
	src/topo.c src/topo.h src/heap.c src/heap.h src/heap_core.c src/heap_core.h \
	src/heap_view.c src/placement.c src/placement.h \
	src/progress.c src/progress.h src/sync.c src/sync.h src/mutex.c src/rwlock.c src/sem.c \
	src/ckpt.c src/ckpt.h src/ckpt_io.c src/ckpt_async.c src/ckpt_regroup.c src/replica.c src/roots.c
src_libdsmcore_la_CPPFLAGS = $(AM_CPPFLAGS) -DDSM_BUILDING_LIBRARY
src_libdsmcore_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden $(HWLOC_CFLAGS)
src_libdsmcore_la_LIBADD = $(HWLOC_LIBS)

lib_LTLIBRARIES += src/libmpidsm.la
src_libmpidsm_la_SOURCES =
src_libmpidsm_la_LIBADD = src/libdsmcore.la
src_libmpidsm_la_LDFLAGS = -version-info 0:0:0

# docs/ENV.md is generated from src/env_defs.h.
noinst_PROGRAMS += src/envdoc
src_envdoc_SOURCES = src/envdoc.c
src_envdoc_LDADD = src/libdsmcore.la
env-doc: src/envdoc$(EXEEXT)
	src/envdoc$(EXEEXT) > $(top_srcdir)/docs/ENV.md


# dsm-ckpt-dir: a job's checkpoint directory from the library's own function, for
# dsmrun. Built in mpi-launch/ beside dsmrun, as installed, so each dsmrun finds its own.
bin_PROGRAMS += mpi-launch/dsm-ckpt-dir
mpi_launch_dsm_ckpt_dir_SOURCES = src/ckpt_dir_main.c
mpi_launch_dsm_ckpt_dir_LDADD = src/libdsmcore.la

# Signals and waiting, strided and indexed transfers, more atomics, distributed arrays
# (issue 17).
src_libdsmcore_la_SOURCES += src/signal.c src/strided.c src/atomic.c src/array.c
src_libdsmcore_la_SOURCES += src/reduce.c
# Replicated objects with quorum writes (issue 16).
src_libdsmcore_la_SOURCES += src/repl.c src/repl.h

# dsm-info: version, MPI, hwloc, topology, data path and every DSM_* setting (--json for
# scripts). Built beside dsmrun, as installed, so dsmrun --info runs its own.
bin_PROGRAMS += mpi-launch/dsm-info
mpi_launch_dsm_info_SOURCES = src/info_main.c
mpi_launch_dsm_info_LDADD = src/libdsmcore.la
# The owner's cache of small blocks, taken and freed without the heap lock (issue 18).
src_libdsmcore_la_SOURCES += src/heap_cache.c
