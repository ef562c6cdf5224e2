#!/usr/bin/env python3
"""The disclosure log under kill -9: no answer carrying a person's data without its entry.

    python3 tests/faults/disclosure_kill.py --backend sqlite|postgres [--rounds 2] [--clients 16]
        [--businesses 3000] [--postgres postgres://postgres@127.0.0.1:5432] [--database NAME]

Every answer that carries a person's data unmasked records an entry in `disclosures` before it
is sent (UU 27/2022; src/disclosures.rs), with the request's `X-Request-Id`. On a database
seeded with `seed --generate`, `--clients` threads read the routes that disclose (a business by
id, the business list, a person by id as an admin or officer; bank 1's pull page as its bank
user; the application list; retail partner 1's business list, owners masked, as its user; the
audit log as the admin), each request with an `X-Request-Id` of its own, until the server is
killed with SIGKILL after 3–5 s. Then, read from the database itself:

1. every request answered a complete 200 that carried anyone has its entry (none missing), with
   the route, the user (and their bank), and, where the answer shows them, the persons it carried;
2. every entry belongs to a request that was sent (none invented): to one answered 200, or to
   one in flight at the kill (its answer cut off; at most one per client), never to one answered
   otherwise or sent after the kill.

On SQLite, `PRAGMA integrity_check` is ok and the persons' trail (`disclosed_persons`) has
exactly the persons of the entries. Each further round starts the server again on the same
database and kills it again; the checks cover every request so far. The PostgreSQL database
(`--database` on the `--postgres` cluster) is made afresh, and dropped when the run passes.
"""
import argparse, contextlib, http.client, json, os, random, secrets, signal, sqlite3, subprocess, tempfile, \
    threading, time, uuid
from collections import Counter, defaultdict

from common import BINARY, Server, check, pg_database

PG_BASE = "postgres://postgres@127.0.0.1:5432"


