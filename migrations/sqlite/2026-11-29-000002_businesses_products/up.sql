-- The UMKM and what they make; the audit log; stored answers of idempotent creates.

CREATE TABLE businesses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    owner_nik TEXT NOT NULL,
    phone TEXT NOT NULL,
    email TEXT,
    nib TEXT UNIQUE,
    npwp TEXT,
    kbli TEXT NOT NULL,
    -- Derived from kbli, kept for grouping.
    kbli_division INTEGER NOT NULL,
    district_code TEXT NOT NULL REFERENCES regions (code),
    village TEXT,
    address TEXT NOT NULL,
    capital_idr BIGINT CHECK (capital_idr >= 0),
    annual_revenue_idr BIGINT CHECK (annual_revenue_idr >= 0),
    employees INTEGER CHECK (employees >= 0),
    established_on DATE,
    status TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'closed')),
    consented_to_bank_sharing_at TIMESTAMP,
    -- Derived on every write (PP 7/2021, Permenperin 64/2016); never sent by clients.
    scale TEXT CHECK (scale IN ('mikro', 'kecil', 'menengah', 'besar')),
    scale_basis TEXT CHECK (scale_basis IN ('revenue', 'capital')),
    is_ikm BOOLEAN NOT NULL,
    industry_scale TEXT CHECK (industry_scale IN ('kecil', 'menengah')),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX businesses_district_code ON businesses (district_code, id);
CREATE INDEX businesses_scale ON businesses (scale, id);
CREATE INDEX businesses_is_ikm ON businesses (is_ikm, id);
CREATE INDEX businesses_status ON businesses (status, id);
CREATE INDEX businesses_kbli ON businesses (kbli, id);
CREATE INDEX businesses_kbli_division ON businesses (kbli_division);
CREATE INDEX businesses_updated_at ON businesses (updated_at, id);
CREATE INDEX businesses_created_at ON businesses (created_at, id);
CREATE INDEX businesses_name ON businesses (name, id);
CREATE INDEX businesses_established_on ON businesses (established_on);

CREATE TABLE products (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    business_id BIGINT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    category TEXT NOT NULL CHECK (category IN ('food', 'beverage', 'craft', 'fashion', 'agriculture', 'service', 'other')),
    description TEXT,
    price_idr BIGINT CHECK (price_idr >= 0),
    unit TEXT,
    pirt_number TEXT,
    bpom_number TEXT,
    halal_certificate TEXT,
    sni_certified BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX products_business_id ON products (business_id, id);
CREATE INDEX products_category ON products (category, id);
CREATE INDEX products_updated_at ON products (updated_at, id);
CREATE INDEX products_created_at ON products (created_at, id);
CREATE INDEX products_name ON products (name, id);


-- Who changed what. No foreign keys: entries outlive the users and records they name.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at TIMESTAMP NOT NULL,
    user_id BIGINT,
    action TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    entity TEXT NOT NULL,
    entity_id BIGINT NOT NULL,
    -- JSON: the fields written, personal data redacted.
    changes TEXT NOT NULL
);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id, id);
CREATE INDEX audit_log_user_id ON audit_log (user_id, id);
CREATE INDEX audit_log_occurred_at ON audit_log (occurred_at, id);

-- The first answer to a create sent with an Idempotency-Key, replayed to retries.
CREATE TABLE idempotency_keys (
    user_id BIGINT NOT NULL,
    endpoint TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    location TEXT,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, endpoint, idempotency_key)
);
