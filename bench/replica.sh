#!/usr/bin/env bash
# The benchmark with a streaming read replica, to see where the reads go: a primary and a hot
# standby of its own (initdb, pg_basebackup -R, ports 5450/5451, pg_stat_statements on both), the
# PostgreSQL scenarios of bench.py against the primary with DATABASE_READ_URLS naming the
# replica, then the SELECT statements each node ran, from pg_stat_statements. pgbench baselines
# are skipped: they would run on the primary. Arguments go to bench.py, e.g.
#   bench/replica.sh                  # 351,000 businesses
#   bench/replica.sh --duration 5
# Needs the PostgreSQL server binaries (/usr/lib/postgresql/*/bin) and pg_stat_statements
# (Debian's postgresql package has both); as root, the clusters run as the postgres user.
set -euo pipefail
cd "$(dirname "$0")/.."
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PRIMARY=${PRIMARY_PORT:-5450}
REPLICA=${REPLICA_PORT:-5451}
dir=$(mktemp -d -t umkm-replica-XXXXXX)
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then su postgres -c "$*"; else sh -c "$*"; fi
}
[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
cleanup() {
    as_pg "$PGBIN/pg_ctl -D $dir/replica -m immediate stop" >/dev/null 2>&1 || true
    as_pg "$PGBIN/pg_ctl -D $dir/primary -m immediate stop" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT

as_pg "$PGBIN/initdb -D $dir/primary -A trust -U postgres" >/dev/null
cat >> "$dir/primary/postgresql.conf" <<CONF
port = $PRIMARY
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_stat_statements'
max_connections = 200
CONF
as_pg "$PGBIN/pg_ctl -D $dir/primary -l $dir/primary.log -w start" >/dev/null
# New databases (bench.py's umkm_bench) are made from template1, so they carry the extension.
psql -X -q -h 127.0.0.1 -p "$PRIMARY" -U postgres -d template1 -c "CREATE EXTENSION pg_stat_statements"
as_pg "$PGBIN/pg_basebackup -h 127.0.0.1 -p $PRIMARY -U postgres -D $dir/replica -R"
sed -i "s/^port = $PRIMARY\$/port = $REPLICA/" "$dir/replica/postgresql.conf"
as_pg "$PGBIN/pg_ctl -D $dir/replica -l $dir/replica.log -w start" >/dev/null

if ! command -v wrk >/dev/null; then
    echo "wrk is missing; installing it from Debian's packages" >&2
    if [ "$(id -u)" -eq 0 ]; then apt-get install -y -q wrk >/dev/null; else sudo apt-get install -y -q wrk >/dev/null; fi
fi
cargo build --release --locked
DATABASE_READ_URLS="postgres://postgres@127.0.0.1:$REPLICA/umkm_bench" \
    python3 bench/bench.py --backends postgres --no-baseline --out bench/results-replica.md \
    --pg-url "postgres://postgres@127.0.0.1:$PRIMARY" "$@"

# The server's reads on each node; the replica checks' own position queries left out.
reads() {
    psql -X -At -h 127.0.0.1 -p "$1" -U postgres -d umkm_bench -c "
        SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'umkm_bench')
          AND query ILIKE 'select%' AND query NOT ILIKE '%wal_%lsn%'"
}
top() {
    psql -X -At -F ' | ' -h 127.0.0.1 -p "$1" -U postgres -d umkm_bench -c "
        SELECT calls, left(regexp_replace(query, '\s+', ' ', 'g'), 90) FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'umkm_bench')
          AND query ILIKE 'select%' AND query NOT ILIKE '%wal_%lsn%'
        ORDER BY calls DESC LIMIT 6"
}
primary_reads=$(reads "$PRIMARY")
replica_reads=$(reads "$REPLICA")
total=$((primary_reads + replica_reads))
{
    echo
    echo "SELECT statements run (pg_stat_statements, the replica checks left out): primary $primary_reads, replica $replica_reads;"
    echo "the primary's share of reads: $(( total > 0 ? 100 * primary_reads / total : 0 )) %."
    echo
    echo "The most frequent SELECTs on the primary (calls | statement):"
    echo '```'
    top "$PRIMARY"
    echo '```'
    echo "and on the replica:"
    echo '```'
    top "$REPLICA"
    echo '```'
} | tee -a bench/results-replica.md
