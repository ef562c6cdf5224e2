-- API clients: partner banks' and retailers' systems signing in with OAuth 2.0 client
-- credentials (RFC 6749 §4.4). A client is a user of its partner's role (bank or retail), so
-- that everything a user is checked against (role, partner, disabling, the audit log) holds for
-- it unchanged; `scopes` (space-separated) marks it as a client and narrows what its tokens may
-- do. People have no scopes. Its `email` holds its client_id.
ALTER TABLE users ADD COLUMN scopes TEXT;

-- A client's secrets, stored as argon2id hashes. Two can be active during a rotation; a revoked
-- one is kept with its time.
CREATE TABLE client_secrets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX client_secrets_user ON client_secrets (user_id);
