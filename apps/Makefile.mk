# Programs built on the public API only (mpidsm.h, libmpidsm).
bin_PROGRAMS += apps/dsm-bench apps/dsm-demo
apps_dsm_bench_SOURCES = apps/bench.c apps/bench.h apps/bench_rma.c apps/bench_sync.c
apps_dsm_bench_LDADD = src/libmpidsm.la -lm
apps_dsm_demo_SOURCES = apps/demo.c
apps_dsm_demo_LDADD = src/libmpidsm.la
