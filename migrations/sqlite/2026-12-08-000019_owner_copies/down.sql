ALTER TABLE businesses DROP COLUMN person_name;
ALTER TABLE businesses DROP COLUMN person_nik;
ALTER TABLE businesses DROP COLUMN person_phone;
ALTER TABLE businesses DROP COLUMN person_email;
