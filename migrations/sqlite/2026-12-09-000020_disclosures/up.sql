-- The disclosure log (issue 30, UU 27/2022 Pasal 31 and 32): every answer that carried a
-- person's data unmasked, with who received it (user or API client, and their partner), which
-- classes of data, the route, the request's id and the time. Written before the answer is sent;
-- kept for DISCLOSURE_RETENTION_DAYS.
CREATE TABLE disclosures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at TIMESTAMP NOT NULL,
    -- No foreign keys: the trail outlives a user or partner removed from the tables.
    user_id BIGINT,
    bank_partner_id BIGINT,
    retail_partner_id BIGINT,
    route TEXT NOT NULL,
    request_id TEXT NOT NULL,
    -- A set of bits: 1 identity (name, NIK, NPWP), 2 contact (phone, e-mail), 4 address,
    -- 8 financing (applications).
    classes INTEGER NOT NULL CHECK (classes > 0 AND classes < 16),
    -- The persons, as their ids separated by commas (for an exposure report and the answer's
    -- own listing); looked up by person through disclosed_persons.
    persons TEXT NOT NULL
);
-- The retention's job and an exposure report of one actor read a period.
CREATE INDEX disclosures_occurred_at ON disclosures (occurred_at);

-- One row per person per disclosure: a person's trail, newest first, is one index range.
CREATE TABLE disclosed_persons (
    person_id BIGINT NOT NULL,
    disclosure_id BIGINT NOT NULL,
    PRIMARY KEY (person_id, disclosure_id)
) WITHOUT ROWID;
