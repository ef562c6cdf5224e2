"""Two server processes on one database: a change of user made through one reaches the other.

Each instance trusts a user row it read for at most IDENTITY_TTL (src/accounts.rs, 5 s), so a
token ended through instance A (its user disabled, or given another role) must be refused by
instance B within that bound, and by A at once; the token the user gets by logging in again is
good on B at once (a token newer than B's cached row makes B read the row again). On PostgreSQL: two processes on one database. On SQLite the one
process knows its own writes: the change is refused at once, with no wait.

    python3 instances.py --backend postgres
    python3 instances.py --backend sqlite
"""
import argparse, secrets, tempfile, time

from common import Server, check, pg_database, sqlite_url

IDENTITY_TTL = 5.0  # seconds; src/accounts.rs
SLACK = 1.0  # polling interval and scheduling on a loaded 2-core machine


def until(server, token, path, status, bound):
    """Polls `path` on `server` until it answers `status`; the seconds that took."""
    started = time.monotonic()
    while True:
        got = server.request("GET", path, token=token).status
        if got == status:
            return time.monotonic() - started
        check(time.monotonic() - started <= bound, f"{server.name}: {path} still {got} after {bound} s")
        time.sleep(0.05)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], required=True)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="umkm-instances-")
    url = pg_database("umkm_faults_instances") if args.backend == "postgres" else sqlite_url(workdir)
    # One secret and one first admin, as instances behind a load balancer share their configuration.
    shared = {"JWT_SECRET": secrets.token_urlsafe(48), "UMKM_ADMIN_PASSWORD": secrets.token_urlsafe(18)}
    a = Server(f"instances-{args.backend}-a", url, shared)
    a.secret, a.password = shared["JWT_SECRET"], shared["UMKM_ADMIN_PASSWORD"]
    a.start()
    servers = [a]
    if args.backend == "postgres":
        b = Server(f"instances-{args.backend}-b", url, shared)
        b.secret, b.password = a.secret, a.password
        b.start()
        servers.append(b)
    try:
        admin = a.admin()
        officer = {"email": "petugas@instances.test", "password": secrets.token_urlsafe(18), "role": "officer"}
        made = a.request("POST", "/api/v1/users", officer, token=admin)
        check(made.status == 201, f"creating the officer gave {made.status}: {made.body[:200]!r}")
        user = made.json()["id"]
        token = a.login(officer["email"], officer["password"])
        for server in servers:  # every instance has read (and cached) the officer
            got = server.request("GET", "/api/v1/businesses?limit=1", token=token).status
            check(got == 200, f"{server.name}: the officer's list gave {got}")

        results = []
        changes = [("role officer -> bank", {"role": "bank", "bank_partner_id": 1}, "/api/v1/auth/me", 401),
                   ("disabled", {"disabled": True}, "/api/v1/auth/me", 401)]
        for n, (what, patch, path, refused) in enumerate(changes):
            if n > 0:  # the token the change before ended: log in again, good everywhere at once
                token = a.login(officer["email"], officer["password"])
                for server in servers:
                    got = server.request("GET", path, token=token).status
                    check(got == 200, f"{server.name}: a new token after '{changes[n - 1][0]}' gave {got}")
            version = a.request("GET", f"/api/v1/users/{user}", token=admin)
            check(version.status == 200, f"reading the user gave {version.status}")
            changed = a.request("PATCH", f"/api/v1/users/{user}", patch, token=admin,
                                headers={"If-Match": version.header("etag")})
            check(changed.status == 200, f"{what}: the change gave {changed.status}: {changed.body[:200]!r}")
            # The instance that made the change: at once.
            got = a.request("GET", path, token=token).status
            check(got == refused, f"{what}: {a.name} answered {got} right after the change, not {refused}")
            for other in servers[1:]:
                late = until(other, token, path, refused, IDENTITY_TTL + SLACK)
                results.append((what, other.name, late))
                print(f"{what}: refused by {other.name} after {late:.2f} s (bound {IDENTITY_TTL:.0f} s)", flush=True)
        if len(servers) == 1:
            print("sqlite: every change refused at once by the one process", flush=True)
        # And the admin's own work goes on through every instance.
        for server in servers:
            check(server.request("GET", "/api/v1/auth/me", token=admin).status == 200,
                  f"{server.name}: the admin was refused")
        print(f"instances ({args.backend}): OK, {len(servers)} process(es)", flush=True)
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
