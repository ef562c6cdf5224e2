-- Times are UTC, stored without a zone on both back ends.

CREATE TABLE regions (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('province', 'regency', 'district')),
    parent_code TEXT REFERENCES regions (code)
);
CREATE INDEX regions_parent_code ON regions (parent_code);

CREATE TABLE bank_partners (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE retail_partners (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    brand TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);

-- Emails are stored lower-cased, so the unique constraint is case-insensitive.
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE CHECK (email = lower(email)),
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'officer', 'bank', 'retail', 'viewer')),
    bank_partner_id BIGINT REFERENCES bank_partners (id),
    retail_partner_id BIGINT REFERENCES retail_partners (id),
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    last_login_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    CHECK ((role = 'bank') = (bank_partner_id IS NOT NULL)),
    CHECK ((role = 'retail') = (retail_partner_id IS NOT NULL))
);

-- Failed logins, per e-mail, for the login throttle. Kept in the database so that
-- every instance behind a load balancer counts the same attempts.
CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL,
    failed_at TIMESTAMP NOT NULL
);
CREATE INDEX login_failures_email_failed_at ON login_failures (email, failed_at);

INSERT INTO regions (code, name, level, parent_code) VALUES
    ('35', 'Jawa Timur', 'province', NULL),
    ('35.24', 'Lamongan', 'regency', '35'),
    ('35.24.01', 'Sukorame', 'district', '35.24'),
    ('35.24.02', 'Bluluk', 'district', '35.24'),
    ('35.24.03', 'Modo', 'district', '35.24'),
    ('35.24.04', 'Ngimbang', 'district', '35.24'),
    ('35.24.05', 'Babat', 'district', '35.24'),
    ('35.24.06', 'Kedungpring', 'district', '35.24'),
    ('35.24.07', 'Brondong', 'district', '35.24'),
    ('35.24.08', 'Laren', 'district', '35.24'),
    ('35.24.09', 'Sekaran', 'district', '35.24'),
    ('35.24.10', 'Maduran', 'district', '35.24'),
    ('35.24.11', 'Sambeng', 'district', '35.24'),
    ('35.24.12', 'Sugio', 'district', '35.24'),
    ('35.24.13', 'Pucuk', 'district', '35.24'),
    ('35.24.14', 'Paciran', 'district', '35.24'),
    ('35.24.15', 'Solokuro', 'district', '35.24'),
    ('35.24.16', 'Mantup', 'district', '35.24'),
    ('35.24.17', 'Sukodadi', 'district', '35.24'),
    ('35.24.18', 'Karanggeneng', 'district', '35.24'),
    ('35.24.19', 'Kembangbahu', 'district', '35.24'),
    ('35.24.20', 'Kalitengah', 'district', '35.24'),
    ('35.24.21', 'Turi', 'district', '35.24'),
    ('35.24.22', 'Lamongan', 'district', '35.24'),
    ('35.24.23', 'Tikung', 'district', '35.24'),
    ('35.24.24', 'Karangbinangun', 'district', '35.24'),
    ('35.24.25', 'Deket', 'district', '35.24'),
    ('35.24.26', 'Glagah', 'district', '35.24'),
    ('35.24.27', 'Sarirejo', 'district', '35.24');

INSERT INTO bank_partners (code, name, created_at, updated_at) VALUES
    ('BRI', 'PT Bank Rakyat Indonesia (Persero) Tbk', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    ('BNI', 'PT Bank Negara Indonesia (Persero) Tbk', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    ('MANDIRI', 'PT Bank Mandiri (Persero) Tbk', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    ('BJTM', 'PT Bank Pembangunan Daerah Jawa Timur Tbk (Bank Jatim)', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),
    ('BDL', 'PT Bank Perekonomian Rakyat Bank Daerah Lamongan (Perseroda)', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP);

INSERT INTO retail_partners (code, name, brand, created_at, updated_at) VALUES
    ('IDM', 'PT Indomarco Prismatama', 'Indomaret', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP);
