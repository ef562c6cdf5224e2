#!/usr/bin/env bash
# The benchmark: builds the release binary, makes sure wrk and pgbench are here, then runs
# bench/bench.py (fresh PostgreSQL database and SQLite file, `seed --generate`, the server on a
# loopback port, wrk per scenario, pgbench baselines). Arguments go to bench.py, e.g.
#   bench/run.sh                      # 351,000 businesses, both back ends
#   bench/run.sh --scale 10           # 3.51 million
#   bench/run.sh --backends postgres --duration 20
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
    echo "wrk is missing; installing it from Debian's packages" >&2
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get install -y -q wrk >/dev/null
fi
command -v pgbench >/dev/null || { echo "pgbench is missing (Debian: postgresql-contrib or postgresql-client)" >&2; exit 1; }
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
fi

cargo build --release --locked
exec python3 bench/bench.py "$@"
