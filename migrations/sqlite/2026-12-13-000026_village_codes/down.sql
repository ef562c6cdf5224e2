-- SQLite cannot drop a column that a foreign key names without making the table anew: the
-- column stays, unread by the releases before this one.
DROP INDEX businesses_village_code;
