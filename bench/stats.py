#!/usr/bin/env python3
"""Statistics latency on N generated businesses (issue 6's measurement).

Point it at a running release server:
    python3 bench/stats.py --url http://127.0.0.1:8080 --email E --password P [--businesses 351000] [--skip-load]
Loads the businesses through POST /businesses/import (as bench/lists.py does), then times
/stats/overview and grouped /stats/businesses sequentially. Standard library only.
"""
import argparse, json, time

from lists import business, call, timed

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--email", required=True); p.add_argument("--password", required=True)
    p.add_argument("--businesses", type=int, default=351_000); p.add_argument("--skip-load", action="store_true")
    p.add_argument("--runs", type=int, default=30)
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
    scenarios = {
        "/stats/overview": "/stats/overview",
        "group_by=district,scale": "/stats/businesses?group_by=district,scale",
        "group_by=kbli_division,is_ikm": "/stats/businesses?group_by=kbli_division,is_ikm",
        "group_by=established_year": "/stats/businesses?group_by=established_year",
        "district=35.24.05 by scale": "/stats/businesses?group_by=scale&district=35.24.05",
    }
    print(f"{'scenario':30} {'p50 ms':>8} {'p99 ms':>8}")
    for name, path in scenarios.items():
        p50, p99 = timed(lambda: call(api + path, token), a.runs)
        print(f"{name:30} {p50:8.1f} {p99:8.1f}")

if __name__ == "__main__":
    main()
