-- Covers the regency's main report, businesses per district and scale with their workers and
-- sales (`/stats/businesses?group_by=district,scale`), so that it reads the index alone in
-- group order instead of every row (SQLite has no INCLUDE: the sums' columns are trailing keys).
CREATE INDEX businesses_district_scale ON businesses (district_code, scale, employees, annual_revenue_idr);
