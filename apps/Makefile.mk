# Programs built on the public API only (mpidsm.h, libmpidsm).
bin_PROGRAMS += apps/dsm-bench apps/dsm-demo
apps_dsm_bench_SOURCES = apps/bench.c apps/bench.h apps/bench_rma.c apps/bench_ckpt.c apps/bench_plot.c \
	apps/bench_heap.c apps/bench_sync.c apps/bench_progress.c
apps_dsm_bench_LDADD = src/libmpidsm.la -lm
apps_dsm_demo_SOURCES = apps/demo.c
apps_dsm_demo_LDADD = src/libmpidsm.la
bin_PROGRAMS += apps/heat apps/kvstore
apps_heat_SOURCES = apps/heat.c
apps_heat_LDADD = src/libmpidsm.la
apps_kvstore_SOURCES = apps/kvstore.c
apps_kvstore_LDADD = src/libmpidsm.la -lm
bin_PROGRAMS += apps/memsim
apps_memsim_SOURCES = apps/memsim.c
apps_memsim_LDADD = src/libmpidsm.la -lpthread
# Issue 17: put-with-signal (pipeline), distributed arrays (matmul), the xfer benchmark.
apps_dsm_bench_SOURCES += apps/bench_xfer.c
# Issue 14: same-node and other-node peers of a job over several nodes.
apps_dsm_bench_SOURCES += apps/bench_nodes.c
# Issue 16: replicated objects.
apps_dsm_bench_SOURCES += apps/bench_repl.c
bin_PROGRAMS += apps/pipeline
apps_pipeline_SOURCES = apps/pipeline.c
apps_pipeline_LDADD = src/libmpidsm.la
bin_PROGRAMS += apps/matmul
apps_matmul_SOURCES = apps/matmul.c
apps_matmul_LDADD = src/libmpidsm.la
