#!/usr/bin/env python3
"""The benchmark driver behind bench/run.sh (which builds the release binary and installs wrk).

For each back end: a fresh database, `umkm-api seed --generate`, the release server on a
loopback port, then wrk at fixed concurrency for a fixed time per scenario and, for the
read-by-id and list scenarios on PostgreSQL, pgbench running the same SQL straight against the
database in the same run. Prints one Markdown table (and writes it to --out), then a CSV-export
memory check: peak RSS while streaming 100,000 rows against the idle RSS. Standard library only.
"""
import argparse, base64, json, os, re, secrets, shutil, signal, sqlite3, subprocess, sys, tempfile, time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# UMKM_BIN: another build (the release before, for the issues' same-run comparisons).
BINARY = os.environ.get("UMKM_BIN", os.path.join(ROOT, "target", "release", "umkm-api"))
DISTRICT = "35.24.05"  # Babat: one of the larger districts in the generated data.
LIST = f"/api/v1/businesses?district={DISTRICT}&status=active&limit=50"
# The statistics the dashboards open, read from the summary tables (issue 14).
STATS = ["/stats/overview", "/stats/businesses?group_by=district,scale",
         "/stats/businesses?group_by=kbli_division,is_ikm", "/stats/businesses?group_by=established_year"]
COLUMNS = ("b.id, b.name, b.nib, b.npwp, b.kbli, b.kbli_division, b.district_code, b.village, b.address, "
           "b.capital_idr, b.annual_revenue_idr, b.employees, b.established_on, b.status, "
           "b.consented_to_bank_sharing_at, b.scale, b.scale_basis, b.is_ikm, b.industry_scale, b.created_at, "
           "b.updated_at, b.version")


def rows_sql(db, where):
    """The baseline's SELECT of the businesses matching `where` (on `b`) with their owners' fields,
    all from the businesses' own columns: the copy of the person (sealed) since issue 29's owner
    copies, the plaintext owner columns before persons (a release before it, run with UMKM_BIN),
    and joined from persons in between (the first release of persons)."""
    def has(column):
        return int(db.scalar("SELECT count(*) FROM information_schema.columns WHERE table_name = 'businesses' "
                             f"AND column_name = '{column}' AND table_schema = current_schema()")
                   if db.backend == "postgres" else
                   db.scalar(f"SELECT count(*) FROM pragma_table_info('businesses') WHERE name = '{column}'"))
    if has("person_nik"):
        return (f"SELECT {COLUMNS}, b.person_name, b.person_nik, b.person_phone, b.person_email "
                f"FROM businesses b WHERE {where}")
    if has("owner_nik"):
        return f"SELECT {COLUMNS}, b.owner_name, b.owner_nik, b.phone, b.email FROM businesses b WHERE {where}"
    return (f"SELECT {COLUMNS}, p.name, p.nik, p.phone, p.email FROM businesses b "
            f"JOIN persons p ON p.id = b.owner_id WHERE {where}")


def CREATE_LUA(body):
    # Each create's owner is a new person, as most new businesses' are: a NIK of its own
    # (district 99, which the generated data never uses, so no seeded person's name conflicts).
    return ('wrk.headers["Content-Type"] = "application/json"\n'
            f'local body = {json.dumps(body)}\n'
            # wrk seeds every thread's generator alike: the second thread would make the first
            # one's persons again (a second business of each, waiting on the first one's lock).
            'local threads = 0\n'
            'setup = function(thread) threads = threads + 1; thread:set("tid", threads) end\n'
            'init = function() math.randomseed(os.time() * 1000 + tid) end\n'
            'request = function()\n'
            '  local nik = string.format("352499%02d%02d%02d%04d", math.random(1, 28), math.random(1, 12), '
            'math.random(60, 99), math.random(1, 9999))\n'
            '  return wrk.format("POST", "/api/v1/businesses", nil, (body:gsub("__NIK__", nik)))\n'
            'end')


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def call(base, path, token=None, body=None, accept=None, method=None):
    req = urllib.request.Request(base + path, data=body, method=method or ("POST" if body else "GET"))
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if body:
        req.add_header("Content-Type", "application/json")
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.status, r.read()


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak(pid):
    # Writing 5 to clear_refs resets VmHWM (the peak RSS) to the current RSS.
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


