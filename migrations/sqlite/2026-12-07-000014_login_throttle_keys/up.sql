-- The login throttle's key is an HMAC of the e-mail or client id and the caller's source
-- (issue 28): fixed length whatever a client sends, no e-mail kept, and one source's failures
-- never lock out another. The failures held are at most 15 minutes old and carry over to
-- nothing: the table starts empty.
DROP TABLE login_failures;
CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_hash TEXT NOT NULL,
    failed_at TIMESTAMP NOT NULL
);
CREATE INDEX login_failures_key_hash_failed_at ON login_failures (key_hash, failed_at);
-- The purge of every key's expired failures.
CREATE INDEX login_failures_failed_at ON login_failures (failed_at);
