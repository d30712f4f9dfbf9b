# dsm-bench --plot: draws rma-mpich.png from rma-mpich.dat (run in this directory)
set terminal pngcairo noenhanced size 1280,540 font ",11"
set grid
set key top left
set output "rma-mpich.png"
set multiplot layout 1,2 title "dsm-bench rma: mpidsm beside raw MPI RMA and the shared-memory floor (MPICH Version: 4.0.2, direct path, rank 0 to rank 1 of 2)"
set logscale x 2
set logscale y 10
set format x "%.0b%B"
set xlabel "message size (bytes)"
set title "latency against size"
set ylabel "us per operation (lower is better)"
plot "rma-mpich.dat" index "put_dsm" using 1:($2) with linespoints lw 2 title "mpidsm put", \
     "rma-mpich.dat" index "put_raw" using 1:($2) with linespoints lw 2 title "raw MPI put+flush", \
     "rma-mpich.dat" index "put_shm" using 1:($2) with linespoints lw 2 title "shared-memory floor put", \
     "rma-mpich.dat" index "get_dsm" using 1:($2) with linespoints lw 2 title "mpidsm get", \
     "rma-mpich.dat" index "get_raw" using 1:($2) with linespoints lw 2 title "raw MPI get+flush", \
     "rma-mpich.dat" index "get_shm" using 1:($2) with linespoints lw 2 title "shared-memory floor get"
set title "bandwidth against size"
set ylabel "MB/s (higher is better)"
set key bottom right
plot "rma-mpich.dat" index "put_dsm" using 1:($1 / $2) with linespoints lw 2 title "mpidsm put", \
     "rma-mpich.dat" index "put_raw" using 1:($1 / $2) with linespoints lw 2 title "raw MPI put+flush", \
     "rma-mpich.dat" index "put_shm" using 1:($1 / $2) with linespoints lw 2 title "shared-memory floor put", \
     "rma-mpich.dat" index "get_dsm" using 1:($1 / $2) with linespoints lw 2 title "mpidsm get", \
     "rma-mpich.dat" index "get_raw" using 1:($1 / $2) with linespoints lw 2 title "raw MPI get+flush", \
     "rma-mpich.dat" index "get_shm" using 1:($1 / $2) with linespoints lw 2 title "shared-memory floor get"
unset multiplot
