-- Persons (issue 29): a business's owner is a person, one per NIK. What identifies them (NIK,
-- phone, e-mail) is stored sealed (XChaCha20-Poly1305, `v1.<key id>.<base64url>`) under keys kept
-- outside the database; a NIK is found and kept unique through its keyed blind index
-- (`<key id>.<hex HMAC-SHA256>`). The businesses' plaintext owner columns are moved into persons
-- by the program after this migration (it holds the keys) and dropped by the next one.

CREATE TABLE persons (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    nik TEXT NOT NULL,
    nik_index TEXT NOT NULL UNIQUE,
    -- Moves when the NIK is corrected: what the banks' feed compares instead of the NIK.
    nik_version INTEGER NOT NULL DEFAULT 1,
    phone TEXT NOT NULL,
    email TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);

ALTER TABLE businesses ADD COLUMN owner_id BIGINT REFERENCES persons (id);
CREATE INDEX businesses_owner_id ON businesses (owner_id);

-- What the move into persons found different among the businesses of one NIK: the person keeps
-- the newest business's values; the others are kept here (sealed) for an officer to settle
-- (`umkm-api persons conflicts`, and `name_conflicts` of GET /persons/{id}).
CREATE TABLE person_conflicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id BIGINT NOT NULL REFERENCES persons (id) ON DELETE CASCADE,
    business_id BIGINT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    field TEXT NOT NULL CHECK (field IN ('owner_name', 'phone', 'email')),
    value TEXT NOT NULL,
    found_at TIMESTAMP NOT NULL
);
CREATE INDEX person_conflicts_person_id ON person_conflicts (person_id);
CREATE INDEX person_conflicts_business_id ON person_conflicts (business_id);

-- One probe per data key that has sealed or indexed values here: a constant sealed (or indexed)
-- with that key. At start the key file must open (or reproduce) every probe, so that a missing
-- or wrong key stops the start with a clear error instead of reading garbage. The probes
-- reveal nothing of the keys.
CREATE TABLE data_key_checks (
    kind TEXT NOT NULL CHECK (kind IN ('encryption', 'index')),
    key_id INTEGER NOT NULL,
    probe TEXT NOT NULL,
    PRIMARY KEY (kind, key_id)
);
