-- The banks' change feed: what each bank sees of each of its applications in its pull
-- (`GET /bank-partners/{id}/eligible-applicants`), with the time it last changed. A write that
-- changes what a bank sees, and the daily re-evaluation of the time-based rules, move
-- `changed_at`; `updated_since` and the pull's cursor read it (see `src/banks/feed.rs`).
CREATE TABLE bank_feed (
    application_id BIGINT NOT NULL PRIMARY KEY REFERENCES applications (id),
    bank_partner_id BIGINT NOT NULL REFERENCES bank_partners (id),
    business_id BIGINT NOT NULL,
    programme_id BIGINT NOT NULL,
    -- In the bank's full pull now: eligible, of a consenting business, to an open programme.
    listed BOOLEAN NOT NULL,
    -- Listed at least once: only such an application is ever reported to the bank as left.
    shown BOOLEAN NOT NULL,
    -- Why it left the pull (`not_eligible`, `consent_withdrawn`, `programme_closed`), empty
    -- while listed.
    left_reason TEXT NOT NULL,
    -- SHA-256 of what the bank sees of it; a change of what the bank sees moves `changed_at`.
    fingerprint TEXT NOT NULL,
    changed_at TIMESTAMP NOT NULL
);
CREATE INDEX bank_feed_changes ON bank_feed (bank_partner_id, changed_at, application_id);

-- Per bank, the last `changed_at` given. A write takes its bank's row before it moves the
-- feed and holds it until it commits, so that a bank's changes get increasing times in the
-- order they commit: a pull that saw a change sees every earlier one.
CREATE TABLE bank_feed_clocks (
    bank_partner_id BIGINT NOT NULL PRIMARY KEY REFERENCES bank_partners (id),
    changed_at TIMESTAMP NOT NULL
);
