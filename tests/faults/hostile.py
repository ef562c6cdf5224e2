#!/usr/bin/env python3
"""Hostile input: every answer a 4xx problem (or a normal, empty result), nothing written, the
process still up.

    python3 tests/faults/hostile.py [--backend sqlite|postgres]

On the demo dataset: SQL injection strings in every query parameter and path parameter of the
served document and in every field of a business; very long strings; deeply nested JSON; huge
and negative numbers; invalid UTF-8; a 100 MB body; header floods; the token of a disabled user;
a bank user trying every other bank's applications and partner ids. Table counts are compared
before and after: only the deliberately valid creates (injection strings in free-text fields,
stored verbatim) may add rows.
"""
import argparse, json, re, socket, sqlite3, subprocess, tempfile, time, urllib.parse
from collections import Counter

from common import BINARY, Server, business, check, pg_database

INJECTIONS = [
    "' OR '1'='1", "1; DROP TABLE businesses; --", "1' UNION SELECT password_hash FROM users --",
    "\" OR \"\"=\"", "%' OR 1=1 --", "1)) OR sleep(5)--", "'; SELECT pg_sleep(5); --", "admin'--",
    "\\x00", "${jndi:ldap://127.0.0.1/a}", "<script>alert(1)</script>", "../../etc/passwd",
]
TABLES = ["businesses", "products", "outlets", "curations", "placements", "applications", "trainings",
          "registrations", "users", "bank_partners", "retail_partners", "financing_programmes", "regions"]


class Counts:
    def __init__(self, backend, url):
        self.backend, self.url = backend, url

    def __call__(self):
        sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in TABLES)
        if self.backend == "postgres":
            out = subprocess.run(["psql", "-X", "-At", "-F", " ", self.url, "-c", sql], check=True,
                                 capture_output=True, text=True).stdout
            return {t: int(n) for t, n in (line.split() for line in out.splitlines())}
        with sqlite3.connect(self.url) as conn:
            return dict(conn.execute(sql).fetchall())


class Tally:
    """Every hostile request and its answer; fails on a 5xx or a 4xx that is not a problem."""

    def __init__(self):
        self.statuses = Counter()

    def expect(self, reply, allowed, what):
        self.statuses[reply.status] += 1
        check(reply.status < 500, f"{what}: {reply.status} {reply.body[:300]!r}")
        check(reply.status in allowed, f"{what}: {reply.status} not in {sorted(allowed)}: {reply.body[:300]!r}")
        if reply.status >= 400:
            check(reply.header("content-type") == "application/problem+json", f"{what}: {reply.status} not a problem")
        return reply


