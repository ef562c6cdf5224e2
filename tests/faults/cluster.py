#!/usr/bin/env python3
"""A real cluster on this machine: PostgreSQL primary + streaming replica, two API instances,
HAProxy in front; the promises of "Read replicas" and "Deployment" under mixed load.

    python3 tests/faults/cluster.py [--short] [--clients 8]

Builds, all on loopback ports of its own and in a temporary directory (run as the `postgres`
user when we are root, as outage.py does):
  - a primary (initdb, wal_level=replica, pg_stat_statements) with the database `umkm`;
  - a hot standby made by `pg_basebackup -R`, streaming from it;
  - two server processes with DATABASE_URL = primary, DATABASE_READ_URLS = replica,
    REPLICA_MAX_LAG_MS=1000 and one JWT_SECRET;
  - HAProxy (Debian's package, installed when missing and we are root) round-robin over them,
    health-checked on /readyz every 500 ms, retrying on a failed connection or an empty answer
    with redispatch.
Then, with client threads that each create businesses (every POST with an Idempotency-Key) and
read each one back with `?q=<its unique name>` sending the latest Consistency-Token, plus a
list that tolerates lag:
  1. mixed load: 0 stale reads, 0 errors; the replica serves reads (pg_stat_statements on both);
  2. the replica stopped mid-load: 0 errors, /readyz of both instances says unhealthy within
     ~1 s; the primary serves; started again: healthy again and serving (recovery time);
  3. replay paused on the replica while clients write: /readyz says "lags …" within ~2 s,
     0 stale reads; resumed: healthy again;
  4. one instance killed with SIGKILL mid-load: HAProxy routes around it, no acknowledged
     write is lost (checked on the primary); errors in the failover window are reported;
     the instance is restarted and HAProxy takes it back (recovery time);
  5. across instances, addressed directly: one Idempotency-Key gives one record, the login
     throttle counts failures on both, a user disabled through A is refused by B within ~5 s.
Everything it started is stopped on exit, on failure too. Server and HAProxy logs stay in
FAULTS_LOG_DIR (cluster-*.log).
"""
import argparse, glob, http.client, itertools, json, os, secrets, shutil, signal, socket, subprocess, sys
import tempfile, threading, time, urllib.parse

from common import LOG_DIR, Reply, Server, apt_install, business, check, free_port

MAX_LAG_MS = 1000
UNHEALTHY_BOUND = 1.5  # s: replica stopped -> /readyz says so (check every 250 ms; ~1 s promised)
LAG_BOUND = 2.5  # s: replay paused -> /readyz says it lags (1 s of lag + a check; ~2 s promised)
HEALTHY_BOUND = 10.0  # s: replica back / replay resumed -> in rotation again
IDENTITY_TTL = 5.0  # s: src/accounts.rs
SLACK = 1.0  # polling and scheduling on a loaded 2-core machine
FAILOVER_WINDOW = 3.0  # s after the kill: HAProxy's checks (inter 500 ms, fall 2) take it out
RUN = secrets.token_hex(3)


def log(message):
    print(message, flush=True)


