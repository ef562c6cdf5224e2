#!/usr/bin/env python3
"""The contract as tools nobody here wrote see it, from clients/typescript (every package pinned in
its package-lock.json):
- Redocly CLI's recommended rules over the committed openapi/openapi.json: 0 errors, 0 warnings;
- a TypeScript program typed from that document (openapi-typescript, openapi-fetch, typescript)
  type-checks under strict, and, run against the real server on SQLite with the demo data, logs
  in, lists businesses and reads a problem answer.

    python3 tests/faults/typescript_client.py

Needs Node.js and npm (the machine's); `npm ci` fetches the pinned packages from the npm registry.
"""
import json, os, subprocess, sys, tempfile

from common import BINARY, Server, check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIENT = os.path.join(ROOT, "clients", "typescript")


def npm(*args):
    print("npm", *args, flush=True)
    subprocess.run(["npm", *args], cwd=CLIENT, check=True)


def lint():
    env = dict(os.environ, REDOCLY_TELEMETRY="off", REDOCLY_SUPPRESS_UPDATE_NOTICE="true")
    run = subprocess.run(["npm", "run", "--silent", "lint"], cwd=CLIENT, env=env, capture_output=True, text=True)
    start = run.stdout.find("{")
    check(start >= 0, f"Redocly printed no report:\n{run.stdout}\n{run.stderr}")
    report = json.loads(run.stdout[start:])
    totals = report["totals"]
    print(f"Redocly, recommended rules: {totals['errors']} errors, {totals['warnings']} warnings")
    problems = [f"{p['ruleId']}: {p['message']}" for p in report.get("problems", [])]
    check(totals["errors"] == 0 and totals["warnings"] == 0, "Redocly found:\n" + "\n".join(problems))


def main():
    npm("ci", "--no-audit", "--no-fund")
    lint()
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
