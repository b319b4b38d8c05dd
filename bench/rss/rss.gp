# bench/rss/rss.gp -- chart of bench/rss/run.sh's TSV (RSS over time per
# allocator).  Variables (gnuplot -e): datafile, outfile, allocs (names
# separated by spaces), free1, free2 (seconds: vertical markers).
set terminal svg size 1000,560 dynamic font "sans,12" background "white"
set output outfile
set datafile separator "\t"
set datafile commentschars "#"
set title "RSS over time: 1 GiB burst, freed, idle 10 s; 256 MiB burst, freed, idle 10 s"
set xlabel "time (s)"
set ylabel "RSS (MiB)"
set grid
set key top right
set yrange [0:*]
f1 = real(free1)
f2 = real(free2)
if (f1 > 0) { set arrow 1 from f1, graph 0 to f1, graph 1 nohead lw 1 lc rgb "#aaaaaa" }
if (f2 > 0) { set arrow 2 from f2, graph 0 to f2, graph 1 nohead lw 1 lc rgb "#aaaaaa" }
set label 1 "gray lines: the frees (gomalloc run)" at graph 0.01, graph 0.97 left font ",10"
plot for [i=1:words(allocs)] datafile skip 1 \
	using (strcol(1) eq word(allocs, i) ? $2 : NaN):(strcol(1) eq word(allocs, i) ? $3 : NaN) \
	with lines lw 2 title word(allocs, i)
