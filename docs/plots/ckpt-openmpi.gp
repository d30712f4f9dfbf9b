# dsm-bench --plot: draws ckpt-openmpi.png from ckpt-openmpi.dat (run in this directory)
set terminal pngcairo noenhanced size 1280,540 font ",11"
set grid
set key top left
set output "ckpt-openmpi.png"
set title "dsm-bench ckpt: checkpoint write and restore bandwidth beside dd (Open MPI v4.1.4, 4 ranks x 64 MiB, 224 MiB per checkpoint)"
set ylabel "MB/s (higher is better)"
set style fill solid 0.7
set boxwidth 0.35
set xrange [0.4:2.6]
set yrange [0:*]
set xtics ("checkpoint write (dd conv=fsync)" 1, "restore (cat | dd, cached)" 2)
plot "ckpt-openmpi.dat" index "dsm_bw" using ($1 - 0.18):2 with boxes title "mpidsm", \
     "ckpt-openmpi.dat" index "dd_bw" using ($1 + 0.18):2 with boxes title "dd"
