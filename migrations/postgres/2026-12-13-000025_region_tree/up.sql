-- The whole tree of Kepmendagri 300.2.2-2138/2025 (issue 31): villages join the three levels,
-- each region keeps its name folded for search (`crate::regions::tree::fold`), a code a newer
-- decree no longer lists stays, `retired`, for the records that use it, and `served` marks the
-- installation's service area (`SERVICE_AREA`, set at each start). The rows are loaded by the
-- program right after the migrations (`crate::regions::tree::load_if_missing`).
ALTER TABLE regions DROP CONSTRAINT regions_level_check;
ALTER TABLE regions ADD CONSTRAINT regions_level_check
    CHECK (level IN ('province', 'regency', 'district', 'village'));
ALTER TABLE regions
    ADD COLUMN name_folded TEXT NOT NULL DEFAULT '',
    ADD COLUMN retired BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN served BOOLEAN NOT NULL DEFAULT FALSE;
DROP INDEX regions_parent_code;
CREATE INDEX regions_parent_code ON regions (parent_code, code);
CREATE INDEX regions_level_code ON regions (level, code);
CREATE INDEX regions_served_code ON regions (code) WHERE served;