def raw_request(port, head, body_chunks=(), timeout=30):
    """Sends raw bytes; returns (status, first bytes of the answer) even if the server stops reading."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        try:
            for chunk in body_chunks:
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # The server answered and closed before the body was all sent: expected for 413.
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                more = s.recv(65536)
                if not more:
                    break
                data += more
        except ConnectionResetError:
            pass
    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return (int(match.group(1)) if match else None), data[:400]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=["postgres", "sqlite"], default="sqlite")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = pg_database("umkm_faults_hostile") if a.backend == "postgres" else f"{tmp}/hostile.sqlite3"
        server = Server(f"hostile-{a.backend}", url)
        subprocess.run([BINARY, "seed", "--demo"], env=server.env, check=True, capture_output=True)
        server.start()
        try:
            run(server, Counts(a.backend, url), a.backend)
        finally:
            server.stop()
    print(f"hostile ({a.backend}): ok")


def run(server, counts, backend):
    token = server.admin()
    tally = Tally()
    before = counts()
    spec = server.request("GET", "/api-docs/openapi.json").json()

    # 1. Injection strings in every query and path parameter of every GET.
    for path, item in spec["paths"].items():
        op = item.get("get")
        if not op:
            continue
        params = op.get("parameters", [])
        base = re.sub(r"\{[^}]+\}", "1", path)
        required = "group_by=district" if path.endswith("/stats/businesses") else (
            "group_by=bank" if path.endswith("/stats/financing") else "")
        for param in params:
            for payload in INJECTIONS:
                value = urllib.parse.quote(payload, safe="")
                if param["in"] == "query":
                    query = "&".join(q for q in [required if param["name"] != "group_by" else "",
                                                 f"{param['name']}={value}"] if q)
                    target = f"{base}?{query}"
                elif param["in"] == "path":
                    target = path.replace("{" + param["name"] + "}", value)
                    target = re.sub(r"\{[^}]+\}", "1", target) + (f"?{required}" if required else "")
                else:
                    continue
                tally.expect(server.request("GET", target, token=token), {200, 400, 404, 422},
                             f"GET {target}")
    print(f"[{backend}] injection strings in every query/path parameter: {sum(tally.statuses.values())} "
          f"requests, answers {dict(tally.statuses)}")

    # 2. Injection strings in every field of a business: validated fields answer 422, free text
    #    is stored verbatim (parameterised queries) and read back unchanged.
    accepted = 0
    fields = ["name", "owner_name", "owner_nik", "phone", "email", "nib", "npwp", "kbli", "district_code",
              "village", "address", "established_on", "status", "consented_to_bank_sharing_at"]
    serial = iter(range(700_000, 800_000))  # A fresh NIB for every body: no accidental 409.
    for field in fields:
        for payload in INJECTIONS[:6]:
            body = business(next(serial), **{field: payload})
            reply = tally.expect(server.request("POST", "/api/v1/businesses", body, token), {201, 422},
                                 f"POST /businesses with {field}={payload!r}")
            if reply.status == 201:
                accepted += 1
                stored = server.request("GET", reply.header("location"), token=token).json()
                check(stored[field] == payload.strip() or stored[field] == payload,
                      f"{field} stored as {stored[field]!r}, sent {payload!r}")
            else:
                names = [e["field"] for e in reply.json().get("errors", [])]
                check(names == [field], f"{field}={payload!r}: 422 names {names}")
    print(f"[{backend}] injection strings in every business field: {accepted} free-text values stored "
          f"verbatim, the rest 422 naming the field")

    # 3. Long strings, deep nesting, huge and negative numbers, invalid UTF-8.
    cases = [
        ("name of 10,000 characters", business(1, name="x" * 10_000), 422),
        ("address of 1 MB", business(2, address="y" * 1_000_000), 422),
        ("revenue 10^30", business(3, annual_revenue_idr=10**30), 422),
        ("revenue 1e400 (beyond any JSON number parser)", None, 400),
        ("negative revenue", business(4, annual_revenue_idr=-5_000_000), 422),
        ("negative capital", business(5, capital_idr=-1), 422),
        ("employees 2^40", business(6, employees=2**40), 422),
        ("fractional money", business(7, annual_revenue_idr=1.5), 422),
        ("a number as the name", business(8, name=12345), 422),
        ("an object as the NIB", business(9, nib={"$ne": ""}), 422),
    ]
    for what, body, status in cases:
        if body is None:
            raw = json.dumps(business(10)).replace('"annual_revenue_idr": 250000000', '"annual_revenue_idr": 1e400')
            reply = server.request("POST", "/api/v1/businesses", token=token, raw=raw.encode(),
                                   headers={"Content-Type": "application/json"})
        else:
            reply = server.request("POST", "/api/v1/businesses", body, token)
        tally.expect(reply, {status}, what)
    for what, raw, status in [
        ("JSON nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000, 400),
        ("objects nested 50,000 deep", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 400),
        ("invalid UTF-8 in a string", b'{"name": "\xff\xfe\xfd"}', 400),
        ("a lone surrogate escape", b'{"name": "\\udc00"}', 400),
        ("truncated JSON", b'{"name": "Usaha', 400),
    ]:
        reply = server.request("POST", "/api/v1/businesses", token=token, raw=raw,
                               headers={"Content-Type": "application/json"})
        tally.expect(reply, {status, 422}, what)
    tally.expect(server.request("GET", "/api/v1/businesses?q=" + "%FF%FE" * 10, token=token), {200, 400},
                 "invalid UTF-8 in the query string")
    tally.expect(server.request("GET", "/api/v1/businesses?q=" + "z" * 60_000, token=token),
                 {200, 400, 414, 431}, "a query string of 60 KB")
    tally.expect(server.request("POST", "/api/v1/products", {"business_id": 1, "name": "Kerupuk", "category": "food",
                                                            "price_idr": -1000}, token), {422}, "negative price")
    tally.expect(server.request("POST", "/api/v1/applications", {"business_id": 1, "programme_id": 2,
                                                                "amount_requested_idr": -20_000_000}, token),
                 {422}, "negative amount requested")
    print(f"[{backend}] long strings, deep nesting, huge/negative numbers, invalid UTF-8: answered as documented")

    # 4. A 100 MB body: refused with 413 without reading it all.
    head = (f"POST /api/v1/businesses/import HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {100 * 1024 * 1024}\r\n\r\n").encode()
    started = time.monotonic()
    status, answer = raw_request(server.port, head, (b"[" + b" " * (1024 * 1024 - 1) for _ in range(100)))
    took = time.monotonic() - started
    check(status == 413, f"100 MB body: {status} {answer!r}")
    tally.statuses[413] += 1
    print(f"[{backend}] 100 MB body: 413 in {took:.2f} s")

    # 5. Header floods: many headers, one huge header.
    many = "".join(f"X-Flood-{i}: {i}\r\n" for i in range(500))
    status, answer = raw_request(server.port, f"GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode())
    check(status in (400, 431), f"500 headers: {status} {answer!r}")
    status2, answer = raw_request(server.port, f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * 200_000}\r\n\r\n".encode())
    check(status2 in (400, 431, None), f"a 200 KB header: {status2} {answer!r}")
    print(f"[{backend}] header floods: 500 headers -> {status}, a 200 KB header -> {status2 or 'connection closed'}")

    # 6. The token of a user disabled after logging in.
    created = server.request("POST", "/api/v1/users", {"email": "gone@faults.test", "password": "a-long-password-1",
                                                       "role": "viewer"}, token)
    check(created.status == 201, f"create viewer: {created.status}")
    viewer = server.login("gone@faults.test", "a-long-password-1")
    tally.expect(server.request("GET", "/api/v1/businesses?limit=1", token=viewer), {200}, "viewer before")
    disable = server.request("PATCH", created.header("location"), {"disabled": True}, token,
                             headers={"Content-Type": "application/merge-patch+json"})
    check(disable.status == 200, f"disable: {disable.status} {disable.body[:200]!r}")
    tally.expect(server.request("GET", "/api/v1/businesses?limit=1", token=viewer), {401}, "disabled user's token")
    tally.expect(server.request("POST", "/api/v1/auth/token", {"email": "gone@faults.test",
                                                                "password": "a-long-password-1"}), {401},
                 "disabled user's login")
    forged = viewer[:-4] + ("AAAA" if not viewer.endswith("AAAA") else "BBBB")
    tally.expect(server.request("GET", "/api/v1/businesses?limit=1", token=forged), {401}, "forged signature")
    print(f"[{backend}] disabled user's token and login: 401; a forged signature: 401")

    # 7. A bank user (BRI, id 1) tries every other bank's applications and partner ids.
    created = server.request("POST", "/api/v1/users", {"email": "bri@faults.test", "password": "a-long-password-2",
                                                       "role": "bank", "bank_partner_id": 1}, token)
    check(created.status == 201, f"create bank user: {created.status}")
    bri = server.login("bri@faults.test", "a-long-password-2")
    others, page = [], "/api/v1/applications?limit=500"
    while page:
        listing = server.request("GET", page, token=token).json()
        others += [row["id"] for row in listing["data"] if row["bank_partner_id"] != 1]
        page = f"/api/v1/applications?limit=500&cursor={listing['next_cursor']}" if listing.get("next_cursor") else None
    check(others, "the demo has applications at other banks")
    for id_ in others:
        tally.expect(server.request("GET", f"/api/v1/applications/{id_}", token=bri), {404}, f"BRI reads application {id_}")
        tally.expect(server.request("PATCH", f"/api/v1/applications/{id_}", {"status": "in_review"}, bri,
                                    headers={"Content-Type": "application/merge-patch+json"}), {404},
                     f"BRI moves application {id_}")
    for bank in (2, 3, 4, 5):
        tally.expect(server.request("GET", f"/api/v1/bank-partners/{bank}/eligible-applicants", token=bri), {404},
                     f"BRI pulls bank {bank}'s applicants")
        tally.expect(server.request("GET", f"/api/v1/applications?bank_partner_id={bank}", token=bri), {200, 404},
                     f"BRI lists bank {bank}'s applications")
        tally.expect(server.request("PATCH", f"/api/v1/bank-partners/{bank}", {"name": "Hijacked"}, bri,
                                    headers={"Content-Type": "application/merge-patch+json"}), {403, 404},
                     f"BRI renames bank {bank}")
    listed = server.request("GET", "/api/v1/applications?bank_partner_id=2", token=bri)
    if listed.status == 200:
        check(listed.json()["data"] == [], "BRI sees BNI's applications in a list")
    print(f"[{backend}] bank user against {len(others)} other banks' applications and 4 other banks: all 404/403/empty")

    # Nothing written but the deliberate rows; the process is up.
    after = counts()
    expected = dict(before, businesses=before["businesses"] + accepted, users=before["users"] + 2)
    changed = {t: (before[t], after[t]) for t in TABLES if after[t] != expected[t]}
    check(not changed, f"rows changed by hostile requests: {changed}")
    check(server.process.poll() is None and server.request("GET", "/healthz").status == 200, "the server is down")
    total = sum(tally.statuses.values())
    print(f"[{backend}] {total} hostile requests, answers {dict(sorted(tally.statuses.items()))}; no 5xx; "
          f"table counts unchanged but the {accepted} verbatim creates and 2 users; server up")


if __name__ == "__main__":
    main()
