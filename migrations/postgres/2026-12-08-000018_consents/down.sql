-- The flags stay as the records left them; the records go.
ALTER TABLE applications DROP COLUMN consented;
DROP TABLE consents;
