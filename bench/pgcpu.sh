#!/usr/bin/env bash
# pgbench with the database server's CPU per transaction: the machine's busy time over the run
# minus pgbench's own, divided by the transactions (pgbench's backends exit with the run, so
# their counters cannot be read after it). Keep other work off the machine meanwhile.
#
#   bench/pgcpu.sh DATABASE [pgbench arguments…]
#   bench/pgcpu.sh umkm_bench -n -c 4 -j 2 -T 10 -M prepared -f batch.sql
#
# bench/README.md ("The disclosure log, second cost") measured the log's statements with it.
set -euo pipefail
db=$1
shift
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
before=$(busy)
out=$(/usr/bin/time -f "PGBENCH_CPU %U %S" pgbench -h "${PGHOST:-127.0.0.1}" -U "${PGUSER:-postgres}" "$@" "$db" 2>&1)
after=$(busy)
n=$(echo "$out" | awk '/number of transactions actually processed/{print $6}' | cut -d/ -f1)
tps=$(echo "$out" | awk '/^tps/{print $3}')
own=$(echo "$out" | awk '/PGBENCH_CPU/{print $2+$3}')
python3 -c "import os; hz = os.sysconf('SC_CLK_TCK'); print(f'tps {float(\"$tps\"):.0f}, database server CPU {(($after - $before) / hz - $own) / $n * 1e6:.1f} µs per transaction')"
