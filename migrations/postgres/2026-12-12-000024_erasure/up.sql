-- Erasure as anonymisation (issue 30, UU 27/2022 Pasal 43-44): an erased person's row stays
-- (their businesses, applications and the statistics keep pointing at it) with no personal
-- value left: name and address "[erased]", the sealed NIK, phone and e-mail replaced by a
-- marker that opens to nothing, the NIK's blind index by one no NIK hashes to.
ALTER TABLE persons ADD COLUMN erased_at TIMESTAMP;