class Database:
    """A fresh database of one back end, and a way to run one query on it."""

    def __init__(self, backend, pg_url, workdir):
        self.backend = backend
        if backend == "postgres":
            # The database is on this machine: no TLS, for the server and for pgbench alike (with
            # libpq's default, sslmode=prefer, each round trip is encrypted on loopback: by id
            # read 2,900 a second with it and 3,400 without, the database's CPU per read 235 -> 192 µs).
            self.admin = pg_url.rstrip("/") + "/postgres?sslmode=disable"
            self.url = pg_url.rstrip("/") + "/umkm_bench?sslmode=disable"
            self.psql("-c", "DROP DATABASE IF EXISTS umkm_bench WITH (FORCE)", "-c", "CREATE DATABASE umkm_bench")
        else:
            self.url = os.path.join(workdir, "bench.sqlite3")

    def psql(self, *args, url=None):
        return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url or self.admin, *args],
                              check=True, capture_output=True, text=True).stdout.strip()

    def log_bytes(self):
        """The disclosure log's size in bytes: its table with every index on PostgreSQL; the whole
        database file on SQLite (its WAL included: a read scenario writes nothing else)."""
        if self.backend == "postgres":
            return int(self.scalar("SELECT pg_total_relation_size('disclosures')"))
        return int(self.scalar("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"))

    def scalar(self, sql):
        if self.backend == "postgres":
            return self.psql("-c", sql, url=self.url)
        with sqlite3.connect(self.url) as c:
            return c.execute(sql).fetchone()[0]


