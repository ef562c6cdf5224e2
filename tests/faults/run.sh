#!/usr/bin/env bash
# The fault, load and abuse scripts (tests/faults/*.py), each against the real server binary on
# a loopback port and bounded in time. Needs PostgreSQL on 127.0.0.1:5432 (trust auth) and the
# PostgreSQL server binaries (for outage.py's and cluster.py's own clusters); metrics.py installs
# wrk and promtool (Debian's wrk and prometheus packages), cluster.py HAProxy, if they are missing. Extra arguments are files for the
# secrets check to read as well (CI passes the output of its test runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
FAULTS_LOG_DIR=$(mktemp -d -t umkm-faults-XXXXXX)
export FAULTS_LOG_DIR
trap 'echo "server logs and reports: $FAULTS_LOG_DIR" >&2' ERR
extra=()
for file in "$@"; do extra+=("$(realpath "$file")"); done
cargo build --locked --quiet
cd tests/faults
run() {
    local limit=$1
    shift
    printf '\n--> %s (at most %s s)\n' "$*" "$limit"
    timeout --kill-after=10 "$limit" python3 "$@"
}
run 600 fuzz.py --backend sqlite --max-examples 50
run 600 fuzz.py --backend postgres --max-examples 50
run 300 hostile.py --backend sqlite
run 300 hostile.py --backend postgres
run 180 load.py --backend sqlite --seconds 10
run 180 load.py --backend postgres --seconds 10
run 300 crash.py --rounds 3
run 300 shutdown.py --backend sqlite
run 300 shutdown.py --backend postgres
run 600 outage.py --rounds 2
run 300 backup.py --backend sqlite
run 300 backup.py --backend postgres
run 120 instances.py --backend sqlite
run 120 instances.py --backend postgres
run 300 cluster.py --short
run 300 metrics.py --backend sqlite
run 300 metrics.py --backend postgres
run 300 webhooks.py --backend sqlite
run 300 webhooks.py --backend postgres
run 300 typescript_client.py
run 300 docs_browser.py
run 120 no_secrets_leak.py "${extra[@]}"
rm -rf "$FAULTS_LOG_DIR"
