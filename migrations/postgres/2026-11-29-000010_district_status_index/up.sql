-- The business list of one district with one status (`?district=…&status=active`), the page
-- an office opens most: an index range in id order for any district and status, so that its
-- query has one plan for all values (see `Pool::generic_plans`) and reads only the rows of the
-- page, where the primary key read in id order skips the other districts' rows.
CREATE INDEX businesses_district_status ON businesses (district_code, status, id);
