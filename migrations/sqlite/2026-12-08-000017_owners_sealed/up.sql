-- The businesses' plaintext owner columns go (issue 29): their values now live in persons,
-- sealed. The program moves them before this migration runs; a business without its owner
-- stops the migration here instead of losing data (SQLite cannot add NOT NULL to a column:
-- the NOT NULL of a scratch table refuses the first owner-less business, and triggers keep
-- owner_id set from now on).
CREATE TEMP TABLE owners_moved (owner_id BIGINT NOT NULL);
INSERT INTO owners_moved SELECT owner_id FROM businesses WHERE owner_id IS NULL LIMIT 1;
DROP TABLE owners_moved;
ALTER TABLE businesses DROP COLUMN owner_name;
ALTER TABLE businesses DROP COLUMN owner_nik;
ALTER TABLE businesses DROP COLUMN phone;
ALTER TABLE businesses DROP COLUMN email;
CREATE TRIGGER businesses_owner_required_on_insert BEFORE INSERT ON businesses
    WHEN NEW.owner_id IS NULL
    BEGIN SELECT RAISE(ABORT, 'NOT NULL constraint failed: businesses.owner_id'); END;
CREATE TRIGGER businesses_owner_required_on_update BEFORE UPDATE OF owner_id ON businesses
    WHEN NEW.owner_id IS NULL
    BEGIN SELECT RAISE(ABORT, 'NOT NULL constraint failed: businesses.owner_id'); END;
