-- Villages as codes (issue 31): a business names its village by the decree's code, which must
-- be a village of its district (the program checks it; the foreign key keeps it a region).
-- The free-text `village` stays: the decree's name once a code is set, and the text as typed
-- where no village of the district matched it (`umkm-api regions unmatched` lists those). The
-- program matches the existing texts once, right after this migration.
ALTER TABLE businesses ADD COLUMN village_code TEXT REFERENCES regions (code);
CREATE INDEX businesses_village_code ON businesses (village_code, id);
-- An outlet names its village by code alone (outlets had no village text).
ALTER TABLE outlets ADD COLUMN village_code TEXT REFERENCES regions (code);
