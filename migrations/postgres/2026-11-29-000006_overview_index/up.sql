-- Lets the overview count businesses per scale, active and IKM from the index alone
-- (measured at 351,000 businesses: PostgreSQL 81 ms -> 35 ms, SQLite 99 ms -> 39 ms).
CREATE INDEX businesses_scale_status_ikm ON businesses (scale, status, is_ikm);
