#!/usr/bin/env python3
"""Webhooks under faults: a real receiver on loopback, the signatures checked with the third-party
`standardwebhooks` package (PyPI, pinned, in a virtualenv under ~/.cache/umkm-api), never with
our own code. Against the real server (WEBHOOK_ALLOW_PRIVATE_TARGETS=true) on SQLite or
PostgreSQL, one retail partner's subscription to curation.submitted and curation.decided:

1. Load and an outage: `--clients` threads, each on its own product, submit a curation, reject
   it, submit again … (`--pause` s apart), for `--before` s while deliveries run; then the
   receiver answers 503 for half of `--down` s and is shut (connection refused) for the other
   half. No write answers 5xx. The writers stop while it is shut, when nothing can be
   delivered: events written = events delivered + the subscription's `pending`, exactly. Once
   the receiver is back every event arrives, in order, within the backoff and the backlog.
2. SIGKILL during deliveries: the writers run again and the receiver is slow; the server is
   killed with SIGKILL while a delivery is inside the receiver and writes are in flight. Started
   again on the same database, it delivers every event at least once — every acknowledged
   write's, and the one of each write cut off by the kill that committed (read back through the
   API) — and a duplicate carries the same `webhook-id` and the same body.

Every request is verified (`Webhook(secret).verify(body, headers)`), and one forged copy must
be refused. Order: the first arrival of each `webhook-id` comes in the order of the writes —
per product exactly, and across products whenever a write was acknowledged before the other
was sent. At the end: pending 0, every written event delivered, none that was not written.

    python3 tests/faults/webhooks.py --backend sqlite|postgres [--clients 32] [--before 3] [--down 10] [--pause 0.5]
"""
import argparse, http.server, json, os, shutil, signal, sys, tempfile, threading, time

from common import Server, business, check, fail, free_port, pg_database, sqlite_url, venv_python

STANDARDWEBHOOKS = "1.0.1"
EVENT_TYPES = ["curation.submitted", "curation.decided"]
DRAIN_BOUND = 75.0  # seconds: the backoff after the outage (2, 4, 8, 16 s) or a lease left by the kill (10 s)


# Always under the virtualenv's python, so that the pinned version is the one that verifies.
HOME, PYTHON = venv_python(f"standardwebhooks-{STANDARDWEBHOOKS}", f"standardwebhooks=={STANDARDWEBHOOKS}")
if os.path.realpath(sys.prefix) != os.path.realpath(HOME):
    os.execv(PYTHON, [PYTHON, os.path.abspath(__file__), *sys.argv[1:]])
from standardwebhooks.webhooks import Webhook, WebhookVerificationError  # noqa: E402


