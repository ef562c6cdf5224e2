DROP INDEX businesses_village_code;
ALTER TABLE businesses DROP COLUMN village_code;
ALTER TABLE outlets DROP COLUMN village_code;
