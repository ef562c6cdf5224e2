#!/usr/bin/env python3
"""What an attacker who can reach /auth/token, or a partner with a slow system, does to everyone
else (issue 28, items 1-4):

    python3 tests/faults/attacks.py [--backend sqlite|postgres]

1. 1,000 hostile logins: over-long e-mails and client ids (up to 4 MiB) and new e-mails. The
   over-long ones are refused (422 / invalid_client) and leave nothing; the others leave one
   fixed-size row each, keyed by an HMAC (no e-mail stored); the figure is the growth of the
   throttle's table.
2. A login flood (24 clients sending wrong passwords for ever-new e-mails) beside an admin's
   reads by id: the reads' median stays within 3x its idle value (argon2 runs with no
   database connection held, at most one check per spare core).
3. A bank's client id in someone else's hands: five wrong secrets from 127.0.0.2 lock that
   source out (429), while the bank's system at 127.0.0.1 still gets its token.
4. A slow partner: a bank's three subscriptions go to a receiver that answers after 4.5 s,
   with a backlog of 18 events; a retailer's receiver (answering at once) gets its 4 events
   within 2 s of the last one's write (deliveries complete independently, partners in turns).

Timing-sensitive: run.sh runs it alone, after the lanes.
"""
import argparse, http.server, multiprocessing, os, secrets, sqlite3, statistics, subprocess, tempfile, threading
import time, urllib.parse

from common import Server, business, check, consent, free_port, pg_database

FLOOD_CLIENTS = 24
SLOW_ANSWER = 4.5  # s: the slow bank's receiver
FAST_BOUND = 2.0  # s: the retailer's events after the last one's write
READS = 1000
MAX_FAILURES = 5


def failures(backend, url):
    """Rows in the throttle's table."""
    sql = "SELECT count(*) FROM login_failures"
    if backend == "postgres":
        return int(subprocess.run(["psql", "-X", "-At", url, "-c", sql], check=True, capture_output=True,
                                  text=True).stdout)
    with sqlite3.connect(url) as conn:
        return conn.execute(sql).fetchone()[0]


def database_bytes(backend, url):
    """The database's size; SQLite's after a checkpoint, so that the write-ahead log's own
    growth and reuse do not count."""
    if backend == "postgres":
        out = subprocess.run(["psql", "-X", "-At", url, "-c", "SELECT pg_database_size(current_database())"],
                             check=True, capture_output=True, text=True).stdout
        return int(out)
    with sqlite3.connect(url) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return os.path.getsize(url)


def reads(server, token, path, n):
    times = []
    for _ in range(n):
        started = time.perf_counter()
        reply = server.request("GET", path, token=token)
        times.append((time.perf_counter() - started) * 1000)
        check(reply.status == 200, f"a read answered {reply.status}")
    return statistics.median(times)


