# dsm-bench --plot: draws sync-openmpi.png from sync-openmpi.dat (run in this directory)
set terminal pngcairo noenhanced size 1280,540 font ",11"
set grid
set key top left
set output "sync-openmpi.png"
set title "dsm-bench sync: lock throughput against ranks (k ranks on one lock; 1 = uncontended) (Open MPI v4.1.4, 4 ranks)"
set key top right
set xlabel "ranks taking the lock"
set ylabel "million acquisitions per second (higher is better)"
set logscale y 10
set xtics 1
set xrange [0.5:*]
set offsets 0, 0.5, 0, 0
plot "sync-openmpi.dat" index "dsm_mutex" using 1:($2) with linespoints lw 2 title "dsm_mutex (MCS)", \
     "sync-openmpi.dat" index "win_lock" using 1:($2) with linespoints lw 2 title "MPI_Win_lock mutex", \
     "sync-openmpi.dat" index "cas_spin" using 1:($2) with linespoints lw 2 title "CAS spin lock"
