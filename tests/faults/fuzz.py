#!/usr/bin/env python3
"""Property-based fuzzing of every operation with schemathesis, against the served document.

    python3 tests/faults/fuzz.py [--backend sqlite|postgres] [--max-examples 20]

Installs schemathesis (pinned) into a virtualenv under ~/.cache/umkm-api on first use, seeds
the demo dataset, starts the server and runs all operations of /api-docs/openapi.json with an
admin token through the examples, coverage, fuzzing and stateful phases, with one worker and
deterministic generation so that a run is reproducible (concurrency is load.py's). It must find no 5xx,
no response that breaks its documented schema, content type or headers, and no status the
document does not list.
"""
import argparse, os, subprocess, sys, tempfile, venv

from common import BINARY, LOG_DIR, Server, check, pg_database

VERSION = "4.32.5"
CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_schema_conformance", "response_headers_conformance",
])


def schemathesis():
    cache = os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))
    home = os.path.join(cache, "umkm-api", f"schemathesis-{VERSION}")
    exe = os.path.join(home, "bin", "schemathesis")
    if not os.path.exists(exe):
        print(f"installing schemathesis {VERSION} into {home}", flush=True)
        venv.create(home, with_pip=True)
        subprocess.run([os.path.join(home, "bin", "pip"), "install", "-q", f"schemathesis=={VERSION}"], check=True)
    return exe


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=["postgres", "sqlite"], default="sqlite")
    p.add_argument("--max-examples", type=int, default=20)
    a = p.parse_args()
    exe = schemathesis()
    with tempfile.TemporaryDirectory() as tmp:
        url = pg_database("umkm_faults_fuzz") if a.backend == "postgres" else f"{tmp}/fuzz.sqlite3"
        server = Server(f"fuzz-{a.backend}", url, {"RUST_LOG": "info"})
        subprocess.run([BINARY, "seed", "--demo"], env=server.env, check=True, capture_output=True)
        server.start()
        try:
            token = server.admin()
            report = os.path.join(LOG_DIR, f"schemathesis-{a.backend}.txt")
            with open(report, "w") as out:
                result = subprocess.run(
                    [exe, "run", f"http://127.0.0.1:{server.port}/api-docs/openapi.json",
                     "-H", f"Authorization: Bearer {token}", "--checks", CHECKS,
                     "--phases", "examples,coverage,fuzzing,stateful", "-n", str(a.max_examples),
                     "--workers", "1", "--generation-deterministic", "--request-timeout", "30"],
                    stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, NO_COLOR="1"),
                    cwd=LOG_DIR)  # schemathesis keeps a .schemathesis cache in its working directory.
            with open(report) as f:
                text = f.read()
            summary = text[text.rfind("SUMMARY"):] if "SUMMARY" in text else text[-3000:]
            print(summary)
            check(result.returncode == 0, f"schemathesis found failures; full report in {report}:\n{text[-20000:]}")
            alive = server.request("GET", "/healthz").status
            check(alive == 200, f"the server is not healthy after fuzzing: {alive}")
        finally:
            server.stop()
    print(f"fuzz ({a.backend}): ok")


if __name__ == "__main__":
    sys.exit(main())