def pg_cpu_s():
    """CPU seconds the PostgreSQL server's processes have spent: every live one's, and, in the
    postmaster's counters of its reaped children, those that exited (pgbench's backends, which
    end with its run). Read from /proc, so the server must run on this machine."""
    hz = os.sysconf("SC_CLK_TCK")
    total, postgres = 0, {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if comm == "postgres":
            postgres[pid] = fields
    for pid, fields in postgres.items():
        # fields[1] is the parent; [11], [12] user and system time; [13], [14] those of reaped children.
        total += int(fields[11]) + int(fields[12])
        if fields[1] not in postgres:  # the postmaster
            total += int(fields[13]) + int(fields[14])
    return total / hz


def wrk_script(token, request_lua):
    return f"""
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Accept"] = "application/json"
{request_lua}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK {{\\"requests\\":%d,\\"duration_us\\":%d,\\"socket_errors\\":%d,\\"non_2xx\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d,\\"max_us\\":%d}}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def run_wrk(base, token, lua, args, workdir, connections=None, threads=None):
    path = os.path.join(workdir, "scenario.lua")
    with open(path, "w") as f:
        f.write(wrk_script(token, lua))
    connections, threads = connections or args.connections, threads or args.threads
    cpu = pg_cpu_s()
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{args.duration}s",
                          "--timeout", "10s", "-s", path, base], check=True, capture_output=True, text=True).stdout
    cpu = pg_cpu_s() - cpu
    data = json.loads(re.search(r"^WRK (.*)$", out, re.M).group(1))
    return {"rps": data["requests"] / (data["duration_us"] / 1e6), "p50": data["p50_us"] / 1000,
            "p99": data["p99_us"] / 1000, "max": data["max_us"] / 1000,
            "errors": data["socket_errors"] + data["non_2xx"], "requests": data["requests"],
            "db_us": cpu / max(data["requests"], 1) * 1e6}


def run_pgbench(db, sql, args, workdir):
    script = os.path.join(workdir, "baseline.sql")
    with open(script, "w") as f:
        f.write(sql)
    for old in os.listdir(workdir):
        if old.startswith("pgbench_log"):
            os.remove(os.path.join(workdir, old))
    # The prepared protocol, as the server's queries are (issue 32: what the database can do).
    cpu = pg_cpu_s()
    out = subprocess.run(["pgbench", "-n", "-M", "prepared", "-c", str(args.connections), "-j", str(args.threads),
                          "-T", str(args.duration), "-f", script, "-l", "--log-prefix",
                          os.path.join(workdir, "pgbench_log"), db.url], check=True, capture_output=True, text=True).stdout
    time.sleep(1)  # pgbench's backends exit after it: counted once reaped (or a second run's start)
    cpu = pg_cpu_s() - cpu
    latencies = []
    for name in os.listdir(workdir):
        if name.startswith("pgbench_log"):
            with open(os.path.join(workdir, name)) as f:
                latencies += [int(line.split()[2]) for line in f if line.strip()]
    latencies.sort()
    tps = float(re.search(r"tps = ([0-9.]+)", out).group(1))
    return {"rps": tps, "p50": latencies[len(latencies) // 2] / 1000,
            "p99": latencies[int(len(latencies) * 0.99)] / 1000, "max": latencies[-1] / 1000,
            "db_us": cpu / max(len(latencies), 1) * 1e6}


def cursor_for(body, deep_id):
    """The list's own cursor, with its last id swapped for `deep_id`."""
    raw = json.loads(body)["next_cursor"]
    spec, values = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    assert values == [{"I": values[0]["I"]}], f"unexpected cursor shape {values}"
    encoded = json.dumps([spec, [{"I": deep_id}]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(encoded).decode().rstrip("=")


def bench_backend(backend, args, n, workdir, rows):
    db = Database(backend, args.pg_url, workdir)
    env = dict(os.environ, DATABASE_URL=db.url, BIND_ADDR=f"127.0.0.1:{args.port}",
               JWT_SECRET=secrets.token_urlsafe(48), UMKM_ADMIN_EMAIL="bench@localhost",
               UMKM_ADMIN_PASSWORD=secrets.token_urlsafe(18), RUST_LOG=args.log_level,
               DATA_KEY_FILE=os.path.join(workdir, f"data_keys-{backend}"))
    subprocess.run([BINARY, "keys", "init", env["DATA_KEY_FILE"]], check=False, capture_output=True)
    log(f"[{backend}] seeding {n:,} businesses")
    t = time.perf_counter()
    subprocess.run([BINARY, "seed", "--generate", "--businesses", str(n)], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    seed_s = time.perf_counter() - t
    log(f"[{backend}] seeded in {seed_s:.1f} s")
    server_log = open(os.path.join(workdir, f"server-{backend}.log"), "w")
    server = subprocess.Popen([BINARY], env=env, stdout=server_log, stderr=server_log)
    base = f"http://127.0.0.1:{args.port}"
    try:
        for _ in range(300):
            try:
                if call(base, "/readyz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        idle_kb = status_kb(server.pid, "VmRSS")
        _, body = call(base, "/api/v1/auth/token",
                       body=json.dumps({"email": "bench@localhost", "password": env["UMKM_ADMIN_PASSWORD"]}).encode())
        token = json.loads(body)["access_token"]
        bank_password = secrets.token_urlsafe(18)
        call(base, "/api/v1/users", token, json.dumps({"email": "bank@localhost", "password": bank_password,
                                                         "role": "bank", "bank_partner_id": 1}).encode())
        _, body = call(base, "/api/v1/auth/token",
                       body=json.dumps({"email": "bank@localhost", "password": bank_password}).encode())
        bank_token = json.loads(body)["access_token"]

        # First, on the idle server: a CSV export of 100,000 rows (the newest by updated_at),
        # streamed, with the peak RSS against the idle RSS.
        since = db.scalar(f"SELECT updated_at FROM businesses ORDER BY updated_at DESC, id DESC LIMIT 1 OFFSET {min(100_000, n) - 1}")
        since = since.replace(" ", "T").split(".")[0] + "Z"
        reset_peak(server.pid)
        t = time.perf_counter()
        _, body = call(base, f"/api/v1/businesses?updated_since={since}", token, accept="text/csv")
        export_s = time.perf_counter() - t
        export = {"rows": body.count(b"\n") - 1, "mb": len(body) / 1e6, "seconds": export_s,
                  "peak_mb": status_kb(server.pid, "VmHWM") / 1024}
        where = f"b.district_code = '{DISTRICT}' AND b.status = 'active'"
        matching = int(db.scalar(f"SELECT count(*) FROM businesses b WHERE {where}"))
        deep_id = int(db.scalar(f"SELECT id FROM businesses b WHERE {where} ORDER BY id LIMIT 1 OFFSET {matching * 9 // 10}"))
        _, body = call(base, LIST, token)
        deep = f"{LIST}&cursor={cursor_for(body, deep_id)}"
        create = json.dumps({"name": "Usaha Bench", "owner_name": "Siti Aminah", "owner_nik": "__NIK__",
                             "phone": "081234567890", "kbli": "10792", "district_code": DISTRICT,
                             "address": "Jl. Raya Babat", "annual_revenue_idr": 250000000, "employees": 3,
                             "established_on": "2019-03-01"})
        scenarios = [
            ("business by id", f'request = function() return wrk.format("GET", "/api/v1/businesses/" .. math.random(1, {n})) end',
             f"\\set id random(1, {n})\n{rows_sql(db, 'b.id = :id')};\n"),
            ("filtered list, page 1", f'request = function() return wrk.format("GET", "{LIST}") end',
             f"{rows_sql(db, where)} ORDER BY b.id LIMIT 51;\n"),
            ("same list, deep cursor (90 %)", f'request = function() return wrk.format("GET", "{deep}") end',
             f"{rows_sql(db, f'{where} AND b.id > {deep_id}')} ORDER BY b.id LIMIT 51;\n"),
            *[(stat, f'request = function() return wrk.format("GET", "/api/v1{stat}") end', None) for stat in STATS],
            ("create business", CREATE_LUA(create), None),
            ("bank pull page (bank user)",
             'request = function() return wrk.format("GET", "/api/v1/bank-partners/1/eligible-applicants?limit=100") end',
             None),
        ]
        for name, lua, sql in scenarios:
            who = bank_token if name.startswith("bank") else token
            log(f"[{backend}] {name}")
            grown = db.log_bytes()
            result = run_wrk(base, who, lua, args, workdir)
            # The disclosure log's growth (issue 30), in MB per million requests (= bytes a request).
            # (SQLite measures its whole file: not for creates, which grow the rest too.)
            if backend == "postgres" or not name.startswith("create"):
                result["log_mb"] = (db.log_bytes() - grown) / max(result["requests"], 1)
            baseline = (run_pgbench(db, sql, args, workdir)
                        if sql and backend == "postgres" and not args.no_baseline else None)
            rows.append((name, backend, result, baseline))
            if name == "business by id":
                # The tail from run to run (issue 32): four more consecutive runs, each with its
                # own pgbench run on the same SELECT right after it.
                for run in range(2, 6):
                    log(f"[{backend}] {name}, run {run}")
                    result = run_wrk(base, who, lua, args, workdir)
                    baseline = (run_pgbench(db, sql, args, workdir)
                                if sql and backend == "postgres" and not args.no_baseline else None)
                    rows.append((f"{name}, run {run}", backend, result, baseline))
        # The statistics one request at a time (a dashboard opened by one officer), and creates
        # at twice the concurrency: 32 writers appending to the same summary group.
        for stat in STATS:
            log(f"[{backend}] {stat}, sequential")
            lua = f'request = function() return wrk.format("GET", "/api/v1{stat}") end'
            rows.append((f"{stat}, sequential", backend, run_wrk(base, token, lua, args, workdir, 1, 1), None))
        log(f"[{backend}] create business, {2 * args.connections} connections")
        rows.append((f"create business, {2 * args.connections} connections", backend,
                     run_wrk(base, token, CREATE_LUA(create), args, workdir, 2 * args.connections), None))
        peak_kb = status_kb(server.pid, "VmHWM")  # Over all scenarios (reset before the export).

        # Metrics off against on (issue 19): a second server on the same database with
        # METRICS_ADDR set, reading by id alternately with the first (which records none).
        on_env = dict(env, BIND_ADDR=f"127.0.0.1:{args.port + 1}", METRICS_ADDR=f"127.0.0.1:{args.port + 2}")
        with open(os.path.join(workdir, f"server-{backend}-metrics.log"), "w") as on_log:
            on_server = subprocess.Popen([BINARY], env=on_env, stdout=on_log, stderr=on_log)
            on_base = f"http://127.0.0.1:{args.port + 1}"
            try:
                for _ in range(300):
                    try:
                        if call(on_base, "/readyz")[0] == 200:
                            break
                    except OSError:
                        time.sleep(0.1)
                by_id = scenarios[0][1]
                # Off, on, on, off: a drift of the machine over the four runs cancels in the means.
                for round_, label, url in ((1, "off", base), (1, "on", on_base), (2, "on", on_base), (2, "off", base)):
                    log(f"[{backend}] business by id, metrics {label} ({round_})")
                    rows.append((f"business by id, metrics {label} ({round_})", backend,
                                 run_wrk(url, token, by_id, args, workdir), None))
            finally:
                on_server.send_signal(signal.SIGTERM)
                on_server.wait(timeout=60)

        return {"seed_s": seed_s, "idle_mb": idle_kb / 1024, "peak_mb": peak_kb / 1024, "export": export,
                "verify": stats_verify(env)}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        server_log.close()


def stats_verify(env):
    """`umkm-api stats verify` after every scenario: the summaries still equal the data."""
    done = subprocess.run([BINARY, "stats", "verify"], env=dict(env, RUST_LOG="warn"), capture_output=True, text=True)
    log(done.stdout.strip() or done.stderr.strip())
    return "clean" if done.returncode == 0 else f"FAILED: {done.stderr.strip()[-300:]}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--businesses", type=int, default=351_000, help="businesses to generate (default 351,000)")
    p.add_argument("--scale", type=int, default=1, help="multiply --businesses (10 for the 3.5 million run)")
    p.add_argument("--backends", default="postgres,sqlite")
    p.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--port", type=int, default=18080)
    p.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    p.add_argument("--no-baseline", action="store_true",
                   help="skip pgbench (bench/replica.sh: only the server's queries reach the nodes)")
    p.add_argument("--log-level", default="info", help="RUST_LOG of the server (info logs every request)")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results.md"))
    args = p.parse_args()
    n = args.businesses * args.scale
    rows, memory = [], {}
    with tempfile.TemporaryDirectory(prefix="umkm-bench-") as workdir:
        for backend in args.backends.split(","):
            memory[backend] = bench_backend(backend, args, n, workdir, rows)

    lines = [f"{n:,} businesses; wrk -t{args.threads} -c{args.connections} -d{args.duration}s per scenario; "
             f"pgbench -M prepared -c{args.connections} -j{args.threads} -T{args.duration}; load generators on the same machine; "
             f"server RUST_LOG={args.log_level}.", "",
             "| scenario | back end | req/s | p50 ms | p99 ms | max ms | p99 / p50 | errors | database CPU µs per request | "
             "baseline req/s | baseline p50 / p99 / max ms | baseline database CPU µs per transaction | req/s ratio | "
             "server peak RSS MB | disclosure log MB per million requests |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, backend, r, b in rows:
        base = (f"{b['rps']:,.0f} | {b['p50']:.2f} / {b['p99']:.2f} / {b['max']:.2f} | {b['db_us']:.0f} | "
                f"{r['rps'] / b['rps']:.2f}×" if b else "— | — | — | —")
        db_us = format(r["db_us"], ".0f") if backend == "postgres" else "—"
        lines.append(f"| {name} | {backend} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['max']:.2f} | "
                     f"{r['p99'] / r['p50']:.1f}× | {r['errors']} | {db_us} | {base} | {memory[backend]['peak_mb']:.0f} | "
                     f"{'—' if 'log_mb' not in r else format(r['log_mb'], '.0f')} |")
    lines.append("")
    lines.append("| back end | seed time s | idle RSS MB | CSV export rows | export MB | export s | peak RSS during the export MB | stats verify after the run |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for backend, m in memory.items():
        e = m["export"]
        lines.append(f"| {backend} | {m['seed_s']:.1f} | {m['idle_mb']:.0f} | {e['rows']:,} | {e['mb']:.1f} | "
                     f"{e['seconds']:.2f} | {e['peak_mb']:.0f} | {m['verify']} |")
    table = "\n".join(lines)
    print(table)
    with open(args.out, "w") as f:
        f.write(table + "\n")
    errors = sum(r["errors"] for _, _, r, _ in rows)
    if errors:
        sys.exit(f"{errors} requests failed")
    if any(m["verify"] != "clean" for m in memory.values()):
        sys.exit("the statistics' summaries differ from the data after the run")


if __name__ == "__main__":
    main()
