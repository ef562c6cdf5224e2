-- The owner columns come back empty: their values are in persons, sealed under keys this
-- migration does not hold.
DROP TRIGGER businesses_owner_required_on_update;
DROP TRIGGER businesses_owner_required_on_insert;
ALTER TABLE businesses ADD COLUMN owner_name TEXT NOT NULL DEFAULT '';
ALTER TABLE businesses ADD COLUMN owner_nik TEXT NOT NULL DEFAULT '';
ALTER TABLE businesses ADD COLUMN phone TEXT NOT NULL DEFAULT '';
ALTER TABLE businesses ADD COLUMN email TEXT;