class Receiver:
    """The partner's endpoint on a loopback port: verifies, records and answers every request.

    `mode` "up" answers 200, "503" answers 503; `stop()` shuts the socket (connection refused)
    and `start()` opens it again on the same port. `delay` holds each 200 that long."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/umkm"
        self.secret = None
        self.lock = threading.Lock()
        self.mode, self.delay = "up", 0.0
        self.accepted = []  # (webhook-id, raw body, headers) of each request answered 200
        self.refused = 0  # requests answered 503
        self.unverified = []  # requests the library refused
        self.held = set()  # webhook-ids of the requests being held (delay)
        self.httpd = None

    def start(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k: v for k, v in self.headers.items()}
                try:
                    Webhook(receiver.secret).verify(body, headers)
                except (WebhookVerificationError, ValueError, TypeError) as e:
                    with receiver.lock:
                        receiver.unverified.append((headers.get("webhook-id"), repr(e), body[:200]))
                    return self.answer(400)
                with receiver.lock:
                    if receiver.mode == "503":
                        receiver.refused += 1
                        return self.answer(503)
                    message = headers.get("webhook-id")
                    receiver.accepted.append((message, body, headers))
                    delay = receiver.delay
                    receiver.held.add(message)
                try:
                    time.sleep(delay)
                    self.answer(200)
                finally:
                    with receiver.lock:
                        receiver.held.discard(message)

            def answer(self, status):
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the server was killed while we held its request

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def snapshot(self):
        with self.lock:
            return list(self.accepted)

    def unique(self):
        with self.lock:
            return len({message for message, _, _ in self.accepted})


class Writers:
    """`clients` threads, one product each: submit a curation, reject it, submit again … Each
    acknowledged write is one event, recorded with the times it was sent and answered."""

    def __init__(self, server, token, partner, products, pause):
        self.server, self.token, self.partner, self.products, self.pause = server, token, partner, products, pause
        self.lock = threading.Lock()
        self.written = {}  # (type, curation id) -> (sent, acknowledged, product)
        self.open = {p: None for p in products}  # product -> (curation id, version) awaiting its decision
        self.server_errors, self.unexpected, self.cut = [], [], []
        self.stop = threading.Event()
        self.threads = []

    def run(self):
        self.stop.clear()
        self.threads = [threading.Thread(target=self.client, args=(p,), daemon=True) for p in self.products]
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join()

    def acknowledged(self):
        with self.lock:
            return len(self.written)

    def client(self, product):
        while not self.stop.is_set():
            open_ = self.open[product]
            sent = time.monotonic()
            try:
                if open_ is None:
                    kind, want = "curation.submitted", 201
                    reply = self.server.request("POST", "/api/v1/curations",
                                                {"product_id": product, "retail_partner_id": self.partner},
                                                token=self.token, timeout=30)
                else:
                    kind, want = "curation.decided", 200
                    reply = self.server.request("PATCH", f"/api/v1/curations/{open_[0]}",
                                                {"status": "rejected", "notes": "belum lolos"}, token=self.token,
                                                headers={"Content-Type": "application/merge-patch+json",
                                                         "If-Match": f'"{open_[1]}"'}, timeout=30)
            except OSError as e:  # the server was killed: whether this write committed is read back later
                with self.lock:
                    self.cut.append((product, "curation.submitted" if open_ is None else "curation.decided", repr(e)))
                return
            acknowledged = time.monotonic()
            with self.lock:
                if reply.status >= 500:
                    self.server_errors.append((kind, reply.status, reply.body[:300]))
                    return
                if reply.status != want:
                    self.unexpected.append((kind, reply.status, reply.body[:300]))
                    return
                curation = reply.json()
                self.written[(kind, curation["id"])] = (sent, acknowledged, product)
                self.open[product] = (curation["id"], curation["version"]) if open_ is None else None
            if self.pause:
                time.sleep(self.pause)

    def check(self, label, killed=False):
        check(killed or not self.cut, f"{label}: writes got no answer: {self.cut[:3]}")
        check(not self.server_errors, f"{label}: {len(self.server_errors)} writes answered 5xx, e.g. {self.server_errors[:3]}")
        check(not self.unexpected, f"{label}: writes answered {self.unexpected[:3]}")


def event_key(body):
    event = json.loads(body)
    check(event.get("type") in EVENT_TYPES, f"an event of type {event.get('type')!r}: {body[:200]!r}")
    data = event.get("data") or {}
    check(isinstance(data.get("id"), int) and isinstance(data.get("product_id"), int),
          f"an event without the curation's id and product_id: {body[:300]!r}")
    wanted = ["submitted"] if event["type"] == "curation.submitted" else ["passed", "rejected"]
    check(data.get("status") in wanted, f"a {event['type']} event with status {data.get('status')!r}")
    return event["type"], data["id"], data


def pending(server, token, subscription):
    reply = server.request("GET", f"/api/v1/webhook-subscriptions/{subscription}", token=token)
    check(reply.status == 200, f"reading the subscription gave {reply.status}: {reply.body[:200]!r}")
    body = reply.json()
    check(body["active"], f"the subscription was disabled: {body.get('disabled_reason')}")
    return body["pending"]


def drain(server, token, subscription, receiver, expected, label):
    """Waits until the receiver has every expected event and nothing is pending; the seconds."""
    started = time.monotonic()
    while True:
        check(not receiver.unverified, f"{label}: {len(receiver.unverified)} requests failed verification by "
                                       f"standardwebhooks, e.g. {receiver.unverified[:2]}")
        got, left = receiver.unique(), pending(server, token, subscription)
        if got >= expected and left == 0:
            return time.monotonic() - started
        if time.monotonic() - started > DRAIN_BOUND:
            fail(f"{label}: after {DRAIN_BOUND:.0f} s {got} of {expected} events delivered, {left} pending")
        time.sleep(0.25)


def committed_events(server, token, partner):
    """The events the database says were written: every curation of the partner was submitted,
    and decided when its status is no longer `submitted`."""
    events, cursor = set(), ""
    while True:
        reply = server.request("GET", f"/api/v1/curations?retail_partner_id={partner}&limit=500&cursor={cursor}",
                               token=token)
        check(reply.status == 200, f"listing the curations gave {reply.status}: {reply.body[:200]!r}")
        page = reply.json()
        for c in page["data"]:
            events.add(("curation.submitted", c["id"]))
            if c["status"] != "submitted":
                events.add(("curation.decided", c["id"]))
        cursor = page.get("next_cursor")
        if not cursor:
            return events


def setup(server, token, clients, receiver):
    """A retail partner, one business and product per client, and the partner's subscription."""
    code = f"W{os.getpid() % 10_000:04d}"
    reply = server.request("POST", "/api/v1/retail-partners",
                           {"code": code, "name": "PT Webhook Uji Tbk", "brand": "Webhookmart"}, token=token)
    check(reply.status == 201, f"creating the retail partner gave {reply.status}: {reply.body[:200]!r}")
    partner = reply.json()["id"]
    products = []
    for n in range(clients):
        reply = server.request("POST", "/api/v1/businesses", business(9_000 + n), token=token)
        check(reply.status == 201, f"creating a business gave {reply.status}: {reply.body[:200]!r}")
        reply = server.request("POST", "/api/v1/products", {"business_id": reply.json()["id"],
                               "name": f"Keripik Uji {n}", "category": "food"}, token=token)
        check(reply.status == 201, f"creating a product gave {reply.status}: {reply.body[:200]!r}")
        products.append(reply.json()["id"])
    reply = server.request("POST", "/api/v1/webhook-subscriptions",
                           {"retail_partner_id": partner, "url": receiver.url, "event_types": EVENT_TYPES},
                           token=token)
    check(reply.status == 201, f"subscribing gave {reply.status}: {reply.body[:300]!r}")
    answer = reply.json()
    check(answer["secret"].startswith("whsec_"), "the secret is not a whsec_ secret")
    return partner, products, answer["subscription"]["id"], answer["secret"]


