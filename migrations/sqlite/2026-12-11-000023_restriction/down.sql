ALTER TABLE persons DROP COLUMN restricted_at;
