PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE regions_old (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('province', 'regency', 'district')),
    parent_code TEXT REFERENCES regions (code)
);
INSERT INTO regions_old (code, name, level, parent_code)
    SELECT code, name, level, parent_code FROM regions
    WHERE code IN ('35', '35.24') OR (level = 'district' AND code LIKE '35.24.%');
DROP TABLE regions;
ALTER TABLE regions_old RENAME TO regions;
CREATE INDEX regions_parent_code ON regions (parent_code);
COMMIT;
PRAGMA foreign_keys = ON;
