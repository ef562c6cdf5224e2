#!/usr/bin/env python3
"""A/B of server variants on an already seeded database: req/s, p50 and the server's own CPU
time per request (utime + stime of the process over the wrk run, divided by the requests),
which varies less than req/s on a shared 2-core VM, and the same for PostgreSQL's processes
(all of the machine's: keep other database work off it during a run).

    python3 bench/ab.py --database-url postgres://postgres@127.0.0.1:5432/bk_src \\
        off: on:METRICS_ADDR=127.0.0.1:19464 off: on:METRICS_ADDR=127.0.0.1:19464
    python3 bench/ab.py --database-url … --scenarios create --connections 32 \\
        before:UMKM_BIN=/tmp/umkm-before after:

A variant may name its own binary with UMKM_BIN (the --binary otherwise).

Each variant is LABEL:VAR=VALUE,...: the release binary (`--binary`) started with those extra
environment variables; run variants alternately and compare pairs. Seed the database first
(`DATABASE_URL=… umkm-api seed --generate`, with JWT_SECRET set on PostgreSQL). Needs wrk.
"""
import argparse, json, os, subprocess, time, urllib.request

from bench import CREATE_LUA

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIST = "/api/v1/businesses?district=35.24.05&status=active&limit=50"


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds():
    """CPU time of every PostgreSQL server process (0 when none runs, as on SQLite)."""
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if open(f"/proc/{pid}/comm").read().strip() == "postgres":
                total += cpu_seconds(pid)
        except OSError:
            pass  # the process ended meanwhile
    return total


def variant(args, label, extra):
    password = "ab-password-123456"
    env = dict(os.environ, DATABASE_URL=args.database_url, BIND_ADDR=f"127.0.0.1:{args.port}", JWT_SECRET="x" * 48,
               UMKM_ADMIN_EMAIL="ab@localhost", UMKM_ADMIN_PASSWORD=password, RUST_LOG=args.log_level, **extra)
    base = f"http://127.0.0.1:{args.port}"
    with open(os.path.join(args.workdir, f"ab-{label}.log"), "w") as log:
        server = subprocess.Popen([extra.get("UMKM_BIN", args.binary)], env=env, stdout=log, stderr=log)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        login = urllib.request.Request(f"{base}/api/v1/auth/token", method="POST",
                                       data=json.dumps({"email": "ab@localhost", "password": password}).encode(),
                                       headers={"Content-Type": "application/json"})
        token = json.loads(urllib.request.urlopen(login).read())["access_token"]
        bank_login = urllib.request.Request(f"{base}/api/v1/auth/token", method="POST",
                                            data=json.dumps({"email": "ab-bank@localhost", "password": password}).encode(),
                                            headers={"Content-Type": "application/json"})
        bank_token = json.loads(urllib.request.urlopen(bank_login).read())["access_token"]
        results = []
        # Each create's owner a new person (a NIK of district 99, as bench.py's creates): one
        # NIK for all would make every create a second business of one person, serialized on
        # that person's lock.
        create = json.dumps({"name": "Usaha AB", "owner_name": "Siti Aminah", "owner_nik": "__NIK__",
                             "phone": "081234567890", "kbli": "10792", "district_code": "35.24.05",
                             "address": "Jl. Raya Babat", "annual_revenue_idr": 250000000, "employees": 3,
                             "established_on": "2019-03-01"})
        scenarios = {
            "by_id": ("by id", f'request = function() return wrk.format("GET", "/api/v1/businesses/" .. math.random(1, {args.businesses})) end'),
            "list": ("list page 1", f'request = function() return wrk.format("GET", "{LIST}") end'),
            "create": ("create", CREATE_LUA(create)),
            "pull": ("pull page", 'request = function() return wrk.format("GET", '
                                  '"/api/v1/bank-partners/1/eligible-applicants?limit=50") end'),
        }
        for name, lua in [scenarios[k] for k in args.scenarios.split(",")]:
            script = os.path.join(args.workdir, "ab.lua")
            with open(script, "w") as f:
                who = bank_token if name == "pull page" else token
                f.write(f'wrk.headers["Authorization"] = "Bearer {who}"\nwrk.headers["Accept"] = "application/json"\n{lua}\n')
            before, pg_before = cpu_seconds(server.pid), postgres_cpu_seconds()
            out = subprocess.run(["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.duration}s", "--latency",
                                  "-s", script, base], capture_output=True, text=True, check=True).stdout
            spent = cpu_seconds(server.pid) - before
            pg_spent = postgres_cpu_seconds() - pg_before
            lines = out.splitlines()
            total = int(next(l for l in lines if "requests in" in l).split()[0])
            rps = float(next(l for l in lines if l.startswith("Requests/sec")).split()[1])
            p50 = next(l for l in lines if l.strip().startswith("50%")).split()[1]
            errors = [l.strip() for l in lines if "Non-2xx" in l or "Socket errors" in l]
            results.append(f"{name}: {rps:,.0f} req/s, p50 {p50}, {spent / total * 1e6:.0f} µs CPU/req, "
                           f"PostgreSQL {pg_spent / total * 1e6:.0f} µs/req {' '.join(errors)}")
        print(f"{label:>10}  " + "  |  ".join(results), flush=True)
    finally:
        server.terminate()
        server.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variants", nargs="+", help="LABEL:VAR=VALUE,...")
    p.add_argument("--database-url", required=True)
    p.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "umkm-api"))
    p.add_argument("--businesses", type=int, default=351_000, help="ids to read at random")
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--port", type=int, default=18181)
    p.add_argument("--log-level", default="info")
    p.add_argument("--workdir", default="/tmp")
    p.add_argument("--scenarios", default="by_id,list", help="comma-separated: by_id, list, create, pull (bank 1's user)")
    args = p.parse_args()
    # The users the variants log in as (kept if they exist: then their password must be this one).
    for user in (["--email", "ab@localhost", "--role", "admin"],
                 ["--email", "ab-bank@localhost", "--role", "bank", "--bank-partner", "1"]):
        subprocess.run([args.binary, "user", "create", *user], input="ab-password-123456\n", text=True,
                       capture_output=True,
                       env=dict(os.environ, DATABASE_URL=args.database_url, JWT_SECRET="x" * 48, RUST_LOG="error"))
    for spec in args.variants:
        label, _, assignments = spec.partition(":")
        variant(args, label, dict(a.split("=", 1) for a in assignments.split(",") if a))


if __name__ == "__main__":
    main()
