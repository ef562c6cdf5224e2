#!/usr/bin/env python3
"""An online backup under write load, the server killed, the backup restored and served.

    python3 tests/faults/backup.py --backend sqlite|postgres [--seconds 6] [--clients 16]

`--clients` threads create businesses; after about half of `--seconds` `umkm-api backup --out`
runs while they keep writing, and they go on for a moment after it. The server is then killed
with SIGKILL. The backup must pass `backup --verify` and restore (`umkm-api restore --from`)
into a fresh database; there, before any server touches it, every table the backup listed has
exactly the row count the backup printed (and on SQLite `PRAGMA integrity_check` is ok). A
second restore onto the now non-empty target is refused and changes nothing. A server on the
restored database then serves every business whose create was answered 201 before the backup
began.
"""
import argparse, contextlib, hashlib, os, random, re, signal, sqlite3, subprocess, tempfile, threading, time

from common import BINARY, Server, business, check, fail, pg_database, sqlite_url

TABLE_LINE = re.compile(r"^  ([a-z_]+)\s+(\d+)$")
PG_BASE = "postgres://postgres@127.0.0.1:5432"


def cli(args, url=None, timeout=120):
    """Runs `umkm-api args` with DATABASE_URL = `url` (unset if None); bounded in time."""
    env = dict(os.environ, RUST_LOG="error")  # Logs off, so a refusal is the one stderr line.
    env.pop("DATABASE_URL", None)
    if url is not None:
        env["DATABASE_URL"] = url
    started = time.monotonic()
    try:
        done = subprocess.run([BINARY, *args], env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        fail(f"`umkm-api {' '.join(args)}` did not finish within {timeout} s")
    return done, time.monotonic() - started


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def stored(backend, url, tables):
    """The row count of each of `tables`, and the set of tables the database has (not diesel's)."""
    listing = {"sqlite": "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
               "postgres": "SELECT table_name FROM information_schema.tables "
                           "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"}[backend]
    counts = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in tables)
    if backend == "postgres":
        def query(sql):
            out = subprocess.run(["psql", "-X", "-At", "-F", "|", url, "-c", sql], check=True,
                                 capture_output=True, text=True, timeout=60).stdout
            return [line.split("|") for line in out.splitlines() if line]
        rows, names = query(counts), query(listing)
    else:
        check(os.path.exists(url), f"the restore left no database file at {url}")
        with contextlib.closing(sqlite3.connect(url)) as conn:
            rows, names = conn.execute(counts).fetchall(), conn.execute(listing).fetchall()
    return ({t: int(n) for t, n in rows},
            {n for (n,) in names} - {"__diesel_schema_migrations"})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=["postgres", "sqlite"], required=True)
    p.add_argument("--seconds", type=float, default=6)
    p.add_argument("--clients", type=int, default=16)
    a = p.parse_args()
    servers, databases = [], []
    with tempfile.TemporaryDirectory() as src_dir, tempfile.TemporaryDirectory() as dst_dir:
        try:
            if a.backend == "postgres":
                databases = ["umkm_faults_backup_src", "umkm_faults_backup_dst"]
                source_url, target_url = (pg_database(name, PG_BASE) for name in databases)
            else:
                source_url, target_url = sqlite_url(src_dir), sqlite_url(dst_dir)
            run(a, source_url, target_url, os.path.join(src_dir, "umkm.backup"), servers)
        finally:
            for server in servers:
                server.stop(signal.SIGKILL)
            for name in databases:
                subprocess.run(["psql", "-X", "-q", f"{PG_BASE}/postgres", "-c",
                                f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True, timeout=60)


def run(a, source_url, target_url, backup_file, servers):
    tag = f"[{a.backend}]"
    source = Server(f"backup-{a.backend}-source", source_url)
    servers.append(source)
    source.start()
    token = source.admin()

    # The writers: each records (id, time the 201 arrived); failures count until the kill begins.
    acknowledged, unexpected, lock = [], [], threading.Lock()
    stop, killing = threading.Event(), threading.Event()

    def writer(k):
        i = 0
        while not stop.is_set():
            i += 1
            n = 500_000_000 + k * 1_000_000 + i
            try:
                reply = source.request("POST", "/api/v1/businesses", business(n), token, timeout=30)
            except OSError as e:
                if not killing.is_set():
                    with lock:
                        unexpected.append(("connection", repr(e)))
                return
            at = time.monotonic()
            with lock:
                if reply.status == 201:
                    acknowledged.append((reply.json()["id"], at))
                elif not killing.is_set():
                    unexpected.append((reply.status, reply.body[:200]))

    threads = [threading.Thread(target=writer, args=(k,), daemon=True) for k in range(a.clients)]
    for t in threads:
        t.start()
    time.sleep(a.seconds / 2)

    # The backup, in the middle of the load.
    t0 = time.monotonic()
    done, backup_took = cli(["backup", "--out", backup_file], source_url)
    t1 = time.monotonic()
    check(done.returncode == 0, f"backup exited {done.returncode}: {done.stderr.strip()[:300]!r}")
    printed = {m[1]: int(m[2]) for m in map(TABLE_LINE.match, done.stdout.splitlines()) if m}
    check("businesses" in printed, f"the backup printed no businesses count: {done.stdout[:500]!r}")
    check("__diesel_schema_migrations" not in printed, "the backup counted diesel's migration table")
    check(os.path.isfile(backup_file), f"the backup wrote no {backup_file}")

    # A moment more of load, then SIGKILL.
    time.sleep(max(1.0, a.seconds / 4))
    killing.set()
    killed_at = time.monotonic()
    source.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    check(not any(t.is_alive() for t in threads), "a writer did not stop within 60 s of the kill")
    check(not unexpected, f"{len(unexpected)} creates failed before the kill, e.g. {unexpected[:3]}")

    before = {id_ for id_, at in acknowledged if at < t0}
    during = sum(1 for _, at in acknowledged if t0 <= at < t1)
    after = sum(1 for _, at in acknowledged if t1 <= at < killed_at)
    print(f"{tag} {a.clients} clients: {len(acknowledged)} creates acknowledged; {len(before)} before the "
          f"backup began, {during} during the backup ({backup_took:.2f} s), {after} after it, then SIGKILL")
    print(f"{tag} the backup printed: " + ", ".join(f"{t} {n}" for t, n in sorted(printed.items())))
    check(before, "no create was acknowledged before the backup began")
    check(during + after > 0, "no create was acknowledged after the backup began: the server stopped writing")
    # A backup that lasts seconds must not have stalled the writers all along.
    check(backup_took < 2 or during > 0, f"no create acknowledged during a {backup_took:.1f} s backup")
    check(printed["businesses"] >= len(before), f"the backup counted {printed['businesses']} businesses, "
          f"fewer than the {len(before)} acknowledged before it began")

    # The file is sound, and is not overwritten by a second backup to the same name.
    done, _ = cli(["backup", "--verify", backup_file])
    check(done.returncode == 0 and any(line.startswith("ok") for line in done.stdout.splitlines()),
          f"backup --verify exited {done.returncode}: {(done.stdout + done.stderr).strip()[:300]!r}")
    digest = sha256(backup_file)
    done, _ = cli(["backup", "--out", backup_file], source_url)
    check(done.returncode != 0, "backup --out onto an existing file was not refused")
    check(sha256(backup_file) == digest, "a refused backup --out changed the existing file")

    # Restore into the fresh target; check it directly before any server opens it.
    done, restore_took = cli(["restore", "--from", backup_file], target_url)
    check(done.returncode == 0, f"restore exited {done.returncode}: {done.stderr.strip()[:300]!r}")
    counts, tables = stored(a.backend, target_url, printed)
    check(tables == set(printed), f"restored tables {sorted(tables)} differ from the backup's {sorted(printed)}")
    check(counts == printed, f"restored row counts differ: "
          f"{ {t: (printed[t], counts.get(t)) for t in printed if counts.get(t) != printed[t]} }")
    if a.backend == "sqlite":
        with contextlib.closing(sqlite3.connect(target_url)) as conn:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        check(integrity == "ok", f"integrity_check of the restored file: {integrity}")
        integrity_note = "integrity_check ok"
    else:
        integrity_note = "integrity_check is SQLite-only (not run on PostgreSQL)"
    print(f"{tag} restored in {restore_took:.2f} s: {len(printed)} tables, every row count as printed; "
          f"{integrity_note}")

    # A second restore onto the non-empty target is refused with one line and changes nothing.
    done, _ = cli(["restore", "--from", backup_file], target_url)
    lines = done.stderr.strip().splitlines()
    check(done.returncode != 0, "restore onto a non-empty database without --force was not refused")
    check(len(lines) == 1 and lines[0].startswith("umkm-api: "), f"the refusal said {done.stderr!r}")
    check(stored(a.backend, target_url, printed)[0] == printed, "a refused restore changed the target")
    print(f"{tag} restore again without --force: refused ({lines[0]})")

    # Serve the restored database; the admin is the source's, with the source's password.
    restored = Server(f"backup-{a.backend}-restored", target_url)
    servers.append(restored)
    restored.password = restored.env["UMKM_ADMIN_PASSWORD"] = source.password
    restored.start()
    token = restored.admin()
    listed, path, total = set(), "/api/v1/businesses?limit=500&count=true", None
    while path:
        reply = restored.request("GET", path, token=token)
        check(reply.status == 200, f"listing restored businesses gave {reply.status}: {reply.body[:200]!r}")
        page = reply.json()
        total = page.get("total") if total is None else total  # Counted on the first page only.
        listed.update(row["id"] for row in page["data"])
        path = f"/api/v1/businesses?limit=500&cursor={page['next_cursor']}" if page.get("next_cursor") else None
    missing = sorted(before - listed)
    check(not missing, f"{len(missing)} businesses acknowledged before the backup are not served, e.g. {missing[:5]}")
    check(len(listed) == total == printed["businesses"],
          f"the restored server lists {len(listed)} businesses (total {total}), the backup printed "
          f"{printed['businesses']}")
    sample = random.Random(7).sample(sorted(before), min(200, len(before)))
    for id_ in sample:
        reply = restored.request("GET", f"/api/v1/businesses/{id_}", token=token)
        check(reply.status == 200 and reply.json()["id"] == id_, f"GET business {id_} answered {reply.status}")
    print(f"{tag} the restored server serves all {len(before)} businesses acknowledged before the backup "
          f"({len(listed)} in all; {len(sample)} also read one by one)")
    restored.stop()
    print(f"backup ({a.backend}): ok")


if __name__ == "__main__":
    main()
