#!/usr/bin/env python3
"""Property-based fuzzing of every operation with schemathesis, against the served document.

    python3 tests/faults/fuzz.py [--backend sqlite|postgres] [--roles admin,bank,retail,viewer]
                                 [--max-examples 20]

Installs schemathesis (pinned) into a virtualenv under ~/.cache/umkm-api on first use, seeds
the demo dataset, starts the server and runs all operations of /api-docs/openapi.json through
the examples, coverage, fuzzing and stateful phases with all of schemathesis's default checks,
once per role: as the admin, as a bank user, a retail user and a viewer (users created through
the API, each on a partner of the demo data). One worker and deterministic generation, so that
a run is reproducible (concurrency is load.py's). Every role must give 0 failures: no 5xx, no
response off its documented schema, content type, headers or statuses, no schema-valid request
refused, no schema-violating request accepted, and a 405 with `Allow` for undeclared methods.
schemathesis/schemathesis.toml names, per operation, the rejections a schema cannot express
(a stale If-Match, a body naming no record); schemathesis/hooks.py keeps made-up cursors out of
valid requests.
"""
import argparse, os, re, subprocess, sys, tempfile, time

from common import BINARY, LOG_DIR, Server, check, pg_database, venv_python

VERSION = "4.32.5"
# The configuration (statuses a schema cannot express, per operation) and the hooks (opaque
# cursors) schemathesis runs with; each file says why.
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemathesis")
ROLES = ["admin", "bank", "retail", "viewer"]


def schemathesis():
    home, _ = venv_python(f"schemathesis-{VERSION}", f"schemathesis=={VERSION}")
    return os.path.join(home, "bin", "schemathesis")


def role_token(server, role):
    """A token for a new user of `role`, tied to the first partner of the demo data."""
    if role == "admin":
        return server.admin()
    admin = server.admin()
    user = {"email": f"fuzz-{role}@faults.test", "password": "fuzzing passphrase 1", "role": role}
    if role in ("bank", "retail"):
        listing = server.request("GET", f"/api/v1/{role}-partners?limit=1", token=admin)
        check(listing.status == 200 and listing.json()["data"], f"no {role} partner to tie the user to")
        user[f"{role}_partner_id"] = listing.json()["data"][0]["id"]
    created = server.request("POST", "/api/v1/users", user, token=admin)
    check(created.status == 201, f"creating the {role} user gave {created.status}: {created.body[:300]!r}")
    return server.login(user["email"], user["password"])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=["postgres", "sqlite"], default="sqlite")
    p.add_argument("--roles", default=",".join(ROLES))
    p.add_argument("--max-examples", type=int, default=20)
    a = p.parse_args()
    roles = a.roles.split(",")
    check(all(r in ROLES for r in roles), f"roles are among {ROLES}")
    exe = schemathesis()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        url = pg_database("umkm_faults_fuzz") if a.backend == "postgres" else f"{tmp}/fuzz.sqlite3"
        server = Server(f"fuzz-{a.backend}", url, {"RUST_LOG": "info"})
        subprocess.run([BINARY, "seed", "--demo"], env=server.env, check=True, capture_output=True)
        server.start()
        try:
            tokens = {role: role_token(server, role) for role in roles}
            # schemathesis keeps a .schemathesis cache in its working directory: one per back
            # end, since run.sh runs both at once.
            workdir = os.path.join(LOG_DIR, f"schemathesis-{a.backend}")
            os.makedirs(workdir, exist_ok=True)
            for role in roles:
                report = os.path.join(LOG_DIR, f"schemathesis-{a.backend}-{role}.txt")
                started = time.monotonic()
                with open(report, "w") as out:
                    result = subprocess.run(
                        [exe, "--config-file", os.path.join(HERE, "schemathesis.toml"), "run", f"http://127.0.0.1:{server.port}/api-docs/openapi.json",
                         "-H", f"Authorization: Bearer {tokens[role]}",
                         "--phases", "examples,coverage,fuzzing,stateful", "-n", str(a.max_examples),
                         "--workers", "1", "--generation-deterministic", "--request-timeout", "30"],
                        stdout=out, stderr=subprocess.STDOUT,
                        env=dict(os.environ, NO_COLOR="1", SCHEMATHESIS_HOOKS="hooks", PYTHONPATH=HERE),
                        cwd=workdir)
                with open(report) as f:
                    text = f.read()
                summary = text[text.rfind("SUMMARY"):] if "SUMMARY" in text else text[-3000:]
                cases = re.search(r"Test cases:\s*\n?\s*([\d,]+) generated", summary)
                failures = re.search(r"([\d,]+) unique failures?", summary)
                results.append((role, result.returncode, cases.group(1) if cases else "?",
                                failures.group(1) if failures else "0", time.monotonic() - started, report))
                print(f"--- {a.backend} as {role}: exit {result.returncode}, "
                      f"{time.monotonic() - started:.0f} s\n{summary}", flush=True)
            alive = server.request("GET", "/healthz").status
            check(alive == 200, f"the server is not healthy after fuzzing: {alive}")
        finally:
            server.stop()
    print(f"\n{'role':8} {'cases':>8} {'failures':>8} {'seconds':>8}")
    for role, _, cases, failures, seconds, _ in results:
        print(f"{role:8} {cases:>8} {failures:>8} {seconds:>8.0f}")
    failed = [(role, report) for role, code, _, _, _, report in results if code != 0]
    check(not failed, "schemathesis found failures: " + ", ".join(f"{r} (report {p})" for r, p in failed))
    print(f"fuzz ({a.backend}): ok")


if __name__ == "__main__":
    sys.exit(main())
