"""Data keys rotated under load (issue 29): `umkm-api keys rotate` (the encryption key, then the
blind index's key) while 16 clients create businesses, read them back, correct their owners'
phones and look their NIKs up, against the real server (two of them on one PostgreSQL
database). Nothing may fail or be lost: every request answers 2xx, every read gives back what
was written, and afterwards every value opens (the whole list exported), the old keys can be
retired, and a server started with the new key file alone serves the same data.

    python3 rotation.py --backend sqlite
    python3 rotation.py --backend postgres
"""
import argparse, csv, io, os, subprocess, tempfile, threading, time

from common import BINARY, Server, business, check, data_key_file, pg_database, sqlite_url

CLIENTS = 16


def keys_command(server, *args):
    """`umkm-api keys …` with the server's configuration; its output."""
    done = subprocess.run([BINARY, "keys", *args], env=dict(server.env, RUST_LOG="warn"), capture_output=True,
                          text=True, timeout=600)
    check(done.returncode == 0, f"keys {' '.join(args)} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    print(f"keys {' '.join(args)}: {done.stdout.strip()}", flush=True)
    return done.stdout


class Load:
    """The clients: each creates, reads back, corrects and looks up its own businesses."""

    def __init__(self, servers, token):
        self.servers, self.token = servers, token
        self.expected = {}  # business id -> (owner_id, nik, phone as stored)
        self.lock = threading.Lock()
        self.failures = []
        self.requests = 0
        self.stop = threading.Event()

    def call(self, server, method, path, body=None):
        reply = server.request(method, path, body, self.token, timeout=60)
        with self.lock:
            self.requests += 1
            if not 200 <= reply.status < 300:
                self.failures.append(f"{method} {path} on {server.name}: {reply.status} {reply.body[:300]!r}")
        return reply

    def client(self, c):
        n = c * 100_000
        while not self.stop.is_set():
            n += 1
            server = self.servers[n % len(self.servers)]
            body = business(n)
            made = self.call(server, "POST", "/api/v1/businesses", body)
            if made.status != 201:
                continue
            made = made.json()
            phone = "+62" + body["phone"][1:]
            with self.lock:
                self.expected[made["id"]] = (made["owner_id"], body["owner_nik"], phone)
            # Read back through the other server: what was written comes back whole.
            other = self.servers[(n + 1) % len(self.servers)]
            got = self.call(other, "GET", f"/api/v1/businesses/{made['id']}")
            if got.status == 200 and (got.json()["owner_nik"], got.json()["phone"]) != (body["owner_nik"], phone):
                self.failures.append(f"business {made['id']} read back {got.json()['owner_nik']}")
            if n % 3 == 0:
                phone = f"+62813{n % 100_000_000:08d}"
                fixed = self.call(server, "PATCH", f"/api/v1/persons/{made['owner_id']}", {"phone": phone})
                if fixed.status == 200:
                    with self.lock:
                        self.expected[made["id"]] = (made["owner_id"], body["owner_nik"], phone)
            if n % 5 == 0:
                found = self.call(other, "GET", f"/api/v1/persons?nik={body['owner_nik']}")
                if found.status == 200 and [p["id"] for p in found.json()["data"]] != [made["owner_id"]]:
                    self.failures.append(f"NIK look-up of person {made['owner_id']} gave {found.json()['data']}")

    def run(self, seconds_before, work, seconds_after):
        threads = [threading.Thread(target=self.client, args=(c,)) for c in range(CLIENTS)]
        for t in threads:
            t.start()
        try:
            time.sleep(seconds_before)
            work()
            time.sleep(seconds_after)
        finally:
            self.stop.set()
            for t in threads:
                t.join()


def exported(server, token):
    """Every business as the CSV export gives it: id -> (nik, phone)."""
    reply = server.request("GET", "/api/v1/businesses", token=token, headers={"Accept": "text/csv"}, timeout=300)
    check(reply.status == 200, f"export: {reply.status}")
    rows = csv.DictReader(io.StringIO(reply.body.decode()))
    return {int(r["id"]): (r["owner_nik"], r["phone"]) for r in rows}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--seconds", type=float, default=3.0, help="load before and after each rotation")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="umkm-rotation-")
    url = pg_database("umkm_faults_rotation") if args.backend == "postgres" else sqlite_url(workdir)
    # A key file of this run's own: the rotation rewrites it.
    shared = {"DATA_KEY_FILE": data_key_file(workdir)}
    a = Server(f"rotation-{args.backend}-a", url, shared).start()
    servers = [a]
    if args.backend == "postgres":
        shared.update({"JWT_SECRET": a.secret, "UMKM_ADMIN_PASSWORD": a.password})
        b = Server(f"rotation-{args.backend}-b", url, shared)
        b.secret, b.password = a.secret, a.password
        servers.append(b.start())
    try:
        token = a.admin()
        load = Load(servers, token)
        started = time.monotonic()

        def rotate_both():
            keys_command(a, "rotate")
            keys_command(a, "rotate", "--index")

        load.run(args.seconds, rotate_both, args.seconds)
        elapsed = time.monotonic() - started
        check(not load.failures, f"{len(load.failures)} failures, first: {load.failures[:5]}")
        print(f"{args.backend}: {load.requests} requests by {CLIENTS} clients in {elapsed:.1f} s, "
              f"{len(load.expected)} businesses, every one 2xx and read back whole", flush=True)

        # Every value opens: the whole list, exported, holds what each client last wrote.
        rows = exported(a, token)
        lost = [i for i, (_, nik, phone) in load.expected.items() if rows.get(i) != (nik, phone)]
        check(not lost, f"{len(lost)} businesses differ after the rotation, e.g. {lost[:3]}: "
                        f"{[rows.get(i) for i in lost[:3]]} vs {[load.expected[i] for i in lost[:3]]}")
        # The old keys go, and the new file alone serves the same data after a restart.
        keys_command(a, "retire", "--encryption", "1")
        keys_command(a, "retire", "--index", "1")
        text = open(shared["DATA_KEY_FILE"]).read()
        check(" 1 " not in text, f"key 1 is still in the key file: {text.splitlines()}")
        for server in servers:
            server.stop()
        a.start()
        check(exported(a, a.login()) == rows, "a server on the new key file alone exports other data")
        print(f"{args.backend}: {len(rows)} businesses export the same with keys 1 retired and a restart",
              flush=True)
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
