-- Statistics kept as the data changes (issue 14): counts and sums by the keys the statistics
-- group on, so that a dashboard reads a few thousand summary rows instead of every business.
--
-- Every write appends its changes to a `_delta` table in its own transaction (plain INSERTs:
-- writers never wait for each other on a hot summary row, and no lock order can deadlock);
-- the server folds the deltas into the summary every second (src/summary/fold.rs), and reads
-- add the two. Unknown values are stored as '' (scale) and 0 (established year): key columns
-- are never NULL.

CREATE TABLE summary_businesses (
    district_code TEXT NOT NULL,
    scale TEXT NOT NULL,
    kbli_division INTEGER NOT NULL,
    is_ikm BOOLEAN NOT NULL,
    established_year INTEGER NOT NULL,
    status TEXT NOT NULL,
    n BIGINT NOT NULL,
    employees BIGINT NOT NULL,
    revenue_idr BIGINT NOT NULL,
    PRIMARY KEY (district_code, scale, kbli_division, is_ikm, established_year, status)
);
CREATE TABLE summary_businesses_delta (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    district_code TEXT NOT NULL,
    scale TEXT NOT NULL,
    kbli_division INTEGER NOT NULL,
    is_ikm BOOLEAN NOT NULL,
    established_year INTEGER NOT NULL,
    status TEXT NOT NULL,
    n BIGINT NOT NULL,
    employees BIGINT NOT NULL,
    revenue_idr BIGINT NOT NULL
);

-- Applications by bank, programme and status, and whether the business consents to sharing
-- with banks (a bank's own figures count only those).
CREATE TABLE summary_applications (
    bank_partner_id BIGINT NOT NULL,
    programme_id BIGINT NOT NULL,
    status TEXT NOT NULL,
    consented BOOLEAN NOT NULL,
    n BIGINT NOT NULL,
    requested_idr BIGINT NOT NULL,
    approved_idr BIGINT NOT NULL,
    PRIMARY KEY (bank_partner_id, programme_id, status, consented)
);
CREATE TABLE summary_applications_delta (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bank_partner_id BIGINT NOT NULL,
    programme_id BIGINT NOT NULL,
    status TEXT NOT NULL,
    consented BOOLEAN NOT NULL,
    n BIGINT NOT NULL,
    requested_idr BIGINT NOT NULL,
    approved_idr BIGINT NOT NULL
);

-- Other counts: 'products' (scope 0, item the category) and 'registrations' (scope the
-- training, item the status).
CREATE TABLE summary_counts (
    figure TEXT NOT NULL,
    scope BIGINT NOT NULL,
    item TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (figure, scope, item)
);
CREATE TABLE summary_counts_delta (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    figure TEXT NOT NULL,
    scope BIGINT NOT NULL,
    item TEXT NOT NULL,
    n BIGINT NOT NULL
);

-- The summaries of what is already stored (the same queries as `umkm-api stats rebuild`,
-- src/summary/rebuild.rs; a test keeps the two equal).
INSERT INTO summary_businesses
SELECT district_code, COALESCE(scale, ''), kbli_division, is_ikm,
       COALESCE(CAST(strftime('%Y', established_on) AS INTEGER), 0), status,
       COUNT(*), COALESCE(SUM(employees), 0), COALESCE(SUM(annual_revenue_idr), 0)
FROM businesses GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO summary_applications
SELECT a.bank_partner_id, a.programme_id, a.status, b.consented_to_bank_sharing_at IS NOT NULL,
       COUNT(*), COALESCE(SUM(a.amount_requested_idr), 0), COALESCE(SUM(a.amount_approved_idr), 0)
FROM applications a JOIN businesses b ON b.id = a.business_id GROUP BY 1, 2, 3, 4;
INSERT INTO summary_counts
SELECT 'products', 0, category, COUNT(*) FROM products GROUP BY category
UNION ALL
SELECT 'registrations', training_id, status, COUNT(*) FROM registrations GROUP BY training_id, status;
