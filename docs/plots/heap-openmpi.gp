# dsm-bench --plot: draws heap-openmpi.png from heap-openmpi.dat (run in this directory)
set terminal pngcairo noenhanced size 1280,540 font ",11"
set grid
set key top left
set output "heap-openmpi.png"
set multiplot layout 1,2 title "dsm-bench heap: allocation cost against size (Open MPI v4.1.4, 2 ranks)"
set logscale x 2
set logscale y 10
set format x "%.0b%B"
set xlabel "block size (bytes)"
set title "local alloc+free, mpidsm beside glibc malloc"
set ylabel "CPU ns per alloc+free (lower is better)"
plot "heap-openmpi.dat" index "pair_dsm" using 1:($2) with linespoints lw 2 title "dsm_alloc+dsm_free, one pair", \
     "heap-openmpi.dat" index "pair_malloc" using 1:($2) with linespoints lw 2 title "malloc+free, one pair", \
     "heap-openmpi.dat" index "batch_dsm" using 1:($2) with linespoints lw 2 title "dsm_alloc+dsm_free, batches of 1000", \
     "heap-openmpi.dat" index "batch_malloc" using 1:($2) with linespoints lw 2 title "malloc+free, batches of 1000"
set title "collective alloc+free, mpidsm beside an MPI window"
set ylabel "us per alloc+free (lower is better)"
plot "heap-openmpi.dat" index "coll_dsm" using 1:($2) with linespoints lw 2 title "dsm_alloc_all+dsm_free_all", \
     "heap-openmpi.dat" index "coll_mpi" using 1:($2) with linespoints lw 2 title "MPI_Win_allocate+MPI_Win_free"
unset multiplot
