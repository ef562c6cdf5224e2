-- Consent as evidence (issue 29, UU 27/2022 Pasal 22 and 24): consent to share a person's data
-- is a record per person × purpose × recipient (every partner bank, or one named bank) with who
-- recorded it, when, through which channel, the evidence (a document reference), the text
-- consented to, and its withdrawal. Records are never deleted: a withdrawal closes one.
CREATE TABLE consents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id BIGINT NOT NULL REFERENCES persons (id),
    purpose TEXT NOT NULL CHECK (purpose IN ('bank_sharing')),
    -- NULL: every partner bank.
    bank_partner_id BIGINT REFERENCES bank_partners (id),
    channel TEXT NOT NULL,
    evidence TEXT NOT NULL,
    text_version TEXT NOT NULL,
    given_at TIMESTAMP NOT NULL,
    -- NULL: made by the migration from the businesses' flags.
    recorded_by BIGINT REFERENCES users (id),
    recorded_at TIMESTAMP NOT NULL,
    withdrawn_at TIMESTAMP,
    withdrawal_channel TEXT,
    withdrawal_evidence TEXT,
    withdrawal_recorded_by BIGINT REFERENCES users (id),
    withdrawal_recorded_at TIMESTAMP,
    version INTEGER NOT NULL DEFAULT 1,
    CHECK ((withdrawn_at IS NULL) = (withdrawal_channel IS NULL))
);
-- One active consent per person, purpose and recipient: the database refuses a second one.
CREATE UNIQUE INDEX consents_active ON consents (person_id, purpose, COALESCE(bank_partner_id, 0))
    WHERE withdrawn_at IS NULL;

-- Whether the application's business's owner consents to sharing with the application's bank
-- (an active consent to every bank or to that one): kept by every write that changes it, read
-- by the bank's views, the verdicts and the statistics instead of the business's flag.
ALTER TABLE applications ADD COLUMN consented BOOLEAN NOT NULL DEFAULT 0;

-- The flags become records: one consent to every bank per person whose business consented,
-- given at the earliest of their businesses' times.
INSERT INTO consents (person_id, purpose, bank_partner_id, channel, evidence, text_version, given_at, recorded_at)
SELECT owner_id, 'bank_sharing', NULL, 'migrated', 'businesses.consented_to_bank_sharing_at', 'unknown',
       MIN(consented_to_bank_sharing_at), strftime('%Y-%m-%d %H:%M:%f', 'now')
FROM businesses WHERE consented_to_bank_sharing_at IS NOT NULL GROUP BY owner_id;

-- The flag is derived from now on: every business of a consenting person shows the consent.
UPDATE businesses SET
    consented_to_bank_sharing_at = (SELECT c.given_at FROM consents c WHERE c.person_id = businesses.owner_id
        AND c.bank_partner_id IS NULL AND c.withdrawn_at IS NULL),
    version = version + 1,
    updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now')
WHERE consented_to_bank_sharing_at IS NOT (SELECT c.given_at FROM consents c WHERE c.person_id = businesses.owner_id
        AND c.bank_partner_id IS NULL AND c.withdrawn_at IS NULL);

UPDATE applications SET consented = 1
WHERE business_id IN (SELECT id FROM businesses WHERE consented_to_bank_sharing_at IS NOT NULL);

-- The applications' statistics by consent, recomputed from the applications.
DELETE FROM summary_applications_delta;
DELETE FROM summary_applications;
INSERT INTO summary_applications (bank_partner_id, programme_id, status, consented, n, requested_idr, approved_idr)
SELECT bank_partner_id, programme_id, status, consented, COUNT(*),
       COALESCE(SUM(amount_requested_idr), 0), COALESCE(SUM(amount_approved_idr), 0)
FROM applications GROUP BY 1, 2, 3, 4;
