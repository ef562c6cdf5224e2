#!/usr/bin/env python3
"""Database outage: 503 with Retry-After while PostgreSQL is down, service again when it is back.

    python3 tests/faults/outage.py [--rounds 2]

Owns a throwaway PostgreSQL cluster (initdb into a temporary directory, a free loopback port,
password authentication), so that stopping it touches nothing else on the machine. The server
runs against it; then, each round, the cluster is stopped and every operation of the served
OpenAPI document is called: each must answer a 503 problem with Retry-After (never hang past
the bound, never leak the database URL or password), `/readyz` must fail and `/healthz` pass.
The cluster is started again and the same server process must serve reads and writes again
without a restart; the time until `/readyz` passes is the recovery time.
"""
import argparse, glob, json, os, re, secrets, shutil, subprocess, tempfile, time

from common import Server, business, check, free_port

BOUND_S = 10  # The pool waits 5 s for a connection; nothing may take longer than this.


def pg_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class Cluster:
    """A PostgreSQL cluster in a temporary directory, run as the `postgres` user when we are root."""

    def __init__(self, directory):
        self.dir, self.port = directory, free_port()
        self.password = secrets.token_urlsafe(16)
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(directory, "postgres")
        pwfile = os.path.join(directory, "pw")
        with open(pwfile, "w") as f:
            f.write(self.password)
        if self.as_user:
            shutil.chown(pwfile, "postgres")
        self.data = os.path.join(directory, "data")
        self.run(pg_bin("initdb"), "-D", self.data, "-U", "umkm", "--pwfile", pwfile, "-A", "scram-sha-256",
                 "--no-sync")
        self.url = f"postgres://umkm:{self.password}@127.0.0.1:{self.port}"

    def run(self, *args):
        subprocess.run([*self.as_user, *args], check=True, capture_output=True)

    def start(self):
        self.run(pg_bin("pg_ctl"), "-D", self.data, "-w", "-l", os.path.join(self.dir, "pg.log"), "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self):
        self.run(pg_bin("pg_ctl"), "-D", self.data, "-w", "-m", "fast", "stop")


def operations(server):
    """Every (method, path) of the served OpenAPI document, with ids filled in."""
    spec = server.request("GET", "/api-docs/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete") or path == "/healthz":
                continue  # /healthz is the one operation that does not need the database.
            query = []
            for param in op.get("parameters", []):
                if param["in"] == "query" and param.get("required"):
                    schema = param["schema"]
                    schema = schemas[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema
                    query.append(f"{param['name']}={schema.get('enum', ['district'])[0]}")
            url = re.sub(r"\{[^}]+\}", "1", path) + ("?" + "&".join(query) if query else "")
            yield method.upper(), url


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        cluster = Cluster(tmp)
        cluster.start()
        try:
            subprocess.run(["psql", "-X", "-q", f"{cluster.url}/postgres", "-c", "CREATE DATABASE umkm"],
                           check=True, capture_output=True)
            server = Server("outage-postgres", f"{cluster.url}/umkm").start()
            try:
                for round_ in range(1, a.rounds + 1):
                    outage(server, cluster, round_)
            finally:
                server.stop()
        finally:
            try:
                cluster.stop()
            except subprocess.CalledProcessError:
                pass
    print("outage: ok")


def outage(server, cluster, round_):
    token = server.admin()
    reply = server.request("POST", "/api/v1/businesses", business(round_), token)
    check(reply.status == 201, f"create before the outage: {reply.status}")
    identity_read = time.monotonic()  # The server trusts this caller for IDENTITY_TTL (5 s).
    pid = server.process.pid

    cluster.stop()
    stopped = time.monotonic()
    calls, slowest, rejected, cached = 0, 0.0, 0, 0
    # Valid requests for the main writes and the login; every other operation with an empty body,
    # which the server may reject (400/422) without the database.
    valid = [("POST", "/api/v1/auth/token", {"email": "admin@faults.test", "password": server.password}),
             ("POST", "/api/v1/businesses", business(50 + round_)),
             ("PATCH", "/api/v1/businesses/1", {"employees": 7})]
    others = [(m, p, {} if m in ("POST", "PUT", "PATCH") else None) for m, p in operations(server)]
    for method, path, body in [("GET", "/readyz", None), *valid, *others]:
        headers = {"If-Match": '"1"'} if method in ("PATCH", "DELETE") else {}
        if method == "PATCH":
            headers["Content-Type"] = "application/merge-patch+json"
        started = time.monotonic()
        reply = server.request(method, path, body, token, headers=headers, timeout=BOUND_S + 5)
        took = time.monotonic() - started
        calls, slowest = calls + 1, max(slowest, took)
        where = f"{method} {path} with the database down"
        if body == {} and reply.status in (400, 422):
            rejected += 1
            continue
        if path == "/api/v1/auth/me" and reply.status == 200 and started - identity_read < 5.0:
            # Who the caller is needs no database while the identity read before the outage is
            # trusted (README, Roles: 5 s), and /auth/me needs nothing else.
            cached += 1
            continue
        check(reply.status == 503, f"{where}: {reply.status} {reply.body[:200]!r}")
        check(reply.header("content-type") == "application/problem+json", f"{where}: not a problem document")
        check(reply.header("retry-after"), f"{where}: no Retry-After")
        check(took < BOUND_S, f"{where}: took {took:.1f} s")
        check(cluster.password not in reply.body.decode() and "127.0.0.1" not in reply.body.decode(),
              f"{where}: the answer names the database")
    health = server.request("GET", "/healthz")
    check(health.status == 200, f"/healthz with the database down: {health.status}")
    print(f"round {round_}: database stopped; {calls} calls: {calls - rejected - cached} answered 503 problem + "
          f"Retry-After, {rejected} empty bodies rejected (422) before any database work, {cached} /auth/me "
          f"from the identity read before the outage; slowest "
          f"{slowest:.2f} s; /readyz 503, /healthz 200")

    cluster.start()
    restarted = time.monotonic()
    while server.request("GET", "/readyz").status != 200:
        check(time.monotonic() - restarted < 30, "not ready 30 s after the database came back")
        time.sleep(0.05)
    recovery = time.monotonic() - restarted
    # Every pooled connection died with the old server: the next requests must all succeed.
    for n in range(20):
        reply = server.request("GET", "/api/v1/businesses?limit=5", token=token)
        check(reply.status == 200, f"list after recovery: {reply.status} {reply.body[:200]!r}")
    reply = server.request("POST", "/api/v1/businesses", business(100 + round_), token)
    check(reply.status == 201, f"create after recovery: {reply.status} {reply.body[:200]!r}")
    check(server.process.pid == pid and server.process.poll() is None, "the server restarted")
    print(f"round {round_}: database back after {restarted - stopped:.1f} s down; /readyz passed "
          f"{recovery:.2f} s after it started; same process (pid {pid}) reads and writes again")


if __name__ == "__main__":
    main()