def pg_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class Cleanup:
    """What to undo on exit, last first; every step runs even if one before it fails."""

    def __init__(self):
        self.steps = []

    def add(self, what, step):
        self.steps.append((what, step))

    def run(self):
        while self.steps:
            what, step = self.steps.pop()
            try:
                step()
            except Exception as e:  # noqa: BLE001 - keep cleaning up
                print(f"cleanup: {what}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)


class Node:
    """One PostgreSQL server in the temporary directory, trust auth on 127.0.0.1."""

    def __init__(self, name, tmp, data):
        self.name, self.tmp, self.data = name, tmp, data
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        # In the cluster's own directory: FAULTS_LOG_DIR (mktemp, mode 0700) is closed to the
        # postgres user. `keep_log` copies it there at the end.
        self.log = os.path.join(tmp, f"pg-{name}.log")
        if self.as_user and not os.path.exists(self.log):
            open(self.log, "a").close()
            shutil.chown(self.log, "postgres")
        self.url = f"postgres://umkm@127.0.0.1:{self.port}/umkm"

    def keep_log(self):
        if os.path.exists(self.log):
            shutil.copy(self.log, os.path.join(LOG_DIR, f"cluster-{RUN}-pg-{self.name}.log"))

    def run(self, *args, timeout=120):
        done = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: {' '.join(args[:2])}: {done.stderr.strip()[-1000:]}")
        return done.stdout

    def start(self):
        self.run(pg_bin("pg_ctl"), "-D", self.data, "-w", "-t", "60", "-l", self.log, "-o",
                 f"-p {self.port} -k {self.tmp}", "start")

    def stop(self, mode="fast"):
        self.run(pg_bin("pg_ctl"), "-D", self.data, "-w", "-t", "60", "-m", mode, "stop")

    def running(self):
        return os.path.exists(os.path.join(self.data, "postmaster.pid"))

    def kill(self):
        """Cleanup: stop it whatever its state (immediate, then SIGKILL to its postmaster)."""
        if not self.running():
            return
        try:
            self.stop("immediate")
        except Exception:  # noqa: BLE001
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                os.kill(int(f.readline()), signal.SIGKILL)

    def sql(self, query, db="umkm"):
        done = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                               "-p", str(self.port), "-U", "umkm", "-d", db, "-c", query],
                              capture_output=True, text=True, timeout=30, env=dict(os.environ, PGCONNECT_TIMEOUT="3"))
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: {query[:80]}: {done.stderr.strip()}")
        return done.stdout.strip()

    def list_calls(self):
        """Calls of the businesses list so far: (searches by name, other list pages)."""
        rows = self.sql("SELECT (query ILIKE '%LIKE%')::int, coalesce(sum(calls), 0) FROM pg_stat_statements "
                        "WHERE query ILIKE 'SELECT%FROM \"businesses\"%ORDER BY%LIMIT%' GROUP BY 1")
        got = {0: 0, 1: 0}
        for line in filter(None, rows.splitlines()):
            like, calls = line.split("|")
            got[int(like)] = int(calls)
        return got[1], got[0]


def build_cluster(tmp, cleanup):
    """Primary + streaming hot standby; returns (primary, replica), both running."""
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres")
    primary = Node("primary", tmp, os.path.join(tmp, "primary"))
    Node.run(primary, pg_bin("initdb"), "-D", primary.data, "-U", "umkm", "-A", "trust", "-E", "UTF8",
             "--locale=C.UTF-8", "--no-sync")
    with open(os.path.join(primary.data, "postgresql.conf"), "a") as f:
        # Copied to the replica by pg_basebackup; each node gets its port on the command line.
        f.write(f"""
listen_addresses = '127.0.0.1'
unix_socket_directories = '{tmp}'
wal_level = replica
max_wal_senders = 5
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
fsync = off
max_connections = 100
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = top
""")
    cleanup.add("keep the primary's log", primary.keep_log)
    primary.start()
    cleanup.add("stop the primary", primary.kill)
    primary.sql("CREATE DATABASE umkm", db="postgres")
    primary.sql("CREATE EXTENSION pg_stat_statements")  # replicated to the standby's catalog
    replica = Node("replica", tmp, os.path.join(tmp, "replica"))
    replica.run(pg_bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "umkm", "-D",
                replica.data, "-R", "-X", "stream", "-c", "fast", "--no-sync")
    cleanup.add("keep the replica's log", replica.keep_log)
    replica.start()
    cleanup.add("stop the replica", replica.kill)
    deadline = time.monotonic() + 30
    while primary.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") != "1":
        check(time.monotonic() < deadline, "the replica is not streaming 30 s after it started")
        time.sleep(0.1)
    check(replica.sql("SELECT pg_is_in_recovery()") == "t", "the replica is not a standby")
    return primary, replica


def request(port, method, path, body=None, token=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        all_headers = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=data, headers=all_headers)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


