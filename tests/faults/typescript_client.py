#!/usr/bin/env python3
"""The contract as a generated client sees it: clients/typescript is a TypeScript program typed
from the committed openapi/openapi.json (openapi-typescript, openapi-fetch, typescript, all
pinned in its package-lock.json). It must type-check, and then, run against the real server on
SQLite with the demo data, log in, list businesses and read a problem answer.

    python3 tests/faults/typescript_client.py

Needs Node.js and npm (the machine's); `npm ci` fetches the pinned packages from the npm registry.
"""
import os, subprocess, sys, tempfile

from common import BINARY, Server, check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIENT = os.path.join(ROOT, "clients", "typescript")


def npm(*args):
    print("npm", *args, flush=True)
    subprocess.run(["npm", *args], cwd=CLIENT, check=True)


def main():
    npm("ci", "--no-audit", "--no-fund")
    npm("run", "build")  # generates src/api.d.ts from the committed document, then tsc
    with tempfile.TemporaryDirectory() as tmp:
        server = Server("typescript-client", f"{tmp}/ts.sqlite3")
        subprocess.run([BINARY, "seed", "--demo"], env=server.env, check=True, capture_output=True)
        server.start()
        try:
            env = dict(os.environ, UMKM_API=f"http://127.0.0.1:{server.port}",
                       UMKM_EMAIL="admin@faults.test", UMKM_PASSWORD=server.password)
            run = subprocess.run(["node", "dist/main.js"], cwd=CLIENT, env=env, capture_output=True, text=True,
                                 timeout=60)
            print(run.stdout + run.stderr)
            check(run.returncode == 0, f"the TypeScript client failed: {run.stderr}")
            check("active businesses read" in run.stdout, "the client read no list")
            check("problem 422" in run.stdout, "the client read no problem answer")
        finally:
            server.stop()
    print("typescript client: ok")


if __name__ == "__main__":
    sys.exit(main())
