DROP TABLE data_key_checks;
DROP TABLE person_conflicts;
DROP INDEX businesses_owner_id;
ALTER TABLE businesses DROP COLUMN owner_id;
DROP TABLE persons;
