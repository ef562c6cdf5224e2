ALTER TABLE businesses DROP COLUMN person_name, DROP COLUMN person_nik, DROP COLUMN person_phone,
    DROP COLUMN person_email;