def hostile_logins(server, backend, url, tag):
    before_rows = failures(backend, url)
    before_bytes = database_bytes(backend, url)
    statuses = {}
    huge = "a" * (4 * 1024 * 1024)
    for i in range(1000):
        if i % 10 == 0:  # 100 plausible e-mails: checked, counted
            body, form = {"email": f"guess-{i}-{secrets.token_hex(4)}@attacker.example", "password": "guess guess"}, None
        elif i % 10 < 5:  # over-long e-mails, 1 KiB to 4 MiB
            body, form = {"email": huge[: 1024 << (i % 13)] + "@x.example", "password": "x"}, None
        else:  # over-long client ids
            body, form = None, ("grant_type=client_credentials&client_secret=x&client_id="
                                + huge[: 1024 << (i % 13)])
        if form is None:
            reply = server.request("POST", "/api/v1/auth/token", body, timeout=60)
        else:
            reply = server.request("POST", "/api/v1/auth/token", raw=form.encode(), timeout=60,
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        statuses[reply.status] = statuses.get(reply.status, 0) + 1
        check(reply.status < 500, f"a hostile login answered {reply.status}: {reply.body[:200]!r}")
    rows = failures(backend, url)
    grown = database_bytes(backend, url) - before_bytes
    print(f"{tag} 1,000 hostile logins {dict(sorted(statuses.items()))}: login_failures {before_rows} -> {rows} rows, "
          f"the database grew {grown / 1024:.0f} KiB")
    check(statuses.get(422, 0) == 400 and statuses.get(401, 0) == 600,
          f"expected 400 x 422 (long e-mails) and 600 x 401 (100 wrong, 500 long client ids): {statuses}")
    check(rows - before_rows == 100, f"{rows - before_rows} failures recorded, not the 100 plausible ones")
    check(grown < 1024 * 1024, f"the database grew {grown} bytes for 100 recorded failures")


def attackers(port, stop, sent):
    """FLOOD_CLIENTS threads of wrong logins for ever-new e-mails, in a process of their own (so
    that the reader's timings are not its wait for Python's lock)."""
    def attacker():
        server = Server.__new__(Server)
        server.port = port
        while not stop.is_set():
            email = f"flood-{secrets.token_hex(6)}@attacker.example"
            reply = server.request("POST", "/api/v1/auth/token", {"email": email, "password": "guess guess"}, timeout=60)
            if reply.status not in (401, 429):
                print(f"FAIL: a flood login answered {reply.status}: {reply.body[:200]!r}", flush=True)
                os._exit(1)
            with sent.get_lock():
                sent.value += 1

    threads = [threading.Thread(target=attacker, daemon=True) for _ in range(FLOOD_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def flood(server, token, path, tag):
    idle = reads(server, token, path, READS)
    stop, sent = multiprocessing.Event(), multiprocessing.Value("i", 0)
    process = multiprocessing.Process(target=attackers, args=(server.port, stop, sent))
    process.start()
    deadline = time.monotonic() + 30
    while sent.value < FLOOD_CLIENTS and time.monotonic() < deadline:  # the flood under way
        time.sleep(0.05)
    during = reads(server, token, path, READS)
    stop.set()
    process.join(timeout=120)
    check(process.exitcode == 0, f"the flood's process ended with {process.exitcode}")
    print(f"{tag} an admin's read by id: median {idle:.2f} ms idle, {during:.2f} ms during a flood of "
          f"{FLOOD_CLIENTS} login clients ({sent.value} logins; {during / idle:.1f}x)")
    check(during <= 3 * idle, f"the login flood raised the read's median {during / idle:.1f}x (at most 3x)")


def lockout(server, token, tag):
    created = server.request("POST", "/api/v1/api-clients", {"bank_partner_id": 1, "scopes": ["applicants:read"]}, token)
    check(created.status == 201, f"creating a client answered {created.status}: {created.body[:200]!r}")
    client_id, secret = created.json()["client"]["client_id"], created.json()["client_secret"]

    def grant(secret, source=None):
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": client_id,
                                       "client_secret": secret})
        return server.request("POST", "/api/v1/auth/token", raw=form.encode(), source=source,
                              headers={"Content-Type": "application/x-www-form-urlencoded"}).status

    wrong = [grant("not-the-secret", source="127.0.0.2") for _ in range(MAX_FAILURES + 3)]
    check(wrong == [401] * MAX_FAILURES + [429] * 3, f"the guesser got {wrong}")
    check(grant(secret, source="127.0.0.2") == 429, "the guesser's source is not locked")
    right = grant(secret)
    print(f"{tag} {len(wrong)} wrong secrets from 127.0.0.2 ({wrong.count(429)} answered 429); "
          f"the bank's system at 127.0.0.1 got {right}")
    check(right == 200, f"the bank's right secret answered {right} during someone else's failures")


class Receiver:
    """A webhook receiver on loopback answering 200 after `delay`; the time each request came."""

    def __init__(self, delay):
        self.delay, self.arrivals, self.lock = delay, [], threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.arrivals.append(time.monotonic())
                time.sleep(receiver.delay)
                try:
                    self.send_response(200)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def count(self):
        with self.lock:
            return len(self.arrivals)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def slow_partner(server, token, tag):
    slow, fast = Receiver(SLOW_ANSWER), Receiver(0)
    try:
        for _ in range(3):
            reply = server.request("POST", "/api/v1/webhook-subscriptions", {
                "bank_partner_id": 1, "url": slow.url, "event_types": ["applicant.eligible"]}, token)
            check(reply.status == 201, f"a bank's subscription answered {reply.status}: {reply.body[:200]!r}")
        reply = server.request("POST", "/api/v1/webhook-subscriptions", {
            "retail_partner_id": 1, "url": fast.url, "event_types": ["curation.submitted"]}, token)
        check(reply.status == 201, f"the retailer's subscription answered {reply.status}: {reply.body[:200]!r}")
        for n in range(6):  # the bank's backlog: 6 applicants x 3 subscriptions
            made = server.request("POST", "/api/v1/businesses", business(1000 + n), token)
            check(made.status == 201, f"a business answered {made.status}")
            consent(server, token, made.json())
            applied = server.request("POST", "/api/v1/applications", {
                "business_id": made.json()["id"], "programme_id": 2, "amount_requested_idr": 20_000_000,
                "purpose": "modal kerja"}, token)
            check(applied.status == 201, f"an application answered {applied.status}: {applied.body[:200]!r}")
        deadline = time.monotonic() + 10
        while slow.count() < 3 and time.monotonic() < deadline:  # the slow bank's first deliveries under way
            time.sleep(0.05)
        check(slow.count() >= 3, "the slow bank's deliveries never started")
        for n in range(4):
            made = server.request("POST", "/api/v1/businesses", business(2000 + n), token)
            product = server.request("POST", "/api/v1/products", {
                "business_id": made.json()["id"], "name": f"Produk {n}", "category": "food"}, token)
            check(product.status == 201, f"a product answered {product.status}")
            submitted = server.request("POST", "/api/v1/curations", {
                "product_id": product.json()["id"], "retail_partner_id": 1}, token)
            check(submitted.status == 201, f"a curation answered {submitted.status}: {submitted.body[:200]!r}")
        written = time.monotonic()
        while fast.count() < 4 and time.monotonic() < written + 30:
            time.sleep(0.01)
        check(fast.count() == 4, f"the retailer got {fast.count()} of its 4 events in 30 s")
        took = max(fast.arrivals) - written
        print(f"{tag} a retailer's 4 events arrived {max(took, 0) * 1000:.0f} ms after the last one's write, beside a "
              f"bank whose receiver answers in {SLOW_ANSWER} s (3 subscriptions, 18 events; "
              f"{slow.count()} of them sent so far)")
        check(took <= FAST_BOUND, f"the retailer waited {took:.1f} s behind the slow bank (at most {FAST_BOUND} s)")
    finally:
        slow.stop()
        fast.stop()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=["postgres", "sqlite"], default="sqlite")
    p.add_argument("--only", choices=["logins", "flood", "lockout", "webhooks"], help="one of the four parts")
    a = p.parse_args()
    tag = f"[{a.backend}]"
    with tempfile.TemporaryDirectory() as tmp:
        url = pg_database("umkm_faults_attacks") if a.backend == "postgres" else f"{tmp}/attacks.sqlite3"
        server = Server(f"attacks-{a.backend}", url, {"RUST_LOG": "info", "MAX_BODY_BYTES": str(8 * 1024 * 1024),
                                                      "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"})
        server.start()
        try:
            token = server.admin()
            created = server.request("POST", "/api/v1/businesses", business(1), token)
            check(created.status == 201, f"create answered {created.status}")
            path = f"/api/v1/businesses/{created.json()['id']}"
            if a.only in (None, "logins"):
                hostile_logins(server, a.backend, url, tag)
            if a.only in (None, "flood"):
                flood(server, token, path, tag)
            if a.only in (None, "lockout"):
                lockout(server, token, tag)
            if a.only in (None, "webhooks"):
                slow_partner(server, token, tag)
        finally:
            server.stop()
    print(f"attacks ({a.backend}): ok")


if __name__ == "__main__":
    main()
