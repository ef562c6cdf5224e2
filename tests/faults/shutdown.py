#!/usr/bin/env python3
"""Graceful shutdown: SIGTERM during load finishes the requests in flight and exits 0.

    python3 tests/faults/shutdown.py [--backend sqlite|postgres] [--businesses 30000]

Seeds `--businesses` businesses, starts the server, and puts it under load: four clients stream
the whole list as CSV (reading slowly, so each download is certainly in flight), eight create
businesses in a loop. Once every download has its headers, the server gets SIGTERM. Every
download must then complete with all its rows, every create answered 201 must be stored, the
server must exit with status 0, and new connections after the signal are refused (not hung).
"""
import argparse, http.client, subprocess, tempfile, threading, time

from common import BINARY, Server, business, check, pg_database


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=["postgres", "sqlite"], default="sqlite")
    p.add_argument("--businesses", type=int, default=30_000)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = pg_database("umkm_faults_shutdown") if a.backend == "postgres" else f"{tmp}/shutdown.sqlite3"
        server = Server(f"shutdown-{a.backend}", url)
        subprocess.run([BINARY, "seed", "--generate", "--businesses", str(a.businesses)], env=server.env,
                       check=True, capture_output=True)
        server.start()
        run(server, a)


def run(server, a):
    token = server.admin()
    downloads, creates, lock = [], [], threading.Lock()
    headers_in = threading.Semaphore(0)
    stop = threading.Event()

    def download():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        conn.request("GET", "/api/v1/businesses", headers={"Authorization": f"Bearer {token}", "Accept": "text/csv"})
        response = conn.getresponse()
        headers_in.release()
        rows, last = 0, b""
        while chunk := response.read(32 * 1024):
            rows += chunk.count(b"\n")
            last = chunk
            time.sleep(0.01)
        with lock:
            # Complete: every seeded row (and any created before the download began), ending in a
            # whole line.
            downloads.append((response.status, rows - 1, last.endswith(b"\n")))

    def create(k):
        n = 0
        while not stop.is_set():
            n += 1
            try:
                reply = server.request("POST", "/api/v1/businesses", business(k * 1_000_000 + n), token, timeout=30)
            except OSError:
                with lock:
                    creates.append(("refused", None))
                return
            with lock:
                creates.append((reply.status, reply.json().get("id") if reply.status == 201 else None))

    threads = [threading.Thread(target=download) for _ in range(4)]
    threads += [threading.Thread(target=create, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for _ in range(4):
        check(headers_in.acquire(timeout=30), "a download did not start")
    time.sleep(0.2)
    signalled = time.monotonic()
    server.process.terminate()
    # A new connection after the signal is refused, not left hanging.
    time.sleep(0.5)
    try:
        late = server.request("GET", "/healthz", timeout=5).status
    except OSError as e:
        late = type(e).__name__
    code = server.process.wait(timeout=60)
    exited = time.monotonic() - signalled
    stop.set()
    for t in threads:
        t.join()

    acknowledged = [id_ for status, id_ in creates if status == 201]
    other = [status for status, _ in creates if status not in (201, "refused")]
    print(f"[{a.backend}] SIGTERM with 4 downloads of {a.businesses} rows and 8 creating clients in flight; "
          f"exit status {code} after {exited:.2f} s; a new request after the signal: {late}")
    print(f"[{a.backend}] downloads: {downloads}; creates: {len(acknowledged)} answered 201, "
          f"{sum(1 for s, _ in creates if s == 'refused')} refused after the signal, other answers {other}")
    check(code == 0, f"exit status {code}")
    check(late != 200, "the server still accepted a new request after SIGTERM")
    check(len(downloads) == 4 and all(s == 200 and rows >= a.businesses and whole for s, rows, whole in downloads),
          f"downloads cut short: {downloads}")
    check(not other, f"creates answered {other}")

    # Every acknowledged create is stored.
    server.token = None
    server.start()
    token = server.admin()
    for id_ in acknowledged:
        reply = server.request("GET", f"/api/v1/businesses/{id_}", token=token)
        check(reply.status == 200, f"acknowledged business {id_} answers {reply.status}")
    print(f"[{a.backend}] all {len(acknowledged)} acknowledged creates are stored")
    server.stop()
    print("shutdown: ok")


if __name__ == "__main__":
    main()
