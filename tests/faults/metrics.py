#!/usr/bin/env python3
"""Metrics: exact request counts after a wrk run, a valid exposition under load, the alerts.

    python3 tests/faults/metrics.py --backend sqlite|postgres

The server runs with METRICS_ADDR on its own port. wrk reads one business by id, 3,000 times
per thread on one connection each (so no request is left in flight when it stops): the
counter of that route template and status, and its histogram's count, rise by exactly the
requests wrk reports. A scrape taken while 16 connections read lists passes
`promtool check metrics`; `deploy/prometheus/alerts.yml` passes `promtool check rules` and its
unit tests. The API's own port does not serve /metrics. wrk and promtool (Debian's `wrk` and
`prometheus` packages) are installed if missing. The server logs with LOG_FORMAT=json: every
line is one JSON object, a request's access line carries its request id, user id, route
template and status, and no secret is in the log. Every query of deploy/grafana/umkm-api.json
parses.
"""
import argparse, json, os, re, signal, subprocess, tempfile, threading, time, urllib.request

from common import ROOT, Server, apt_install, business, check, fail, free_port, pg_database, sqlite_url

BY_ID = 'umkm_http_requests_total{method="GET",route="/api/v1/businesses/{id}",status="200"}'
BY_ID_TIMED = ('umkm_http_request_duration_seconds_count'
               '{method="GET",route="/api/v1/businesses/{id}",status="200"}')


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        check(r.status == 200, f"/metrics answered {r.status}")
        return r.read().decode()


