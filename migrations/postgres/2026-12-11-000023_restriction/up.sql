-- Restriction of processing (issue 30, UU 27/2022 Pasal 41): while a person's data is
-- restricted, the office keeps the record (marked) but no bank sees the person: each of their
-- applications leaves its bank's pull (left_reason restricted) until the restriction is lifted,
-- and no new application names them.
ALTER TABLE persons ADD COLUMN restricted_at TIMESTAMP;
-- The restricted persons, few: a bank's reads of applications leave theirs out through it.
CREATE INDEX persons_restricted ON persons (id) WHERE restricted_at IS NOT NULL;