class HAProxy:
    def __init__(self, tmp, servers):
        self.port = free_port()
        self.socket = os.path.join(tmp, "haproxy.sock")
        self.cfg = os.path.join(tmp, "haproxy.cfg")
        self.log = os.path.join(LOG_DIR, f"cluster-{RUN}-haproxy.log")
        backends = "\n".join(f"    server {s.short} 127.0.0.1:{s.port} check" for s in servers)
        with open(self.cfg, "w") as f:
            f.write(f"""global
    maxconn 2000
    stats socket {self.socket} mode 600 level admin
    log stdout format raw local0 info

defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout check 1s
    retries 3
    option redispatch 1
    # A connection refused, or closed with no answer or half an answer (an instance killed
    # mid-request), is tried again on the other instance. POSTs carry an Idempotency-Key, so a
    # retried write is replayed, not made twice.
    retry-on conn-failure empty-response junk-response
    # The whole request is read before it goes to an instance, so that a retry has all of it.
    option http-buffer-request

frontend api
    bind 127.0.0.1:{self.port}
    default_backend instances

backend instances
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
{backends}
""")
        self.process, self.count = None, len(servers)

    def start(self):
        checked = subprocess.run(["haproxy", "-c", "-f", self.cfg], capture_output=True, text=True)
        check(checked.returncode == 0, f"haproxy rejected its config: {checked.stdout}{checked.stderr}")
        out = open(self.log, "a")
        self.process = subprocess.Popen(["haproxy", "-f", self.cfg, "-db"], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while [row["status"] for row in self.servers().values()] != ["UP"] * self.count:
            check(self.process.poll() is None, f"haproxy exited, see {self.log}")
            check(time.monotonic() < deadline, f"haproxy: the instances not UP within 20 s: {self.servers()}")
            time.sleep(0.1)
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def servers(self):
        """Each server's row of `show stat`: status (UP/DOWN/…), stot (requests sent to it)."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(self.socket)
                s.sendall(b"show stat\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
        except OSError:
            return {}
        lines = data.decode().splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        names = lines[0][2:].split(",")
        rows = [dict(zip(names, line.split(","))) for line in lines[1:] if line]
        return {r["svname"]: r for r in rows if r["pxname"] == "instances" and r["svname"] not in ("BACKEND",)}

    def retried(self):
        """Requests HAProxy logged as sent again (the retries field of httplog, `+1` when redispatched)."""
        count = 0
        with open(self.log, errors="replace") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 10 and fields[10].count("/") == 4 and fields[10].rsplit("/", 1)[1] not in ("0", "+0"):
                    count += 1
        return count

    def status(self, short):
        return self.servers().get(short, {}).get("status", "?")

    def sent(self):
        return {name: int(row.get("stot") or 0) for name, row in self.servers().items()}


def ensure_haproxy():
    apt_install({"haproxy": "haproxy"})


class Load:
    """Client threads through HAProxy: create (with Idempotency-Key), read it back by name with
    the latest Consistency-Token, then a list page without a token (tolerates lag)."""

    seq = itertools.count(1)

    def __init__(self, port, token, clients, ledger):
        self.port, self.token, self.clients, self.ledger = port, token, clients, ledger
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = []
        self.requests = self.writes = self.reads = self.replayed = self.no_token = 0
        self.stale, self.errors, self.unexpected = [], [], []
        self.started = self.ended = None

    def __enter__(self):
        self.started = time.monotonic()
        for cid in range(self.clients):
            t = threading.Thread(target=self.client, args=(cid,), daemon=True, name=f"client-{cid}")
            t.start()
            self.threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=60)
        if self.ended is None:
            self.ended = time.monotonic()
        return self

    def call(self, method, path, body=None, headers=None):
        # An error is kept with when its request began and ended: one in flight at a kill began
        # before it, and still belongs to it.
        at = time.monotonic()
        try:
            reply = request(self.port, method, path, body, self.token, headers)
        except (OSError, http.client.HTTPException) as e:
            with self.lock:
                self.requests += 1
                self.errors.append((at, time.monotonic(), method, path.split("?")[0], f"{type(e).__name__}: {e}"))
            return None
        with self.lock:
            self.requests += 1
            if reply.status >= 500:
                self.errors.append((at, time.monotonic(), method, path.split("?")[0],
                                    f"{reply.status} {reply.body[:160]!r}"))
                return None
        return reply

    def client(self, cid):
        consistency = None
        while not self.stopping.is_set():
            n = next(Load.seq)
            name = f"Kedai Klaster {RUN}-{n:06d}"  # fixed width: no name is a part of another
            reply = self.call("POST", "/api/v1/businesses", business(n, name=name),
                              {"Idempotency-Key": f"cluster-{RUN}-{n}"})
            if reply is None:
                continue
            if reply.status != 201:
                with self.lock:
                    self.unexpected.append(f"POST {reply.status} {reply.body[:200]!r}")
                continue
            made = reply.json()["id"]
            with self.lock:
                self.writes += 1
                self.ledger[name] = made
                self.replayed += reply.header("idempotent-replayed") == "true"
                if reply.header("consistency-token"):
                    consistency = reply.header("consistency-token")
                else:
                    self.no_token += 1
            headers = {"Consistency-Token": consistency} if consistency else {}
            reply = self.call("GET", f"/api/v1/businesses?q={urllib.parse.quote(name)}&limit=5", headers=headers)
            if reply is not None:
                if reply.status != 200:
                    with self.lock:
                        self.unexpected.append(f"GET ?q {reply.status} {reply.body[:200]!r}")
                else:
                    found = [b["id"] for b in reply.json()["data"]]
                    with self.lock:
                        self.reads += 1
                        if made not in found:
                            self.stale.append((time.monotonic(), name, made, consistency, found))
            reply = self.call("GET", "/api/v1/businesses?limit=10")
            if reply is not None:
                with self.lock:
                    if reply.status == 200:
                        self.reads += 1
                    else:
                        self.unexpected.append(f"GET list {reply.status} {reply.body[:200]!r}")

    def figures(self):
        took = (self.ended or time.monotonic()) - self.started
        return (f"{self.requests} requests in {took:.1f} s ({self.requests / took:.0f}/s): {self.writes} writes "
                f"acknowledged, {self.reads} reads, {len(self.stale)} stale, {len(self.errors)} errors, "
                f"{self.replayed} writes answered as replays (a retried POST), {len(self.unexpected)} other "
                f"answers")

    def verdict(self, phase, errors_allowed=False):
        check(not self.stale, f"{phase}: {len(self.stale)} stale reads (own write missing), first: {self.stale[:3]}")
        check(not self.unexpected, f"{phase}: unexpected answers: {self.unexpected[:5]}")
        check(self.no_token == 0, f"{phase}: {self.no_token} writes answered without a Consistency-Token")
        if not errors_allowed:
            check(not self.errors, f"{phase}: {len(self.errors)} errors, first: {self.errors[:5]}")
        check(self.writes > 0, f"{phase}: no write went through")


def readyz(server):
    """The replica as the instance's operators' /readyz (on METRICS_ADDR) describes it."""
    try:
        reply = request(server.metrics_port, "GET", "/readyz", timeout=5)
    except (OSError, http.client.HTTPException) as e:
        return None, str(e)
    if reply.status != 200:
        return None, f"{reply.status}"
    replicas = reply.json().get("replicas") or []
    return (replicas[0] if replicas else None), None


def until_replica(servers, predicate, bound, what):
    """Polls /readyz of every instance until `predicate(replica)` holds on all; the seconds that took."""
    started = time.monotonic()
    last = {}
    while True:
        done = True
        for s in servers:
            replica, error = readyz(s)
            last[s.name] = replica if replica is not None else error
            done = done and replica is not None and predicate(replica)
        took = time.monotonic() - started
        if done:
            return took, last
        check(took <= bound, f"{what}: not within {bound} s; /readyz said {json.dumps(last)}")
        time.sleep(0.05)


def unhealthy(reason_prefix):
    return lambda r: r["healthy"] is False and (r.get("reason") or "").startswith(reason_prefix)


def healthy(r):
    return r["healthy"] is True


def grow(node, before, seconds, what):
    """Waits up to `seconds` for `node`'s list calls to pass `before` (searches, pages)."""
    deadline = time.monotonic() + seconds
    while True:
        now = node.list_calls()
        if sum(now) > sum(before):
            return now
        check(time.monotonic() < deadline, f"{what}: the {node.name} served no list in {seconds} s")
        time.sleep(0.2)


def share(primary_delta, replica_delta):
    total = primary_delta + replica_delta
    return f"{primary_delta}/{total} ({100 * primary_delta / total:.0f} %)" if total else "0/0"


def delta(after, before):
    return tuple(a - b for a, b in zip(after, before))


def phase_mixed(ctx, seconds):
    primary, replica = ctx["primary"], ctx["replica"]
    p0, r0 = primary.list_calls(), replica.list_calls()
    x0 = int(replica.sql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'umkm'"))
    sent0 = ctx["proxy"].sent()
    with Load(ctx["proxy"].port, ctx["token"], ctx["clients"], ctx["ledger"]) as load:
        time.sleep(seconds)
    load.stop()
    p1, r1 = primary.list_calls(), replica.list_calls()
    x1 = int(replica.sql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'umkm'"))
    sent1 = ctx["proxy"].sent()
    ctx["loads"].append(load)
    log(f"1. mixed load, {ctx['clients']} clients through HAProxy: {load.figures()}")
    dp, dr = delta(p1, p0), delta(r1, r0)
    log(f"   HAProxy sent a {sent1.get('a', 0) - sent0.get('a', 0)}, b {sent1.get('b', 0) - sent0.get('b', 0)}; "
        f"replica: xact_commit +{x1 - x0}; primary's share of the name searches sent with a token "
        f"{share(dp[0], dr[0])}, of the list pages sent without {share(dp[1], dr[1])}")
    load.verdict("1. mixed load")
    check(sum(dr) > 0, "1. mixed load: the replica served no list (pg_stat_statements)")
    check(x1 > x0, "1. mixed load: the replica's xact_commit did not grow")


def phase_replica_down(ctx, dwell):
    primary, replica, servers = ctx["primary"], ctx["replica"], ctx["servers"]
    with Load(ctx["proxy"].port, ctx["token"], ctx["clients"], ctx["ledger"]) as load:
        time.sleep(dwell)
        p0 = primary.list_calls()
        stopping = time.monotonic()
        replica.stop("fast")
        stopped = time.monotonic()
        took, said = until_replica(servers, unhealthy("unreachable"), UNHEALTHY_BOUND, "2. replica stopped: /readyz")
        detected = time.monotonic() - stopping
        log(f"2. replica stopped (pg_ctl stop -m fast took {stopped - stopping:.2f} s): both instances' /readyz "
            f"say unhealthy {detected:.2f} s after the stop began ({took:.2f} s after it returned): "
            f"{said[servers[0].name].get('reason')!r}")
        reads0, w0 = load.reads, load.writes
        time.sleep(dwell)
        p1 = primary.list_calls()
        log(f"   replica down {dwell:.0f} s: primary served {sum(delta(p1, p0))} lists, clients read {load.reads - reads0} "
            f"and wrote {load.writes - w0}, errors so far {len(load.errors)}")
        starting = time.monotonic()
        replica.start()
        started = time.monotonic()
        took, said = until_replica(servers, healthy, HEALTHY_BOUND, "2. replica started again: /readyz healthy")
        recovery = time.monotonic() - starting
        r0 = replica.list_calls()
        r1 = grow(replica, r0, 5, "2. replica back")
        log(f"   replica started again (pg_ctl start -w took {started - starting:.2f} s): healthy on both "
            f"instances {recovery:.2f} s after the start began; it serves again: +{sum(delta(r1, r0))} lists; "
            f"lag {said[servers[0].name].get('lag_ms')} ms")
        time.sleep(min(dwell, 2))
    ctx["loads"].append(load)
    ctx["recovery"]["replica"] = recovery
    log(f"   {load.figures()}")
    load.verdict("2. replica stopped")


def phase_replay_paused(ctx, dwell):
    primary, replica, servers = ctx["primary"], ctx["replica"], ctx["servers"]
    with Load(ctx["proxy"].port, ctx["token"], ctx["clients"], ctx["ledger"]) as load:
        time.sleep(dwell)
        pausing = time.monotonic()
        replica.sql("SELECT pg_wal_replay_pause()")
        took, said = until_replica(servers, unhealthy("lags"), LAG_BOUND, "3. replay paused: /readyz reports the lag")
        detected = time.monotonic() - pausing
        out = replica.list_calls()
        w0 = load.writes
        log(f"3. replay paused on the replica: both instances' /readyz say {said[servers[0].name].get('reason')!r} "
            f"(healthy false) {detected:.2f} s after the pause")
        time.sleep(dwell)
        lag = readyz(servers[0])[0]
        out_end = replica.list_calls()
        resuming = time.monotonic()
        replica.sql("SELECT pg_wal_replay_resume()")
        took, said = until_replica(servers, healthy, HEALTHY_BOUND, "3. replay resumed: /readyz healthy")
        back = time.monotonic() - resuming
        log(f"   paused {resuming - pausing:.1f} s while clients wrote {load.writes - w0}; /readyz then: lag "
            f"{lag and lag.get('lag_ms')} ms, {lag and lag.get('reason')!r}; replica served "
            f"{sum(delta(out_end, out))} lists while out of rotation; resumed: healthy again after {back:.2f} s")
        check(sum(delta(out_end, out)) <= ctx["clients"],
              f"3. replay paused: the replica served {sum(delta(out_end, out))} lists while it lagged past the bound")
        r0 = replica.list_calls()
        grow(replica, r0, 5, "3. replay resumed")
        time.sleep(min(dwell, 2))
    ctx["loads"].append(load)
    ctx["recovery"]["lag"] = back
    log(f"   {load.figures()}")
    load.verdict("3. replay paused")


def phase_instance_killed(ctx, dwell):
    proxy, servers = ctx["proxy"], ctx["servers"]
    victim = servers[1]
    retried0 = proxy.retried()
    with Load(proxy.port, ctx["token"], ctx["clients"], ctx["ledger"]) as load:
        time.sleep(dwell)
        before = len(load.errors)
        killed = time.monotonic()
        victim.stop(signal.SIGKILL)
        while proxy.status(victim.short) != "DOWN":
            check(time.monotonic() - killed < 10, f"4. HAProxy did not mark {victim.name} DOWN within 10 s")
            time.sleep(0.02)
        down = time.monotonic() - killed
        log(f"4. {victim.name} killed (SIGKILL) mid-load: HAProxy marked it DOWN after {down:.2f} s")
        time.sleep(dwell)
        restarting = time.monotonic()
        victim.start()
        while proxy.status(victim.short) != "UP":
            check(time.monotonic() - restarting < 60, f"4. HAProxy did not take {victim.name} back within 60 s")
            time.sleep(0.05)
        recovery = time.monotonic() - restarting
        sent0 = proxy.sent().get(victim.short, 0)
        time.sleep(max(dwell, 2))
        sent1 = proxy.sent().get(victim.short, 0)
    ctx["loads"].append(load)
    ctx["recovery"]["instance"] = recovery
    # In the window: in flight at some moment of it (begun before the kill and answered after it
    # counts: it was sent to the instance that died).
    window = [e for e in load.errors if e[1] >= killed and e[0] <= killed + FAILOVER_WINDOW]
    outside = [e for e in load.errors if e not in window]
    log(f"   restarted: UP in HAProxy {recovery:.2f} s after the restart began, then sent {sent1 - sent0} requests")
    log(f"   {load.figures()}")
    log(f"   HAProxy sent {proxy.retried() - retried0} requests again (retry-on conn-failure empty-response junk-response, "
        f"redispatched to the other instance)")
    log(f"   errors in the failover window ({FAILOVER_WINDOW:.0f} s after the kill): {len(window)}"
        + "".join(f"\n     {since(e, killed)} {e[2]} {e[3]}: {e[4]}" for e in window[:10]))
    ctx["failover_errors"] = len(window)
    check(before == 0 and not outside, "4. errors outside the failover window:"
          + "".join(f"\n     {since(e, killed)} {e[2]} {e[3]}: {e[4]}" for e in outside[:5]))
    check(sent1 > sent0, f"4. HAProxy sent nothing to the restarted {victim.name}")
    load.verdict("4. instance killed", errors_allowed=True)
    lost = lost_writes(ctx)
    check(not lost, f"4. {len(lost)} acknowledged writes are not in the database: {lost[:5]}")


def since(error, moment):
    """When an error's request began and ended, in seconds from `moment`."""
    return f"sent {error[0] - moment:+.2f} s, answered {error[1] - moment:+.2f} s"


def lost_writes(ctx):
    """Every acknowledged write (name -> id) must be on the primary with that id."""
    rows = ctx["primary"].sql(f"SELECT id, name FROM businesses WHERE name LIKE 'Kedai Klaster {RUN}-%'")
    stored = {}
    for line in filter(None, rows.splitlines()):
        id_, name = line.split("|", 1)
        stored.setdefault(name, []).append(int(id_))
    lost = [(n, i) for n, i in ctx["ledger"].items() if stored.get(n) != [i]]
    extra = len(set(stored) - set(ctx["ledger"]))
    log(f"   acknowledged writes so far: {len(ctx['ledger'])}, all on the primary with their id: {not lost}; "
        f"{extra} committed without the client seeing the answer; "
        f"{sum(len(v) > 1 for v in stored.values())} names stored twice")
    check(all(len(v) == 1 for v in stored.values()), "a write was stored twice")
    return lost


def phase_across(ctx):
    a, b = ctx["servers"]
    admin = ctx["token"]
    # Idempotency-Key: A then B, one record.
    key = f"across-{RUN}"
    body = business(900_000 + next(Load.seq), name=f"Kedai Lintas {RUN}")
    first = request(a.port, "POST", "/api/v1/businesses", body, admin, {"Idempotency-Key": key})
    check(first.status == 201, f"5. idempotency: first POST on {a.name}: {first.status} {first.body[:200]!r}")
    again = request(b.port, "POST", "/api/v1/businesses", body, admin, {"Idempotency-Key": key})
    check(again.status == 201, f"5. idempotency: replay on {b.name}: {again.status} {again.body[:200]!r}")
    check(again.header("idempotent-replayed") == "true", f"5. idempotency: {b.name} did not mark the replay")
    check(again.json()["id"] == first.json()["id"],
          f"5. idempotency: {a.name} made {first.json()['id']}, {b.name} answered {again.json()['id']}")
    count = ctx["primary"].sql(f"SELECT count(*) FROM businesses WHERE nib = '{body['nib']}'")
    check(count == "1", f"5. idempotency: {count} records for one key")
    log(f"5. Idempotency-Key on {a.name} then {b.name}: one record (id {first.json()['id']}), the second answer "
        f"a replay (Idempotent-Replayed: true)")

    # The login throttle: failures on both instances count together.
    officer = {"email": f"petugas-{RUN}@cluster.test", "password": secrets.token_urlsafe(18), "role": "officer"}
    made = request(a.port, "POST", "/api/v1/users", officer, admin)
    check(made.status == 201, f"5. creating an officer: {made.status} {made.body[:200]!r}")
    statuses, where = [], []
    for attempt in range(1, 9):
        server = (a, b)[(attempt - 1) % 2]
        got = request(server.port, "POST", "/api/v1/auth/token", {"email": officer["email"], "password": "wrong"})
        statuses.append(got.status)
        where.append(server.short)
        if got.status == 429:
            check(got.header("retry-after"), "5. throttle: 429 without Retry-After")
            break
    check(statuses[:5] == [401] * 5 and statuses[5:6] == [429],
          f"5. throttle: attempts alternating {where} answered {statuses}; expected five 401 then 429")
    right = [request(s.port, "POST", "/api/v1/auth/token", {"email": officer["email"],
                                                            "password": officer["password"]}).status for s in (a, b)]
    check(right == [429, 429], f"5. throttle: the right password after the limit gave {right} on a, b")
    log(f"5. login throttle: failures alternating a/b answered {statuses} (429 at attempt {len(statuses)}, "
        f"after {where[:5].count('a')} failures on a and {where[:5].count('b')} on b); the right password then: "
        f"{right}")

    # A user disabled through A is refused by B within IDENTITY_TTL.
    user = {"email": f"petugas2-{RUN}@cluster.test", "password": secrets.token_urlsafe(18), "role": "officer"}
    made = request(a.port, "POST", "/api/v1/users", user, admin)
    check(made.status == 201, f"5. creating an officer: {made.status} {made.body[:200]!r}")
    uid = made.json()["id"]
    got = request(a.port, "POST", "/api/v1/auth/token", {"email": user["email"], "password": user["password"]})
    check(got.status == 200, f"5. officer login: {got.status}")
    token = got.json()["access_token"]
    for s in (a, b):  # each instance has read (and trusts for a while) the user
        got = request(s.port, "GET", "/api/v1/auth/me", token=token).status
        check(got == 200, f"5. {s.name}: the officer's /auth/me gave {got}")
    version = request(a.port, "GET", f"/api/v1/users/{uid}", token=admin)
    changed = request(a.port, "PATCH", f"/api/v1/users/{uid}", {"disabled": True}, admin,
                      {"If-Match": version.header("etag")})
    check(changed.status == 200, f"5. disabling through {a.name}: {changed.status} {changed.body[:200]!r}")
    disabled = time.monotonic()
    got = request(a.port, "GET", "/api/v1/auth/me", token=token).status
    check(got == 401, f"5. {a.name} answered {got} to the disabled user right after the change")
    while (got := request(b.port, "GET", "/api/v1/auth/me", token=token).status) != 401:
        check(time.monotonic() - disabled <= IDENTITY_TTL + SLACK,
              f"5. {b.name} still answers {got} to a user disabled through {a.name} after {IDENTITY_TTL + SLACK} s")
        time.sleep(0.05)
    late = time.monotonic() - disabled
    log(f"5. user disabled through {a.name}: refused there at once, by {b.name} after {late:.2f} s "
        f"(bound {IDENTITY_TTL:.0f} s)")
    ctx["recovery"]["disable"] = late


def server_log_notes(servers):
    notes = []
    for s in servers:
        try:
            with open(s.log_path, errors="replace") as f:
                lines = f.readlines()[s.log_offset_lines:]
        except OSError:
            continue
        warns = [line.strip() for line in lines if " WARN " in line or " ERROR " in line]
        kinds = {}
        for w in warns:
            key = w.split("]", 1)[-1].strip()[:90]
            kinds[key] = kinds.get(key, 0) + 1
        notes.append((s.name, len(warns), sorted(kinds.items(), key=lambda kv: -kv[1])[:6]))
    return notes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", action="store_true", help="shorter load phases (CI)")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    mixed, dwell = (4.0, 1.5) if args.short else (10.0, 3.0)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout` stops us: clean up first
    for binary in ("initdb", "pg_ctl", "pg_basebackup"):
        check(pg_bin(binary), f"no {binary}: the PostgreSQL server binaries are needed")
    ensure_haproxy()
    began = time.monotonic()
    cleanup = Cleanup()
    tmp = tempfile.mkdtemp(prefix="umkm-cluster-")
    os.chmod(tmp, 0o755)
    cleanup.add("remove the temporary directory", lambda: shutil.rmtree(tmp, ignore_errors=True))
    try:
        primary, replica = build_cluster(tmp, cleanup)
        log(f"cluster: primary 127.0.0.1:{primary.port}, replica 127.0.0.1:{replica.port} (streaming, hot standby)")
        shared = {"JWT_SECRET": secrets.token_urlsafe(48), "UMKM_ADMIN_PASSWORD": secrets.token_urlsafe(18),
                  "DATABASE_READ_URLS": replica.url, "REPLICA_MAX_LAG_MS": str(MAX_LAG_MS), "RUST_LOG": "info"}
        servers = []
        for short in ("a", "b"):
            server = Server(f"cluster-{RUN}-{short}", primary.url, shared)
            server.secret, server.password, server.short = shared["JWT_SECRET"], shared["UMKM_ADMIN_PASSWORD"], short
            server.port = free_port()
            server.env["BIND_ADDR"] = f"127.0.0.1:{server.port}"
            # The replicas' detail is the operators' (the public /readyz says ready or not).
            server.metrics_port = free_port()
            server.env["METRICS_ADDR"] = f"127.0.0.1:{server.metrics_port}"
            try:
                with open(server.log_path) as f:
                    server.log_offset_lines = sum(1 for _ in f)
            except OSError:
                server.log_offset_lines = 0
            cleanup.add(f"stop {server.name}", lambda s=server: stop_server(s))
            server.start()  # the first migrates; the second starts once it is up
            servers.append(server)
        until_replica(servers, healthy, 20, "start: the replica in rotation")
        proxy = HAProxy(tmp, servers)
        cleanup.add("stop haproxy", proxy.stop)
        proxy.start()
        log(f"API instances a :{servers[0].port}, b :{servers[1].port}; HAProxy :{proxy.port} (both UP); "
            f"set up in {time.monotonic() - began:.1f} s")
        token = request(proxy.port, "POST", "/api/v1/auth/token",
                        {"email": "admin@faults.test", "password": shared["UMKM_ADMIN_PASSWORD"]})
        check(token.status == 200, f"admin login through HAProxy: {token.status}")
        ctx = {"primary": primary, "replica": replica, "servers": servers, "proxy": proxy,
               "token": token.json()["access_token"], "clients": args.clients, "ledger": {}, "loads": [],
               "recovery": {}}
        phase_mixed(ctx, mixed)
        phase_replica_down(ctx, dwell)
        phase_replay_paused(ctx, dwell)
        phase_instance_killed(ctx, dwell)
        phase_across(ctx)
        lost = lost_writes(ctx)
        check(not lost, f"{len(lost)} acknowledged writes are not in the database: {lost[:5]}")
        for name, count, kinds in server_log_notes(servers):
            log(f"{name}.log: {count} WARN/ERROR lines" + "".join(f"\n   {n} x {k}" for k, n in kinds))
        loads = ctx["loads"]
        r = ctx["recovery"]
        log(f"cluster: OK in {time.monotonic() - began:.0f} s: {sum(x.requests for x in loads)} requests, "
            f"{sum(len(x.stale) for x in loads)} stale reads, 3 failovers (replica stopped, replay paused, "
            f"instance killed), {sum(len(x.errors) for x in loads)} errors ({ctx['failover_errors']} in the "
            f"instance failover window), {len(ctx['ledger'])} acknowledged writes all kept; recovery: replica "
            f"{r['replica']:.2f} s, lag {r['lag']:.2f} s, instance {r['instance']:.2f} s, disabled user on the "
            f"other instance {r['disable']:.2f} s")
        log(f"logs: {LOG_DIR}/cluster-{RUN}-*.log")
    finally:
        cleanup.run()


def stop_server(server):
    if server.process and server.process.poll() is None:
        try:
            server.stop(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


if __name__ == "__main__":
    main()
