-- PostgreSQL finds a person's trail through a GIN index of disclosures.persons from this
-- migration on; SQLite, which has no such index, keeps a row per person per entry in
-- disclosed_persons (cheap in process). Nothing changes here: the migration keeps the two
-- back ends' lists in step.
SELECT 1;