def check_forgery_refused(receiver):
    """The verification is not a formality: a delivered request passes again as it came, but with
    one byte of its body changed, or against another secret, the library refuses it."""
    _, body, headers = receiver.snapshot()[-1]
    Webhook(receiver.secret).verify(body, headers)
    for secret, data in [(receiver.secret, body.replace(b"0", b"1", 1) if b"0" in body else body + b" "),
                         ("whsec_" + "QUJD" * 8, body)]:
        try:
            Webhook(secret).verify(data, headers)
        except WebhookVerificationError:
            continue
        fail("standardwebhooks accepted a forged event: the verification proves nothing")


def check_order(accepted, written, label):
    """The first arrival of each webhook-id, in order: per product the order of its writes, and
    no event before one that was acknowledged before it was sent."""
    first, keys_of, bodies = [], {}, {}
    for message, body, _ in accepted:
        if message in bodies:
            check(bodies[message] == body, f"{label}: webhook-id {message} came again with another body")
            continue
        bodies[message] = body
        kind, curation, data = event_key(body)
        key = (kind, curation)
        check(key not in keys_of, f"{label}: {kind} of curation {curation} came under two webhook-ids "
                                  f"({keys_of.get(key)} and {message})")
        keys_of[key] = message
        first.append((key, data))
    # Per product: submitted, decided, submitted … with increasing curation ids.
    last = {}
    for (kind, curation), data in first:
        product = data["product_id"]
        previous = last.get(product)
        if kind == "curation.submitted":
            check(previous is None or (previous[0] == "curation.decided" and previous[1] < curation),
                  f"{label}: product {product}: {kind} of curation {curation} arrived after {previous}")
        else:
            check(previous == ("curation.submitted", curation),
                  f"{label}: product {product}: {kind} of curation {curation} arrived after {previous}")
        last[product] = (kind, curation)
    # Across products: if a's write was acknowledged before b's was sent, a arrives first.
    latest_sent, latest = -1.0, None
    for key, _ in first:
        if key not in written:
            continue  # a write cut off by the kill: its times are unknown
        sent, acknowledged, _ = written[key]
        check(latest_sent <= acknowledged,
              f"{label}: {key} (acknowledged at {acknowledged:.3f}) arrived after {latest} (sent at {latest_sent:.3f})")
        if sent > latest_sent:
            latest_sent, latest = sent, key
    return keys_of


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], required=True)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--before", type=float, default=3.0, help="seconds of load before the receiver goes down")
    parser.add_argument("--down", type=float, default=10.0, help="seconds the receiver is down")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds each client waits between writes")
    a = parser.parse_args()
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="umkm-webhooks-")
    url = pg_database("umkm_faults_webhooks") if a.backend == "postgres" else sqlite_url(workdir)
    server = Server(f"webhooks-{a.backend}", url, {"WEBHOOK_ALLOW_PRIVATE_TARGETS": "true", "RUST_LOG": "info"})
    server.start()
    receiver = Receiver()
    receiver.start()
    figures = {}
    try:
        token = server.admin()
        partner, products, subscription, secret = setup(server, token, a.clients, receiver)
        receiver.secret = secret
        writers = Writers(server, token, partner, products, a.pause)

        # 1. Load with deliveries running; the receiver answers 503, then is shut. The writers
        # stop while it is shut: nothing can be delivered then, so written = delivered + pending
        # exactly. Then it comes back.
        writers.run()
        time.sleep(a.before)
        before_down = writers.acknowledged()
        delivered_before = receiver.unique()
        down_at = time.monotonic()
        with receiver.lock:
            receiver.mode = "503"
        time.sleep(a.down / 2)
        receiver.stop()
        time.sleep(max(0.0, a.down / 2 - 1.5))
        writers.join()
        writers.check("load")
        time.sleep(0.5)
        written = writers.acknowledged()
        delivered, waiting = receiver.unique(), pending(server, token, subscription)
        time.sleep(max(0.0, down_at + a.down - time.monotonic()))
        receiver.start()
        with receiver.lock:
            receiver.mode = "up"
        figures["down"] = time.monotonic() - down_at
        print(f"load: {a.clients} clients wrote {written} events, {before_down} of them in {a.before:.0f} s while "
              f"deliveries ran ({delivered_before} delivered then), the rest while the receiver was down "
              f"({a.down / 2:.0f} s of 503, then shut); written {written} = {delivered} delivered + {waiting} pending",
              flush=True)
        check(not receiver.unverified, f"load: {len(receiver.unverified)} requests failed verification by "
                                       f"standardwebhooks, e.g. {receiver.unverified[:2]}")
        check(written == delivered + waiting,
              f"load: {written} events written, but {delivered} delivered + {waiting} pending = {delivered + waiting}")
        check(delivered_before > 0 and waiting > 0, "load: nothing was delivered before the outage, or nothing "
                                                     "was pending after it: the test proved nothing")
        drained = drain(server, token, subscription, receiver, written, "after the outage")
        figures["drain_outage"] = drained
        keys = check_order(receiver.snapshot(), writers.written, "after the outage")
        check(set(keys) == set(writers.written),
              f"after the outage: delivered {len(keys)} distinct events, written {len(writers.written)}; "
              f"missing {sorted(set(writers.written) - set(keys))[:5]}, extra {sorted(set(keys) - set(writers.written))[:5]}")
        check_forgery_refused(receiver)
        print(f"after the outage: the receiver down {figures['down']:.1f} s, {receiver.refused} attempts answered "
              f"503; back up, all {written} events arrived in order within {drained:.1f} s "
              f"({waiting / drained:.0f} events/s)", flush=True)

        # 2. SIGKILL while a delivery is inside the receiver and writes are in flight.
        with receiver.lock:
            receiver.delay = 0.2
        writers.run()
        time.sleep(2.0)
        deadline = time.monotonic() + 10
        while True:
            with receiver.lock:
                holding = set(receiver.held)
            if holding:
                break
            check(time.monotonic() < deadline, "kill: no delivery reached the receiver in 10 s")
            time.sleep(0.005)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        killed_at = time.monotonic()
        writers.join()
        writers.check("kill", killed=True)
        with receiver.lock:
            receiver.delay = 0.0
        acked = writers.acknowledged()
        print(f"kill: SIGKILL with {len(holding)} delivery held by the receiver, {acked - written} more events "
              f"acknowledged, {len(writers.cut)} writes cut off", flush=True)
        server.token = None
        server.start()
        restarted = time.monotonic() - killed_at
        token = server.admin()
        expected = committed_events(server, token, partner)
        check(set(writers.written) <= expected,
              f"kill: acknowledged events lost: {sorted(set(writers.written) - expected)[:5]}")
        extra = expected - set(writers.written)
        check(len(extra) <= len(writers.cut),
              f"kill: {len(extra)} events in the database were never acknowledged, only {len(writers.cut)} writes cut off")
        drained = drain(server, token, subscription, receiver, len(expected), "after the kill")
        figures["drain_kill"] = drained
        accepted = receiver.snapshot()
        keys = check_order(accepted, writers.written, "after the kill")
        check(set(keys) == expected,
              f"after the kill: delivered {len(keys)} distinct events, written {len(expected)}; "
              f"missing {sorted(expected - set(keys))[:5]}, extra {sorted(set(keys) - expected)[:5]}")
        check(not receiver.unverified,
              f"{len(receiver.unverified)} requests failed verification, e.g. {receiver.unverified[:2]}")
        duplicates = len(accepted) - len(keys)
        for message in holding:
            again = sum(1 for m, _, _ in accepted if m == message)
            check(again >= 2, f"after the kill: {message}, held by the receiver at the kill, came {again} time(s)")
        check(pending(server, token, subscription) == 0, "after the kill: deliveries still pending")
        check(server.request("GET", "/healthz").status == 200, "the server is not healthy at the end")
        print(f"after the kill: restarted in {restarted:.1f} s; all {len(expected)} events ({len(extra)} of writes "
              f"cut off) arrived in order within {drained:.1f} s; {duplicates} duplicates, each with its webhook-id "
              f"and body", flush=True)
        print(f"webhooks ({a.backend}): OK: {len(expected)} events written, {len(keys)} delivered, {len(accepted)} "
              f"requests accepted ({duplicates} duplicates), {receiver.refused} answered 503, all verified by "
              f"standardwebhooks {STANDARDWEBHOOKS}; down {figures['down']:.1f} s; max drain "
              f"{max(figures['drain_outage'], figures['drain_kill']):.1f} s; {time.monotonic() - started:.0f} s in all",
              flush=True)
    finally:
        receiver.stop()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
