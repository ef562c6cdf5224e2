-- Covers the regency's main report, businesses per district and scale with their workers and
-- sales (`/stats/businesses?group_by=district,scale`), so that it reads the index alone in
-- group order instead of every row.
CREATE INDEX businesses_district_scale ON businesses (district_code, scale) INCLUDE (employees, annual_revenue_idr);
