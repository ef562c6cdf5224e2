#!/usr/bin/env python3
"""List-page latency and export memory on N generated businesses (issue 3's measurement).

Starts nothing: point it at a running release server and its PID.
    python3 bench/lists.py --url http://127.0.0.1:8080 --pid PID --email E --password P [--businesses 100000]
Loads the businesses through POST /businesses/import (50,000 rows a request), then times list
pages (first, deep via cursor, filtered) sequentially and streams a CSV export while sampling
the server's RSS. Standard library only.
"""
import argparse, json, time, urllib.request, threading, statistics

def call(url, token=None, body=None, ctype="application/json", accept=None):
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if token: req.add_header("Authorization", f"Bearer {token}")
    if body is not None: req.add_header("Content-Type", ctype)
    if accept: req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.status, r.read()

def business(i):
    return {"name": f"Usaha {i:06d}", "owner_name": f"Pemilik {i}",
            "owner_nik": f"3524{1 + i % 27:02d}{1 + i % 28 + 40 * (i % 2):02d}{1 + i % 12:02d}{60 + i % 40:02d}{1 + i % 9999:04d}",
            "phone": f"0812{i:08d}", "nib": f"9{i:012d}", "kbli": "10750" if i % 20 == 0 else "47111",
            "district_code": f"35.24.{1 + i % 27:02d}", "address": "Jl. Raya",
            "annual_revenue_idr": (i * 7919) % 60_000_000_000, "capital_idr": (i * 104729) % 12_000_000_000,
            "employees": i % 40, "established_on": f"{1990 + i % 34}-01-01"}

def rss_kb(pid, field="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field): return int(line.split()[1])

def timed(fn, n):
    out = []
    for _ in range(n):
        t = time.perf_counter(); fn(); out.append((time.perf_counter() - t) * 1000)
    out.sort()
    return statistics.median(out), out[int(len(out) * 0.99) - 1]

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True); p.add_argument("--pid", type=int, required=True)
    p.add_argument("--email", required=True); p.add_argument("--password", required=True)
    p.add_argument("--businesses", type=int, default=100_000); p.add_argument("--skip-load", action="store_true")
    a = p.parse_args()
    api = a.url + "/api/v1"
    _, body = call(api + "/auth/token", body=json.dumps({"email": a.email, "password": a.password}).encode())
    token = json.loads(body)["access_token"]
    if not a.skip_load:
        t = time.perf_counter()
        for start in range(0, a.businesses, 50_000):
            rows = [business(i) for i in range(start, min(start + 50_000, a.businesses))]
            call(api + "/businesses/import", token, json.dumps(rows).encode())
        print(f"import of {a.businesses} businesses: {time.perf_counter() - t:.1f} s")
    # A cursor deep into the list: walk pages of 500 to the last tenth.
    cursor, path = None, api + "/businesses?limit=500"
    for _ in range(a.businesses // 500 * 9 // 10):
        _, body = call(path + (f"&cursor={cursor}" if cursor else ""), token)
        cursor = json.loads(body)["next_cursor"]
    scenarios = {
        "page 1 (limit 50)": lambda: call(api + "/businesses?limit=50", token),
        "deep page (90 %)": lambda: call(api + f"/businesses?limit=50&cursor={cursor}", token),
        "filtered page 1": lambda: call(api + "/businesses?district=35.24.05&is_ikm=false&scale=mikro&limit=50", token),
        "sorted by -name": lambda: call(api + "/businesses?sort=-name&limit=50", token),
        "q=usaha 0999": lambda: call(api + "/businesses?q=usaha%200999&limit=50", token),
        "count=true": lambda: call(api + "/businesses?count=true&limit=1", token),
    }
    print(f"{'scenario':24} {'p50 ms':>8} {'p99 ms':>8}")
    for name, fn in scenarios.items():
        p50, p99 = timed(fn, 200)
        print(f"{name:24} {p50:8.2f} {p99:8.2f}")
    idle = rss_kb(a.pid); peak = [idle]; done = threading.Event()
    def sample():
        while not done.is_set(): peak[0] = max(peak[0], rss_kb(a.pid)); time.sleep(0.01)
    threading.Thread(target=sample, daemon=True).start()
    t = time.perf_counter()
    _, body = call(api + "/businesses", token, accept="text/csv")
    done.set()
    rows = body.count(b"\n") - 1
    print(f"CSV export: {rows} rows, {len(body) / 1e6:.1f} MB in {time.perf_counter() - t:.2f} s; "
          f"server RSS {idle / 1024:.1f} MB before, peak {peak[0] / 1024:.1f} MB during")

if __name__ == "__main__":
    main()
