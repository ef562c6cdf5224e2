-- The whole tree of Kepmendagri 300.2.2-2138/2025 (issue 31); see the PostgreSQL migration.
-- SQLite cannot change a CHECK constraint: the table is made anew and the old one's rows moved
-- into it, with foreign keys off (outside a transaction: `metadata.toml`) so that the tables
-- that refer to `regions` keep referring to it, as SQLite's own procedure for this does.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE regions_tree (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('province', 'regency', 'district', 'village')),
    parent_code TEXT REFERENCES regions (code),
    name_folded TEXT NOT NULL DEFAULT '',
    retired BOOLEAN NOT NULL DEFAULT FALSE,
    served BOOLEAN NOT NULL DEFAULT FALSE
);
INSERT INTO regions_tree (code, name, level, parent_code) SELECT code, name, level, parent_code FROM regions;
DROP TABLE regions;
ALTER TABLE regions_tree RENAME TO regions;
CREATE INDEX regions_parent_code ON regions (parent_code, code);
CREATE INDEX regions_level_code ON regions (level, code);
CREATE INDEX regions_served_code ON regions (code) WHERE served;
COMMIT;
PRAGMA foreign_keys = ON;