def query(backend, url, sql):
    """The rows of `sql` (strings on PostgreSQL, '' for NULL; SQLite's own types)."""
    if backend == "postgres":
        out = subprocess.run(["psql", "-X", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                             check=True, capture_output=True, text=True, timeout=120).stdout
        return [line.split("\t") for line in out.splitlines() if line]
    with contextlib.closing(sqlite3.connect(url)) as conn:
        return conn.execute(sql).fetchall()


def persons_of(text):
    return frozenset(int(p) for p in str(text).split(",") if p)


class Request:
    """One request of a client: what it asked, as whom, and what came of it."""
    __slots__ = ("id", "round", "route", "user", "started", "ended", "status", "persons", "rows", "error")

    def __init__(self, round_, route, user):
        self.id, self.round, self.route, self.user = str(uuid.uuid4()), round_, route, user
        self.started = time.monotonic()
        self.ended = self.status = self.persons = self.error = None
        self.rows = 0


# Route name: (the entry's route, as the server records it; the answer's persons when it shows
# them, else None; how many rows the answer carries).
ROUTES = {
    "business": ("GET /api/v1/businesses/{id}", lambda b: {b["owner_id"]}, lambda b: 1),
    "business list": ("GET /api/v1/businesses", lambda b: {r["owner_id"] for r in b["data"]},
                      lambda b: len(b["data"])),
    "person": ("GET /api/v1/persons/{id}", lambda b: {b["id"]}, lambda b: 1),
    "pull page": ("GET /api/v1/bank-partners/{id}/eligible-applicants", lambda b: None,
                  lambda b: sum(1 for r in b["data"] if not r["left"])),
    "applications": ("GET /api/v1/applications", lambda b: None, lambda b: len(b["data"])),
    # A retail partner's page: the owners masked (and their ids withheld), recorded all the same.
    "retail list": ("GET /api/v1/businesses", lambda b: None, lambda b: len(b["data"])),
    # The audit log keeps names: a page names the persons and businesses' owners it is about.
    "audit log": ("GET /api/v1/audit-log", lambda b: None,
                  lambda b: sum(1 for e in b["data"] if e["entity"] in ("person", "business"))),
}
# Who reads each route (the others: the admin or an officer, at random).
READER = {"pull page": "bank", "retail list": "retail", "audit log": "admin"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=["postgres", "sqlite"], required=True)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--businesses", type=int, default=3000)
    p.add_argument("--postgres", default=PG_BASE, help="the PostgreSQL cluster (its URL without a database)")
    p.add_argument("--database", default="umkm_faults_disclosure_kill", help="the PostgreSQL database to (re)create")
    p.add_argument("--seed", type=int, default=27)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = pg_database(a.database, a.postgres) if a.backend == "postgres" else f"{tmp}/disclosure_kill.sqlite3"
        server = Server(f"disclosure-kill-{a.backend}", url)
        seeded = subprocess.run([BINARY, "seed", "--generate", "--businesses", str(a.businesses)], env=server.env,
                                capture_output=True, text=True, timeout=300)
        check(seeded.returncode == 0, f"seed failed: {seeded.stdout[-1000:]}{seeded.stderr[-1000:]}")
        print(f"[{a.backend}] {seeded.stdout.strip()}", flush=True)
        try:
            run(server, a, url)
        finally:
            server.stop(signal.SIGKILL)
        if a.backend == "postgres":
            subprocess.run(["psql", "-X", "-q", f"{a.postgres}/postgres", "-c",
                            f"DROP DATABASE IF EXISTS {a.database} WITH (FORCE)"], capture_output=True)
    print("disclosure_kill: ok")


def run(server, a, url):
    rng = random.Random(a.seed)
    businesses = int(query(a.backend, url, "SELECT max(id) FROM businesses")[0][0])
    persons = int(query(a.backend, url, "SELECT max(id) FROM persons")[0][0])
    server.start()
    check(int(query(a.backend, url, "SELECT count(*) FROM disclosures")[0][0]) == 0,
          "the log holds entries before any request")
    admin = server.admin()
    users = {"admin": (server.request("GET", "/api/v1/auth/me", token=admin).json()["id"], None)}
    passwords = {}
    for role, bank in (("officer", None), ("bank", 1), ("retail", None)):
        passwords[role] = secrets.token_urlsafe(18)
        body = {"email": f"{role}@disclosure-kill.test", "password": passwords[role], "role": role}
        if bank:
            body["bank_partner_id"] = bank
        if role == "retail":
            body["retail_partner_id"] = 1
        made = server.request("POST", "/api/v1/users", body, admin)
        check(made.status == 201, f"create the {role} user: {made.status} {made.body[:200]!r}")
        users[role] = (made.json()["id"], bank)

    requests = []  # Every request of every round, appended under `lock`.
    lock = threading.Lock()
    kills = {}  # Round: when its kill was sent.
    for round_ in range(1, a.rounds + 1):
        if round_ > 1:
            server.token = None
            started = time.monotonic()
            server.start()
            print(f"[{a.backend}] round {round_}: restarted and serving in {time.monotonic() - started:.2f} s",
                  flush=True)
        tokens = {"admin": server.admin()}
        for role in ("officer", "bank", "retail"):
            tokens[role] = server.login(f"{role}@disclosure-kill.test", passwords[role])
        stop = threading.Event()

        def client(k):
            mine = random.Random(a.seed * 1000 + round_ * 100 + k)
            while not stop.is_set():
                route = mine.choice(list(ROUTES))
                user = READER.get(route) or mine.choice(["admin", "officer"])
                path = {"business": lambda: f"/api/v1/businesses/{mine.randint(1, businesses)}",
                        "business list": lambda: "/api/v1/businesses?limit=50",
                        "person": lambda: f"/api/v1/persons/{mine.randint(1, persons)}",
                        "pull page": lambda: "/api/v1/bank-partners/1/eligible-applicants?limit=50",
                        "applications": lambda: "/api/v1/applications?limit=20",
                        "retail list": lambda: "/api/v1/businesses?limit=50",
                        "audit log": lambda: "/api/v1/audit-log?limit=50"}[route]()
                request = Request(round_, route, user)
                with lock:
                    requests.append(request)
                try:
                    reply = server.request("GET", path, token=tokens[user], timeout=30,
                                           headers={"X-Request-Id": request.id, "Accept": "application/json"})
                except (OSError, http.client.HTTPException) as e:  # Cut off: the server died under it.
                    request.ended, request.error = time.monotonic(), f"{type(e).__name__}: {e}"
                    return
                request.ended, request.status = time.monotonic(), reply.status
                if reply.header("x-request-id") != request.id:
                    request.error = f"X-Request-Id {reply.header('x-request-id')!r} answered to {request.id}"
                elif reply.status == 200:
                    try:
                        body = json.loads(reply.body)
                        request.rows, shown = ROUTES[route][2](body), ROUTES[route][1](body)
                    except (ValueError, KeyError, TypeError) as e:
                        request.error = f"a 200 answer that is not the route's JSON ({e}): {reply.body[:200]!r}"
                        continue
                    request.persons = frozenset(shown) if shown is not None else None

        threads = [threading.Thread(target=client, args=(k,)) for k in range(a.clients)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(3, 5))
        kills[round_] = time.monotonic()
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
        stop.set()
        for t in threads:
            t.join()
        verify(a, url, round_, requests, kills, users)


def verify(a, url, round_, requests, kills, users):
    """The checks, over every request so far; `kills`: each round's time of the kill."""
    tag = f"[{a.backend}] round {round_}"
    this = [r for r in requests if r.round == round_]
    answered = [r for r in this if r.status is not None]
    cut = [r for r in this if r.status is None]
    in_flight = [r for r in cut if r.started < kills[round_]]
    broken = [r.error for r in answered if r.error]
    check(not broken, f"{tag}: {len(broken)} answers broken, e.g. {broken[:1]}")
    early = [r.error for r in cut if r.ended < kills[round_]]
    check(not early, f"{tag}: {len(early)} requests failed before the kill, e.g. {early[:1]}")
    others = Counter((r.route, r.status) for r in answered if r.status != 200)
    check(not others, f"{tag}: answers other than 200: {dict(others)}")
    check(len(in_flight) <= a.clients, f"{tag}: {len(in_flight)} requests in flight with {a.clients} clients")
    check(any(r.rows for r in answered), f"{tag}: no answer carried anyone")

    rows = query(a.backend, url, "SELECT id, request_id, route, user_id, bank_partner_id, persons FROM disclosures")
    entries = defaultdict(list)
    for id_, request_id, route, user_id, bank, persons in rows:
        entries[request_id].append((int(id_), route, None if user_id in (None, "") else int(user_id),
                                    None if bank in (None, "") else int(bank), persons_of(persons)))
    sent = {r.id: r for r in requests}
    ok = [r for r in requests if r.status == 200]
    disclosing = [r for r in ok if r.rows > 0]

    # 1. Every answer that carried anyone has its entry, saying what the answer said.
    missing = [r for r in disclosing if r.id not in entries]
    wrong = []
    for r in disclosing:
        for _, route, user_id, bank, persons in entries.get(r.id, []):
            if (route, user_id, bank) != (ROUTES[r.route][0], *users[r.user]) or not persons \
                    or len(persons) > r.rows or (r.persons is not None and persons != r.persons):
                wrong.append((r.route, r.user, r.id, route, user_id, bank, sorted(persons)[:5],
                              sorted(r.persons or [])[:5]))
    # 2. Every entry is a request's that was sent: one answered 200 with someone in it, or one
    #    whose answer was cut off by a kill (sent before it).
    invented = [rid for rid in entries if rid not in sent]
    unanswered = [sent[rid] for rid in entries if rid in sent and sent[rid].status is None]
    after_kill = [r for r in unanswered if r.started >= kills[r.round]]
    otherwise = [sent[rid] for rid in entries if rid in sent and sent[rid].status is not None
                 and not (sent[rid].status == 200 and sent[rid].rows > 0)]
    twice = sum(1 for es in entries.values() if len(es) > 1)
    per_round = Counter(r.round for r in unanswered)

    statuses = Counter((r.route, r.status) for r in answered)
    print(f"{tag}: SIGKILL {kills[round_] - min(r.started for r in this):.1f} s after the clients began; "
          f"{len(this)} requests sent by {a.clients} clients: {len(answered)} answered "
          f"({', '.join(f'{route} {status}: {n}' for (route, status), n in sorted(statuses.items()))}); "
          f"{len(in_flight)} cut off in flight, {len(cut) - len(in_flight)} refused after the kill", flush=True)
    print(f"{tag}: so far {len(ok)} answers 200 received ({len(disclosing)} carrying someone), {len(rows)} entries: "
          f"missing {len(missing)}, not matching their answer {len(wrong)}, invented {len(invented)}, "
          f"for other answers {len(otherwise)}, for requests sent after a kill {len(after_kill)}, "
          f"for requests in flight at a kill {len(unanswered)} (by round {dict(sorted(per_round.items()))}, "
          f"at most {a.clients} each), written twice {twice}", flush=True)
    check(not missing, f"{tag}: {len(missing)} answers 200 that carried persons have no entry "
                       f"(route, user, request id, round): {[(r.route, r.user, r.id, r.round) for r in missing[:5]]}")
    check(not wrong, f"{tag}: {len(wrong)} entries do not match their answer (its route, user, request id; "
                     f"the entry's route, user, bank, persons; the answer's persons): {wrong[:3]}")
    check(not invented, f"{tag}: {len(invented)} entries name a request id never sent, e.g. {invented[:5]}")
    check(not otherwise, f"{tag}: entries for answers other than a 200 with someone (route, status, rows, id): "
                         f"{[(r.route, r.status, r.rows, r.id) for r in otherwise[:5]]}")
    check(not after_kill, f"{tag}: entries for requests sent after the kill: {[r.id for r in after_kill[:5]]}")
    check(all(n <= a.clients for n in per_round.values()),
          f"{tag}: entries of requests in flight at a kill, by round {dict(per_round)}: more than {a.clients}")

    if a.backend == "sqlite":
        integrity = query(a.backend, url, "PRAGMA integrity_check")[0][0]
        check(integrity == "ok", f"{tag}: integrity_check: {integrity}")
        trail = set(query(a.backend, url, "SELECT disclosure_id, person_id FROM disclosed_persons"))
        logged = {(id_, p) for es in entries.values() for id_, _, _, _, persons in es for p in persons}
        check(trail == logged, f"{tag}: the persons' trail differs from the entries: "
                               f"{len(logged - trail)} pairs missing from it, {len(trail - logged)} extra")
        print(f"{tag}: integrity_check ok; the persons' trail holds exactly the entries' {len(trail)} persons",
              flush=True)


if __name__ == "__main__":
    main()
