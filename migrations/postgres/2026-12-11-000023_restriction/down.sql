DROP INDEX persons_restricted;
ALTER TABLE persons DROP COLUMN restricted_at;
