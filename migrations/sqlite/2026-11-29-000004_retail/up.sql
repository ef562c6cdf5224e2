-- Retail partners' outlets, the curation of products, and their placement in outlets.

CREATE TABLE outlets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    retail_partner_id BIGINT NOT NULL REFERENCES retail_partners (id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    address TEXT,
    district_code TEXT NOT NULL REFERENCES regions (code),
    opened_on DATE,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    UNIQUE (retail_partner_id, code)
);
CREATE INDEX outlets_district ON outlets (district_code, id);
CREATE INDEX outlets_updated_at ON outlets (updated_at, id);

CREATE TABLE curations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id BIGINT NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    retail_partner_id BIGINT NOT NULL REFERENCES retail_partners (id),
    status TEXT NOT NULL CHECK (status IN ('submitted', 'passed', 'rejected')),
    notes TEXT,
    decided_at TIMESTAMP,
    decided_by BIGINT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);
-- One open curation per product and partner.
CREATE UNIQUE INDEX curations_one_open ON curations (product_id, retail_partner_id) WHERE status = 'submitted';
CREATE INDEX curations_partner_status ON curations (retail_partner_id, status, id);
CREATE INDEX curations_product ON curations (product_id, retail_partner_id, status);

CREATE TABLE placements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id BIGINT NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    outlet_id BIGINT NOT NULL REFERENCES outlets (id),
    listed_on DATE NOT NULL,
    delisted_on DATE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    CHECK (delisted_on IS NULL OR delisted_on >= listed_on)
);
-- A product is listed in an outlet once at a time.
CREATE UNIQUE INDEX placements_one_listed ON placements (product_id, outlet_id) WHERE delisted_on IS NULL;
CREATE INDEX placements_outlet ON placements (outlet_id, id);
CREATE INDEX placements_product ON placements (product_id, id);
