-- Erasure as anonymisation (issue 30, UU 27/2022 Pasal 43-44): an erased person's row stays
-- (their businesses, applications and the statistics keep pointing at it) with no personal
-- value left: name and address "[erased]", the sealed NIK and phone replaced by a marker that
-- opens to nothing, the e-mail and NPWP removed, the NIK's blind index replaced by one no NIK
-- hashes to.
ALTER TABLE persons ADD COLUMN erased_at TIMESTAMP;