def sample(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def wrk(url, token, path, threads, connections, seconds, workdir, per_thread=None, done=None):
    """wrk for `seconds`, or with `per_thread` until each thread has had that many answers:
    its one connection then sends nothing more, so the server answered exactly what wrk counts.
    wrk's main thread sleeps out `seconds` even when every thread has stopped; with `done` (a
    condition polled meanwhile) it is interrupted as soon as that holds, and prints its count
    as at the end of its time."""
    script = os.path.join(workdir, f"wrk-{connections}.lua")
    stop = ("" if per_thread is None else
            f"local answered = 0\nresponse = function(status, headers, body)\n"
            f"  answered = answered + 1\n  if answered >= {per_thread} then wrk.thread:stop() end\nend\n")
    with open(script, "w") as f:
        f.write(f'wrk.headers["Authorization"] = "Bearer {token}"\n'
                f'request = function() return wrk.format("GET", "{path}") end\n{stop}')
    process = subprocess.Popen(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "-s", script,
                                url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done is not None:
        deadline = time.monotonic() + seconds
        while process.poll() is None and time.monotonic() < deadline and not done():
            time.sleep(0.2)
        time.sleep(1)  # the last answers counted by the server reach wrk
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # wrk stops, joins its threads and reports
    out = process.communicate(timeout=seconds + 60)[0]
    found = re.search(r"(\d+) requests in", out)
    check(found is not None, f"wrk printed no request count: {out!r}")
    check("Non-2xx" not in out and "Socket errors" not in out, f"wrk saw errors: {out}")
    return int(found.group(1))


def json_logs(server, token, path, tag):
    """LOG_FORMAT=json: every line one JSON object; a request's access line carries its id, the
    caller, the route template and status; no secret anywhere."""
    marker = f"metrics-log-{os.urandom(6).hex()}"
    reply = server.request("GET", path, token=token, headers={"X-Request-Id": marker})
    check(reply.status == 200, f"GET {path} answered {reply.status}")
    time.sleep(0.5)  # the line is written once the answer is sent
    with open(server.log_path) as f:
        # The file has the server's standard output too: its start-up banner, which is console
        # text by design (it may show the first admin's password once, never in the log).
        lines = [line for line in f.read().splitlines()
                 if line.strip() and not line.startswith(("umkm-api ", "  "))]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            fail(f"a log line is not JSON: {line[:200]!r}")
    check(all({"time", "level", "target", "message"} <= r.keys() for r in records), "a JSON log line lacks a field")
    mine = [r for r in records if r.get("request_id") == marker]
    check(len(mine) == 1, f"{len(mine)} access lines carry the request id {marker}")
    line = mine[0]
    expected = {"method": "GET", "route": "/api/v1/businesses/{id}", "path": path, "status": 200,
                "target": "umkm_api::access", "level": "INFO"}
    check(all(line.get(k) == v for k, v in expected.items()), f"the access line is {line}")
    check(isinstance(line.get("user_id"), int) and isinstance(line.get("latency_ms"), (int, float)),
          f"the access line lacks user_id or latency_ms: {line}")
    text = "\n".join(lines)
    for name, secret in [("the admin password", server.password), ("the JWT secret", server.secret),
                         ("a token", token), ("a token's signature", token.rsplit(".", 1)[-1])]:
        check(secret not in text, f"{name} is in the JSON log")
    logins = [r for r in records if r.get("route") == "/api/v1/auth/token"]
    check(logins and all("password" not in json.dumps(r) for r in logins), "a login's access line mentions a password")
    print(f"{tag} LOG_FORMAT=json: {len(records)} lines, each one JSON object; the access line of request "
          f"{marker} has route {line['route']}, user_id {line['user_id']}, status {line['status']}; no secret")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=["postgres", "sqlite"], required=True)
    a = p.parse_args()
    apt_install({"wrk": "wrk", "promtool": "prometheus"}, no_recommends=True)
    tag = f"[{a.backend}]"
    with tempfile.TemporaryDirectory() as workdir:
        url = pg_database("umkm_faults_metrics") if a.backend == "postgres" else sqlite_url(workdir)
        metrics_port = free_port()
        server = Server(f"metrics-{a.backend}", url, {"METRICS_ADDR": f"127.0.0.1:{metrics_port}",
                                                      "RUST_LOG": "info", "LOG_FORMAT": "json"})
        server.start()
        try:
            token = server.admin()
            created = server.request("POST", "/api/v1/businesses", business(1), token)
            check(created.status == 201, f"create answered {created.status}")
            path = f"/api/v1/businesses/{created.json()['id']}"
            base = f"http://127.0.0.1:{server.port}"

            # Exact counts: one connection per thread, each stopping after 3,000 answers.
            before = scrape(metrics_port)

            def answered():
                return sample(scrape(metrics_port), BY_ID) - sample(before, BY_ID) >= 6000

            n = wrk(base, token, path, 2, 2, 120, workdir, per_thread=3000, done=answered)
            after = scrape(metrics_port)
            counted = sample(after, BY_ID) - sample(before, BY_ID)
            timed = sample(after, BY_ID_TIMED) - sample(before, BY_ID_TIMED)
            print(f"{tag} wrk read {path} {n} times; the counter rose by {counted:.0f}, the histogram by {timed:.0f}")
            check(n == 6000, f"wrk made {n} requests, not 2 x 3,000")
            check(counted == n and timed == n, f"counter +{counted}, histogram +{timed}, wrk {n}")
            check(f'route="{path}"' not in after, "a raw path is a label")

            # A scrape under load is a valid exposition.
            load = threading.Thread(target=wrk, args=(base, token, "/api/v1/businesses?limit=50", 2, 16, 4, workdir))
            load.start()
            time.sleep(1.5)
            under_load = scrape(metrics_port)
            load.join(timeout=120)
            in_flight = sample(under_load, "umkm_http_requests_in_flight")
            lint = subprocess.run(["promtool", "check", "metrics"], input=under_load, capture_output=True, text=True)
            check(lint.returncode == 0, f"promtool check metrics: {lint.stdout}{lint.stderr}")
            print(f"{tag} a scrape under 16 connections ({len(under_load.splitlines())} lines, "
                  f"{in_flight:.0f} in flight) passes promtool check metrics")

            check(server.request("GET", "/metrics").status == 404, "the API's port serves /metrics")
            json_logs(server, token, path, tag)
        finally:
            server.stop()
            if a.backend == "postgres":
                subprocess.run(["psql", "-X", "-q", "postgres://postgres@127.0.0.1:5432/postgres", "-c",
                                "DROP DATABASE IF EXISTS umkm_faults_metrics WITH (FORCE)"], capture_output=True)

    rules = os.path.join(ROOT, "deploy", "prometheus")
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run(["promtool", *args], cwd=rules, capture_output=True, text=True)
        check(done.returncode == 0, f"promtool {' '.join(args)}: {done.stdout}{done.stderr}")
    print(f"{tag} promtool check rules and test rules pass on deploy/prometheus/")
    # Every query of the Grafana dashboard parses (as a recording rule, Grafana's variables filled).
    with open(os.path.join(ROOT, "deploy", "grafana", "umkm-api.json")) as f:
        dashboard = json.load(f)
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    check(len(exprs) >= 15, f"the dashboard has only {len(exprs)} queries")
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        rules = [{"record": f"dashboard:query_{i}", "expr": e.replace("$__rate_interval", "5m").replace("$instance", ".*")}
                 for i, e in enumerate(exprs)]
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)  # JSON is YAML
    done = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
    os.unlink(f.name)
    check(done.returncode == 0, f"a dashboard query does not parse: {done.stdout}{done.stderr}")
    print(f"{tag} the {len(exprs)} queries of deploy/grafana/umkm-api.json parse (promtool)")
    print(f"metrics ({a.backend}): ok")


if __name__ == "__main__":
    main()
