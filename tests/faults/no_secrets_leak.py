#!/usr/bin/env python3
"""Secrets never leak: reads every log the fault scripts' servers wrote (at RUST_LOG=debug), the
schemathesis reports, any extra files named on the command line (CI passes the cargo test
output) and the OpenAPI document, and fails if one holds a JWT secret, an admin password, a
database password, a data key (DATA_KEY_FILE) or a password hash.

    python3 tests/faults/no_secrets_leak.py [extra files…]

Run it after the other fault scripts: it checks what they recorded in secrets.jsonl.
"""
import glob, json, os, re, sys

from common import LOG_DIR, ROOT, check

HASH = re.compile(r"\$argon2(id|i|d)\$")


def main():
    recorded = [json.loads(line) for line in open(os.path.join(LOG_DIR, "secrets.jsonl"))]
    secrets = {}
    for r in recorded:
        for kind in ("jwt_secret", "admin_password", "database_password"):
            if r.get(kind):
                secrets[r[kind]] = f"{r['server']}'s {kind.replace('_', ' ')}"
        for key in r.get("data_keys") or []:
            secrets[key] = f"{r['server']}'s data key"
    files = sorted(glob.glob(os.path.join(LOG_DIR, "*.log")) + glob.glob(os.path.join(LOG_DIR, "*.txt")))
    files += sys.argv[1:] + [os.path.join(ROOT, "openapi", "openapi.json")]
    total, requests = 0, 0
    for path in files:
        text = open(path, encoding="utf-8", errors="replace").read()
        total += len(text)
        requests += text.count("/api/v1/auth/token")
        for secret, what in secrets.items():
            check(secret not in text, f"{what} appears in {path}")
        check(not HASH.search(text), f"a password hash appears in {path}")
    check("password_hash" not in open(os.path.join(ROOT, "openapi", "openapi.json")).read(),
          "the OpenAPI document mentions password_hash")
    # The check must have had something to read: servers that logged logins.
    check(recorded and requests > 0, f"too little to check: {len(recorded)} servers, {requests} logins")
    print(f"secrets: {len(secrets)} secrets of {len(recorded)} server runs searched in {len(files)} files "
          f"({total / 1e6:.1f} MB, {requests} log lines of logins): none found, no password hash")
    print("secrets: ok")


if __name__ == "__main__":
    main()
