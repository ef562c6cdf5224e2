-- The owner columns come back empty: their values are in persons, sealed under keys this
-- migration does not hold.
ALTER TABLE businesses
    ADD COLUMN owner_name TEXT NOT NULL DEFAULT '',
    ADD COLUMN owner_nik TEXT NOT NULL DEFAULT '',
    ADD COLUMN phone TEXT NOT NULL DEFAULT '',
    ADD COLUMN email TEXT;
ALTER TABLE businesses ALTER COLUMN owner_id DROP NOT NULL;
