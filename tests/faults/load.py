#!/usr/bin/env python3
"""Nothing lost under concurrency.

    python3 tests/faults/load.py --backend postgres|sqlite [--seconds 10] [--clients 32]

1. `--clients` threads create businesses, and an application for every second business each
   created, for `--seconds`; afterwards the 201 answers must equal the new rows in the database,
   and no answer may be a 5xx (or anything but 201).
2. The same number of clients create the same NIB at once: exactly one 201, the rest 409.
3. They PATCH one business with the same If-Match at once: exactly one 200, the rest 412; the
   stored version went up by exactly one.
"""
import argparse, sqlite3, subprocess, tempfile, threading, time
from collections import Counter

from common import Server, business, check, pg_database, stats_verify


def count_rows(backend, url, table):
    if backend == "postgres":
        out = subprocess.run(["psql", "-X", "-At", url, "-c", f"SELECT count(*) FROM {table}"],
                             check=True, capture_output=True, text=True).stdout
        return int(out.strip())
    with sqlite3.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def at_once(clients, action):
    """Runs `action(i)` on `clients` threads released together; returns the statuses."""
    barrier, statuses, lock = threading.Barrier(clients), Counter(), threading.Lock()

    def worker(i):
        barrier.wait()
        status = action(i).status
        with lock:
            statuses[status] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=["postgres", "sqlite"], required=True)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--clients", type=int, default=32)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = pg_database("umkm_faults_load") if a.backend == "postgres" else f"{tmp}/load.sqlite3"
        server = Server(f"load-{a.backend}", url, {"DB_POOL_SIZE": "16"}).start()
        try:
            run(server, a, url)
        finally:
            server.stop()


def run(server, a, url):
    token = server.admin()
    businesses_before = count_rows(a.backend, url, "businesses")
    applications_before = count_rows(a.backend, url, "applications")
    statuses, lock, counter = Counter(), threading.Lock(), iter(range(10**9))
    created = {"businesses": 0, "applications": 0}
    deadline = time.monotonic() + a.seconds

    def worker():
        mine = 0
        while time.monotonic() < deadline:
            with lock:
                n = next(counter)
            reply = server.request("POST", "/api/v1/businesses", business(n), token)
            with lock:
                statuses[("business", reply.status)] += 1
            if reply.status != 201:
                continue
            with lock:
                created["businesses"] += 1
            mine += 1
            if mine % 2 == 0:
                application = {"business_id": reply.json()["id"], "programme_id": 2,
                               "amount_requested_idr": 20_000_000, "purpose": "Modal kerja"}
                reply = server.request("POST", "/api/v1/applications", application, token)
                with lock:
                    statuses[("application", reply.status)] += 1
                    if reply.status == 201:
                        created["applications"] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    requests = sum(statuses.values())
    new_businesses = count_rows(a.backend, url, "businesses") - businesses_before
    new_applications = count_rows(a.backend, url, "applications") - applications_before
    print(f"[{a.backend}] {a.clients} clients, {elapsed:.1f} s: {requests} requests "
          f"({requests / elapsed:.0f}/s), statuses {dict(statuses)}")
    print(f"[{a.backend}] businesses: {created['businesses']} answered 201, {new_businesses} new rows; "
          f"applications: {created['applications']} answered 201, {new_applications} new rows")
    check(all(status == 201 for (_, status) in statuses), f"unexpected statuses {dict(statuses)}")
    check(created["businesses"] == new_businesses, "business 201s differ from new rows")
    check(created["applications"] == new_applications, "application 201s differ from new rows")
    check(created["businesses"] > 0 and created["applications"] > 0, "nothing was created")

    # One NIB, many creators.
    before = count_rows(a.backend, url, "businesses")
    same = business(999_999_999, name="Usaha Kembar")
    race = at_once(a.clients, lambda i: server.request("POST", "/api/v1/businesses", same, token))
    print(f"[{a.backend}] {a.clients} creates of one NIB at once: {dict(race)}")
    check(race == Counter({201: 1, 409: a.clients - 1}), f"same NIB: {dict(race)}")
    check(count_rows(a.backend, url, "businesses") == before + 1, "same NIB: not exactly one new row")

    # One version, many writers.
    target = server.request("POST", "/api/v1/businesses", business(888_888_888), token)
    check(target.status == 201, f"create for the PATCH race gave {target.status}")
    path, etag = target.header("location"), target.header("etag")
    race = at_once(a.clients, lambda i: server.request(
        "PATCH", path, {"employees": 10 + i}, token,
        headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"}))
    print(f"[{a.backend}] {a.clients} PATCHes with one If-Match at once: {dict(race)}")
    check(race == Counter({200: 1, 412: a.clients - 1}), f"same If-Match: {dict(race)}")
    after = server.request("GET", path, token=token).json()
    check(after["version"] == target.json()["version"] + 1, f"version went to {after['version']}")
    # The statistics' summaries, kept by every one of those writes, equal the data.
    stats_verify(url, f"[{a.backend}]")
    print(f"[{a.backend}] load: ok")


if __name__ == "__main__":
    main()
