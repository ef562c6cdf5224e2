-- Statistics kept as the data changes (issue 14): counts and sums by the keys the statistics
-- group on, so that a dashboard reads a few thousand summary rows instead of every business.
--
-- Every write appends its changes to a `_delta` table in its own transaction (plain INSERTs
-- into tables without a key or index: writers never wait for each other on a hot summary row,
-- and no lock order can deadlock);
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

-- The same figures by every set of one to three of those keys ("rollups", 41 of them, named by
-- their columns): a dashboard's question involves few keys and reads the rollup of those keys,
-- tens to a few thousand rows, instead of every group. Columns outside the rollup hold '' / 0 /
-- FALSE. The fold keeps them with the summary (src/summary/mod.rs, `rollups`).
CREATE TABLE summary_business_rollups (
    rollup TEXT NOT NULL,
    district_code TEXT NOT NULL,
    scale TEXT NOT NULL,
    kbli_division INTEGER NOT NULL,
    is_ikm BOOLEAN NOT NULL,
    established_year INTEGER NOT NULL,
    status TEXT NOT NULL,
    n BIGINT NOT NULL,
    employees BIGINT NOT NULL,
    revenue_idr BIGINT NOT NULL,
    PRIMARY KEY (rollup, district_code, scale, kbli_division, is_ikm, established_year, status)
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
    bank_partner_id BIGINT NOT NULL,
    programme_id BIGINT NOT NULL,
    status TEXT NOT NULL,
    consented BOOLEAN NOT NULL,
    n BIGINT NOT NULL,
    requested_idr BIGINT NOT NULL,
    approved_idr BIGINT NOT NULL
);

-- Other counts: 'products' (scope 0, item the category), 'registrations' (scope the training,
-- and 0 for all, item the status), 'trainings', 'outlets' (scope the partner), and the distinct
-- counts 'curated_passed', 'curated_ikm_businesses', 'outlets_stocking' (scope the partner, 0
-- any) and 'products_listed' (scope the partner).
CREATE TABLE summary_counts (
    figure TEXT NOT NULL,
    scope BIGINT NOT NULL,
    item TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (figure, scope, item)
);
CREATE TABLE summary_counts_delta (
    figure TEXT NOT NULL,
    scope BIGINT NOT NULL,
    item TEXT NOT NULL,
    n BIGINT NOT NULL
);

-- Members of the distinct counts (src/summary/members.rs): products with passed curations and
-- the businesses they belong to, outlets stocking products and the products they list, each
-- with its count per partner (scope) and for any partner (scope 0). A member whose count goes
-- from 0 to 1 or back moves its distinct figure in summary_counts.
CREATE TABLE summary_members (
    figure TEXT NOT NULL,
    scope BIGINT NOT NULL,
    member BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (figure, scope, member)
);

-- The delta tables are emptied every second: vacuum them by count, not by a share of a table
-- that is always small.
ALTER TABLE summary_businesses_delta SET (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);
ALTER TABLE summary_applications_delta SET (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);
ALTER TABLE summary_counts_delta SET (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0);

-- The summaries of what is already stored (the same queries as `umkm-api stats rebuild`,
-- src/summary/rebuild.rs; a test keeps the two equal).
INSERT INTO summary_businesses
SELECT district_code, COALESCE(scale, ''), kbli_division, is_ikm,
       COALESCE(CAST(EXTRACT(YEAR FROM established_on) AS INTEGER), 0), status,
       COUNT(*), COALESCE(SUM(employees), 0), COALESCE(SUM(annual_revenue_idr), 0)
FROM businesses GROUP BY 1, 2, 3, 4, 5, 6;
INSERT INTO summary_applications
SELECT a.bank_partner_id, a.programme_id, a.status, b.consented_to_bank_sharing_at IS NOT NULL,
       COUNT(*), COALESCE(SUM(a.amount_requested_idr), 0), COALESCE(SUM(a.amount_approved_idr), 0)
