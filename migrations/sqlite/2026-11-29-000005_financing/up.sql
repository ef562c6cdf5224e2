-- Partner banks' financing programmes and the businesses' applications to them.

CREATE TABLE financing_programmes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bank_partner_id BIGINT NOT NULL REFERENCES bank_partners (id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('kur_super_mikro', 'kur_mikro', 'kur_kecil', 'commercial')),
    min_amount_idr BIGINT NOT NULL CHECK (min_amount_idr >= 0),
    max_amount_idr BIGINT NOT NULL,
    interest_rate_bp INTEGER NOT NULL CHECK (interest_rate_bp >= 0),
    min_business_age_months INTEGER NOT NULL CHECK (min_business_age_months >= 0),
    -- Comma-separated scales, e.g. 'mikro,kecil'.
    eligible_scales TEXT NOT NULL,
    requires_nib BOOLEAN NOT NULL,
    open BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    CHECK (max_amount_idr >= min_amount_idr)
);
CREATE INDEX financing_programmes_bank ON financing_programmes (bank_partner_id, id);

CREATE TABLE applications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    business_id BIGINT NOT NULL REFERENCES businesses (id),
    programme_id BIGINT NOT NULL REFERENCES financing_programmes (id),
    -- The programme's bank, kept here so that a bank's scope is one indexed column.
    bank_partner_id BIGINT NOT NULL REFERENCES bank_partners (id),
    amount_requested_idr BIGINT NOT NULL CHECK (amount_requested_idr > 0),
    purpose TEXT,
    status TEXT NOT NULL CHECK (status IN ('submitted', 'in_review', 'approved', 'rejected', 'disbursed', 'withdrawn')),
    amount_approved_idr BIGINT CHECK (amount_approved_idr > 0),
    bank_reference TEXT,
    financing_ends_on DATE,
    decided_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX applications_bank_updated ON applications (bank_partner_id, updated_at, id);
CREATE INDEX applications_business ON applications (business_id, status);
CREATE INDEX applications_programme ON applications (programme_id, id);
CREATE INDEX applications_status ON applications (status);

-- KUR programmes of every partner bank, with the national plafonds and rates.
INSERT INTO financing_programmes (bank_partner_id, name, kind, min_amount_idr, max_amount_idr,
    interest_rate_bp, min_business_age_months, eligible_scales, requires_nib, open, created_at, updated_at) VALUES
    (1, 'KUR Super Mikro', 'kur_super_mikro', 1, 10000000, 300, 6, 'mikro', FALSE, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    (1, 'KUR Mikro', 'kur_mikro', 10000001, 100000000, 600, 6, 'mikro,kecil', TRUE, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    (1, 'KUR Kecil', 'kur_kecil', 100000001, 500000000, 600, 6, 'kecil,menengah', TRUE, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    (2, 'KUR Super Mikro', 'kur_super_mikro', 1, 10000000, 300, 6, 'mikro', FALSE, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    (2, 'KUR Mikro', 'kur_mikro', 10000001, 100000000, 600, 6, 'mikro,kecil', TRUE, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    (2, 'KUR Kecil', 'kur_kecil', 100000001, 500000000, 600, 6, 'kecil,menengah', TRUE, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    (3, 'KUR Super Mikro', 'kur_super_mikro', 1, 10000000, 300, 6, 'mikro', FALSE, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    (3, 'KUR Mikro', 'kur_mikro', 10000001, 100000000, 600, 6, 'mikro,kecil', TRUE, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    (3, 'KUR Kecil', 'kur_kecil', 100000001, 500000000, 600, 6, 'kecil,menengah', TRUE, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    (4, 'KUR Super Mikro', 'kur_super_mikro', 1, 10000000, 300, 6, 'mikro', FALSE, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    (4, 'KUR Mikro', 'kur_mikro', 10000001, 100000000, 600, 6, 'mikro,kecil', TRUE, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    (4, 'KUR Kecil', 'kur_kecil', 100000001, 500000000, 600, 6, 'kecil,menengah', TRUE, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    (5, 'KUR Super Mikro', 'kur_super_mikro', 1, 10000000, 300, 6, 'mikro', FALSE, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    (5, 'KUR Mikro', 'kur_mikro', 10000001, 100000000, 600, 6, 'mikro,kecil', TRUE, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    (5, 'KUR Kecil', 'kur_kecil', 100000001, 500000000, 600, 6, 'kecil,menengah', TRUE, TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP);
