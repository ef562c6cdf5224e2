-- The businesses' plaintext owner columns go (issue 29): their values now live in persons,
-- sealed. The program moves them before this migration runs; a business without its owner
-- stops the migration here instead of losing data.
ALTER TABLE businesses ALTER COLUMN owner_id SET NOT NULL;
ALTER TABLE businesses
    DROP COLUMN owner_name,
    DROP COLUMN owner_nik,
    DROP COLUMN phone,
    DROP COLUMN email;
