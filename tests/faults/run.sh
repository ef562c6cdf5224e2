#!/usr/bin/env bash
# The fault, load and abuse scripts (tests/faults/*.py), each against the real server binary on
# a loopback port and bounded in time. Needs PostgreSQL on 127.0.0.1:5432 (trust auth) and the
# PostgreSQL server binaries (for outage.py's and cluster.py's own clusters); prepare.py installs
# what the scripts need (Debian's HAProxy, wrk, prometheus, Chromium; pinned virtualenvs) first.
# Extra arguments are files for the secrets check to read as well (CI passes the output of its
# test runs).
#
# The scripts run in lanes side by side, each lane one script after another with its output in
# a file of its own (printed whole when the lane ends) and its own range of server ports. A lane
# holds scripts that share no database, cluster or port with another lane: schemathesis (the
# longest, CPU-bound) on each back end in a lane of its own, cluster.py (tight time bounds)
# after the SQLite one, when the short scripts are done and only schemathesis runs beside it;
# the short CPU-bound scripts one after another in the third; the scripts that mostly wait
# (restarts, retries, outages) in the fourth.
set -euo pipefail
cd "$(dirname "$0")/../.."
FAULTS_LOG_DIR=$(mktemp -d -t umkm-faults-XXXXXX)
export FAULTS_LOG_DIR
trap 'echo "server logs and reports: $FAULTS_LOG_DIR" >&2' ERR
extra=()
for file in "$@"; do extra+=("$(realpath "$file")"); done

# The binary `cargo test` builds and runs: `cargo build` alone resolves features without the
# dev-dependencies and would compile the crate (and a few dependencies) a second time.
UMKM_BIN=$(cargo test --locked --no-run --quiet --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if (m.get("reason") == "compiler-artifact" and m["target"]["kind"] == ["bin"]
            and not m["profile"]["test"] and m.get("executable")):
        print(m["executable"])
')
test -x "$UMKM_BIN"
export UMKM_BIN
echo "server binary: $UMKM_BIN"
cd tests/faults
python3 prepare.py

run() {
    local limit=$1
    shift
    printf '\n--> %s (at most %s s)\n' "$*" "$limit"
    local start=$SECONDS status=0
    timeout --kill-after=10 "$limit" python3 "$@" || status=$?
    printf '%s\t%s\t%s\t%s\n' "$lane_name" "$((SECONDS - start))" "$status" "$*" >>"$FAULTS_LOG_DIR/times.tsv"
    printf '[%s] %-40s %4d s  %s\n' "$lane_name" "$*" "$((SECONDS - start))" \
        "$([ "$status" = 0 ] && echo ok || echo "FAILED ($status)")" >&3
    return "$status"
}

# lane NAME PORTS SCRIPT... : the scripts one after another in the background (each "LIMIT
# SCRIPT ARGS..."); the lane stops at its first failure.
exec 3>&1
lanes=()
pids=()
lane() {
    local name=$1 ports=$2
    shift 2
    (
        lane_name=$name
        export FAULTS_PORTS=$ports
        for script in "$@"; do
            # shellcheck disable=SC2086 # a script and its arguments, split on spaces
            run $script || exit 1
        done
    ) >"$FAULTS_LOG_DIR/lane-$name.txt" 2>&1 &
    lanes+=("$name")
    pids+=($!)
}

started=$SECONDS
lane fuzz-sqlite 20000-22999 \
    "900 fuzz.py --backend sqlite --max-examples 50" \
    "300 cluster.py --short"
lane fuzz-postgres 23000-25999 \
    "900 fuzz.py --backend postgres --max-examples 50"
lane load 26000-28999 \
    "300 hostile.py --backend sqlite" \
    "300 hostile.py --backend postgres" \
    "180 load.py --backend sqlite --seconds 10" \
    "180 load.py --backend postgres --seconds 10" \
    "300 crash.py --rounds 3" \
    "180 disclosure_kill.py --backend sqlite" \
    "180 disclosure_kill.py --backend postgres" \
    "300 shutdown.py --backend sqlite" \
    "300 shutdown.py --backend postgres" \
    "300 backup.py --backend sqlite" \
    "300 backup.py --backend postgres" \
    "300 metrics.py --backend sqlite" \
    "300 metrics.py --backend postgres" \
    "300 typescript_client.py" \
    "300 docs_browser.py"
lane wait 29000-31999 \
    "120 instances.py --backend sqlite" \
    "120 instances.py --backend postgres" \
    "300 webhooks.py --backend sqlite" \
    "300 webhooks.py --backend postgres" \
    "180 rotation.py --backend sqlite" \
    "240 rotation.py --backend postgres" \
    "600 outage.py --rounds 2"

failed=()
for i in "${!pids[@]}"; do
    status=0
    wait "${pids[$i]}" || status=$?
    printf '\n======== lane %s (%s) ========\n' "${lanes[$i]}" "$([ "$status" = 0 ] && echo passed || echo FAILED)"
    cat "$FAULTS_LOG_DIR/lane-${lanes[$i]}.txt"
    [ "$status" = 0 ] || failed+=("${lanes[$i]}")
done
printf '\nlanes done in %d s\n' "$((SECONDS - started))"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED lanes: ${failed[*]}; server logs and reports: $FAULTS_LOG_DIR" >&2
    exit 1
fi

# Timing figures that another lane's load would distort: alone, after the lanes.
lane_name=alone
run 300 attacks.py --backend sqlite
run 300 attacks.py --backend postgres
lane_name=secrets
run 120 no_secrets_leak.py "${extra[@]}"
printf '\nscript times (wall, s), by lane:\n'
sort -s -k1,1 "$FAULTS_LOG_DIR/times.tsv" | awk -F'\t' '{ printf "  %-8s %5d  %s\n", $1, $2, $4 }'
rm -rf "$FAULTS_LOG_DIR"