FROM applications a JOIN businesses b ON b.id = a.business_id GROUP BY 1, 2, 3, 4;
INSERT INTO summary_counts
SELECT 'products', 0, category, COUNT(*) FROM products GROUP BY category
UNION ALL SELECT 'registrations', training_id, status, COUNT(*) FROM registrations GROUP BY training_id, status
UNION ALL SELECT 'registrations', 0, status, COUNT(*) FROM registrations GROUP BY status
UNION ALL SELECT 'trainings', 0, '', COUNT(*) FROM trainings HAVING COUNT(*) > 0
UNION ALL SELECT 'outlets', retail_partner_id, '', COUNT(*) FROM outlets GROUP BY retail_partner_id
UNION ALL SELECT 'curated_passed', retail_partner_id, '', COUNT(DISTINCT product_id) FROM curations WHERE status = 'passed' GROUP BY retail_partner_id
UNION ALL SELECT 'curated_passed', 0, '', COUNT(DISTINCT product_id) FROM curations WHERE status = 'passed' HAVING COUNT(*) > 0
UNION ALL SELECT 'curated_ikm_businesses', c.retail_partner_id, '', COUNT(DISTINCT p.business_id) FROM curations c JOIN products p ON p.id = c.product_id JOIN businesses b ON b.id = p.business_id WHERE c.status = 'passed' AND b.is_ikm GROUP BY c.retail_partner_id
UNION ALL SELECT 'curated_ikm_businesses', 0, '', COUNT(DISTINCT p.business_id) FROM curations c JOIN products p ON p.id = c.product_id JOIN businesses b ON b.id = p.business_id WHERE c.status = 'passed' AND b.is_ikm HAVING COUNT(*) > 0
UNION ALL SELECT 'outlets_stocking', o.retail_partner_id, '', COUNT(DISTINCT pl.outlet_id) FROM placements pl JOIN outlets o ON o.id = pl.outlet_id WHERE pl.delisted_on IS NULL GROUP BY o.retail_partner_id
UNION ALL SELECT 'outlets_stocking', 0, '', COUNT(DISTINCT pl.outlet_id) FROM placements pl WHERE pl.delisted_on IS NULL HAVING COUNT(*) > 0
UNION ALL SELECT 'products_listed', o.retail_partner_id, '', COUNT(DISTINCT pl.product_id) FROM placements pl JOIN outlets o ON o.id = pl.outlet_id WHERE pl.delisted_on IS NULL GROUP BY o.retail_partner_id;
INSERT INTO summary_members
SELECT 'passed_product', retail_partner_id, product_id, COUNT(*) FROM curations WHERE status = 'passed' GROUP BY retail_partner_id, product_id
UNION ALL SELECT 'passed_product', 0, product_id, COUNT(*) FROM curations WHERE status = 'passed' GROUP BY product_id
UNION ALL SELECT 'curated_business', c.retail_partner_id, p.business_id, COUNT(*) FROM curations c JOIN products p ON p.id = c.product_id WHERE c.status = 'passed' GROUP BY c.retail_partner_id, p.business_id
UNION ALL SELECT 'curated_business', 0, p.business_id, COUNT(*) FROM curations c JOIN products p ON p.id = c.product_id WHERE c.status = 'passed' GROUP BY p.business_id
UNION ALL SELECT 'stocking_outlet', o.retail_partner_id, pl.outlet_id, COUNT(*) FROM placements pl JOIN outlets o ON o.id = pl.outlet_id WHERE pl.delisted_on IS NULL GROUP BY o.retail_partner_id, pl.outlet_id
UNION ALL SELECT 'stocking_outlet', 0, pl.outlet_id, COUNT(*) FROM placements pl WHERE pl.delisted_on IS NULL GROUP BY pl.outlet_id
UNION ALL SELECT 'listed_product', o.retail_partner_id, pl.product_id, COUNT(*) FROM placements pl JOIN outlets o ON o.id = pl.outlet_id WHERE pl.delisted_on IS NULL GROUP BY o.retail_partner_id, pl.product_id;
INSERT INTO summary_business_rollups
SELECT 'district_code' AS rollup, district_code, '' AS scale, 0 AS kbli_division, FALSE AS is_ikm, 0 AS established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY district_code
UNION ALL
SELECT 'scale' AS rollup, '' AS district_code, scale, 0 AS kbli_division, FALSE AS is_ikm, 0 AS established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY scale
UNION ALL
SELECT 'district_code,scale' AS rollup, district_code, scale, 0 AS kbli_division, FALSE AS is_ikm, 0 AS established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY district_code, scale
UNION ALL
SELECT 'kbli_division' AS rollup, '' AS district_code, '' AS scale, kbli_division, FALSE AS is_ikm, 0 AS established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY kbli_division
UNION ALL
SELECT 'district_code,kbli_division' AS rollup, district_code, '' AS scale, kbli_division, FALSE AS is_ikm, 0 AS established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY district_code, kbli_division
UNION ALL
SELECT 'scale,kbli_division' AS rollup, '' AS district_code, scale, kbli_division, FALSE AS is_ikm, 0 AS established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY scale, kbli_division
UNION ALL
SELECT 'district_code,scale,kbli_division' AS rollup, district_code, scale, kbli_division, FALSE AS is_ikm, 0 AS established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY district_code, scale, kbli_division
UNION ALL
SELECT 'is_ikm' AS rollup, '' AS district_code, '' AS scale, 0 AS kbli_division, is_ikm, 0 AS established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY is_ikm
UNION ALL
SELECT 'district_code,is_ikm' AS rollup, district_code, '' AS scale, 0 AS kbli_division, is_ikm, 0 AS established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY district_code, is_ikm
UNION ALL
SELECT 'scale,is_ikm' AS rollup, '' AS district_code, scale, 0 AS kbli_division, is_ikm, 0 AS established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY scale, is_ikm
UNION ALL
SELECT 'district_code,scale,is_ikm' AS rollup, district_code, scale, 0 AS kbli_division, is_ikm, 0 AS established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY district_code, scale, is_ikm
UNION ALL
SELECT 'kbli_division,is_ikm' AS rollup, '' AS district_code, '' AS scale, kbli_division, is_ikm, 0 AS established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY kbli_division, is_ikm
UNION ALL
SELECT 'district_code,kbli_division,is_ikm' AS rollup, district_code, '' AS scale, kbli_division, is_ikm, 0 AS established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY district_code, kbli_division, is_ikm
UNION ALL
SELECT 'scale,kbli_division,is_ikm' AS rollup, '' AS district_code, scale, kbli_division, is_ikm, 0 AS established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY scale, kbli_division, is_ikm
UNION ALL
SELECT 'established_year' AS rollup, '' AS district_code, '' AS scale, 0 AS kbli_division, FALSE AS is_ikm, established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY established_year
UNION ALL
SELECT 'district_code,established_year' AS rollup, district_code, '' AS scale, 0 AS kbli_division, FALSE AS is_ikm, established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY district_code, established_year
UNION ALL
SELECT 'scale,established_year' AS rollup, '' AS district_code, scale, 0 AS kbli_division, FALSE AS is_ikm, established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY scale, established_year
UNION ALL
SELECT 'district_code,scale,established_year' AS rollup, district_code, scale, 0 AS kbli_division, FALSE AS is_ikm, established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY district_code, scale, established_year
UNION ALL
SELECT 'kbli_division,established_year' AS rollup, '' AS district_code, '' AS scale, kbli_division, FALSE AS is_ikm, established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY kbli_division, established_year
UNION ALL
SELECT 'district_code,kbli_division,established_year' AS rollup, district_code, '' AS scale, kbli_division, FALSE AS is_ikm, established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY district_code, kbli_division, established_year
UNION ALL
SELECT 'scale,kbli_division,established_year' AS rollup, '' AS district_code, scale, kbli_division, FALSE AS is_ikm, established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY scale, kbli_division, established_year
UNION ALL
SELECT 'is_ikm,established_year' AS rollup, '' AS district_code, '' AS scale, 0 AS kbli_division, is_ikm, established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY is_ikm, established_year
UNION ALL
SELECT 'district_code,is_ikm,established_year' AS rollup, district_code, '' AS scale, 0 AS kbli_division, is_ikm, established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY district_code, is_ikm, established_year
UNION ALL
SELECT 'scale,is_ikm,established_year' AS rollup, '' AS district_code, scale, 0 AS kbli_division, is_ikm, established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY scale, is_ikm, established_year
UNION ALL
SELECT 'kbli_division,is_ikm,established_year' AS rollup, '' AS district_code, '' AS scale, kbli_division, is_ikm, established_year, '' AS status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY kbli_division, is_ikm, established_year
UNION ALL
SELECT 'status' AS rollup, '' AS district_code, '' AS scale, 0 AS kbli_division, FALSE AS is_ikm, 0 AS established_year, status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY status
UNION ALL
SELECT 'district_code,status' AS rollup, district_code, '' AS scale, 0 AS kbli_division, FALSE AS is_ikm, 0 AS established_year, status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY district_code, status
UNION ALL
SELECT 'scale,status' AS rollup, '' AS district_code, scale, 0 AS kbli_division, FALSE AS is_ikm, 0 AS established_year, status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY scale, status
UNION ALL
SELECT 'district_code,scale,status' AS rollup, district_code, scale, 0 AS kbli_division, FALSE AS is_ikm, 0 AS established_year, status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY district_code, scale, status
UNION ALL
SELECT 'kbli_division,status' AS rollup, '' AS district_code, '' AS scale, kbli_division, FALSE AS is_ikm, 0 AS established_year, status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY kbli_division, status
UNION ALL
SELECT 'district_code,kbli_division,status' AS rollup, district_code, '' AS scale, kbli_division, FALSE AS is_ikm, 0 AS established_year, status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY district_code, kbli_division, status
UNION ALL
SELECT 'scale,kbli_division,status' AS rollup, '' AS district_code, scale, kbli_division, FALSE AS is_ikm, 0 AS established_year, status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY scale, kbli_division, status
UNION ALL
SELECT 'is_ikm,status' AS rollup, '' AS district_code, '' AS scale, 0 AS kbli_division, is_ikm, 0 AS established_year, status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY is_ikm, status
UNION ALL
SELECT 'district_code,is_ikm,status' AS rollup, district_code, '' AS scale, 0 AS kbli_division, is_ikm, 0 AS established_year, status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY district_code, is_ikm, status
UNION ALL
SELECT 'scale,is_ikm,status' AS rollup, '' AS district_code, scale, 0 AS kbli_division, is_ikm, 0 AS established_year, status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY scale, is_ikm, status
UNION ALL
SELECT 'kbli_division,is_ikm,status' AS rollup, '' AS district_code, '' AS scale, kbli_division, is_ikm, 0 AS established_year, status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY kbli_division, is_ikm, status
UNION ALL
SELECT 'established_year,status' AS rollup, '' AS district_code, '' AS scale, 0 AS kbli_division, FALSE AS is_ikm, established_year, status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY established_year, status
UNION ALL
SELECT 'district_code,established_year,status' AS rollup, district_code, '' AS scale, 0 AS kbli_division, FALSE AS is_ikm, established_year, status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY district_code, established_year, status
UNION ALL
SELECT 'scale,established_year,status' AS rollup, '' AS district_code, scale, 0 AS kbli_division, FALSE AS is_ikm, established_year, status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY scale, established_year, status
UNION ALL
SELECT 'kbli_division,established_year,status' AS rollup, '' AS district_code, '' AS scale, kbli_division, FALSE AS is_ikm, established_year, status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY kbli_division, established_year, status
UNION ALL
SELECT 'is_ikm,established_year,status' AS rollup, '' AS district_code, '' AS scale, 0 AS kbli_division, is_ikm, established_year, status, SUM(n) AS n, SUM(employees) AS employees, SUM(revenue_idr) AS revenue_idr
    FROM summary_businesses GROUP BY is_ikm, established_year, status;
