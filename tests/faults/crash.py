#!/usr/bin/env python3
"""Crash safety on SQLite: kill -9 in the middle of a write load, restart, lose nothing.

    python3 tests/faults/crash.py [--rounds 3] [--clients 16]

Each round: `--clients` threads create businesses on the embedded SQLite back end; after a
random 1–3 s the server is killed with SIGKILL. The server is started again on the same file;
every business whose create was answered 201 must be there (read back through the API and in
the file itself), and `PRAGMA integrity_check` must answer ok.
"""
import argparse, random, signal, sqlite3, tempfile, threading, time

from common import Server, business, check, stats_verify


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clients", type=int, default=16)
    a = p.parse_args()
    rng = random.Random(9)
    acknowledged = {}
    counter = iter(range(10**9))
    lock = threading.Lock()
    unexpected = []  # Answers other than 201, checked on the main thread.
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/crash.sqlite3"
        server = Server("crash-sqlite", path).start()
        for round_ in range(1, a.rounds + 1):
            token = server.admin()
            stop = threading.Event()
            in_flight_errors = [0]

            def worker():
                while not stop.is_set():
                    with lock:
                        n = next(counter)
                    try:
                        reply = server.request("POST", "/api/v1/businesses", business(n), token, timeout=10)
                    except OSError:
                        with lock:
                            in_flight_errors[0] += 1
                        return
                    with lock:
                        if reply.status == 201:
                            acknowledged[reply.json()["id"]] = business(n)["nib"]
                        else:
                            unexpected.append((reply.status, reply.body[:200]))

            threads = [threading.Thread(target=worker) for _ in range(a.clients)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(1, 3))
            with lock:
                before_kill = len(acknowledged)
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            stop.set()
            for t in threads:
                t.join()
            check(not unexpected, f"creates answered {unexpected[:3]}")
            print(f"round {round_}: SIGKILL after {before_kill} acknowledged creates in this run so far; "
                  f"{in_flight_errors[0]} requests cut off in flight; {len(acknowledged)} acknowledged in all")

            # Restart on the same file: everything acknowledged is there.
            server.token = None
            started = time.monotonic()
            server.start()
            print(f"round {round_}: restarted and serving in {time.monotonic() - started:.2f} s")
            token = server.admin()
            sample = rng.sample(sorted(acknowledged), min(50, len(acknowledged)))
            for id_ in sample:
                reply = server.request("GET", f"/api/v1/businesses/{id_}", token=token)
                check(reply.status == 200, f"acknowledged business {id_} answers {reply.status} after the crash")
                check(reply.json()["nib"] == acknowledged[id_], f"business {id_} has another NIB")
            with sqlite3.connect(path) as conn:
                stored = dict(conn.execute("SELECT id, nib FROM businesses"))
                integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            missing = [i for i in acknowledged if stored.get(i) != acknowledged[i]]
            check(not missing, f"{len(missing)} acknowledged businesses lost, e.g. {missing[:5]}")
            check(integrity == "ok", f"integrity_check: {integrity}")
            print(f"round {round_}: {len(acknowledged)} acknowledged, {len(stored)} rows in the file, "
                  f"0 missing, integrity_check ok")
            # Every create's summary delta committed with it, or neither did.
            stats_verify(path, f"round {round_}")
        server.stop()
    print("crash: ok")


if __name__ == "__main__":
    main()
