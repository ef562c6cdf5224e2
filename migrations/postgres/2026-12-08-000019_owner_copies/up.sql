-- What a business shows of its owner, copied from the person (issue 29): the name, and the
-- sealed NIK, phone and e-mail exactly as the person's row holds them (the same ciphertexts,
-- opened with the same keys). A business is then read, listed and exported from its own row,
-- without a second table. The person's row is the truth: every write of a person's fields
-- writes the copies of all their businesses in the same transaction (the person, then their
-- businesses, locked), and a key rotation copies what it sealed again.
ALTER TABLE businesses
    ADD COLUMN person_name TEXT NOT NULL DEFAULT '',
    ADD COLUMN person_nik TEXT NOT NULL DEFAULT '',
    ADD COLUMN person_phone TEXT NOT NULL DEFAULT '',
    ADD COLUMN person_email TEXT;
UPDATE businesses b SET person_name = p.name, person_nik = p.nik, person_phone = p.phone, person_email = p.email
FROM persons p WHERE p.id = b.owner_id;
