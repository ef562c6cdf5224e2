-- Planner statistics for the small reference tables. They get a few rows by migration and
-- then rarely change, so autovacuum (which waits for 50 changed rows) would never analyze them
-- and the planner would guess: it guessed one open programme per bank where there are three and
-- read every application of a bank to sort the pull's first page (42 ms instead of 0.9 ms on
-- 351,000 businesses).
ANALYZE regions;
ANALYZE bank_partners;
ANALYZE retail_partners;
ANALYZE financing_programmes;
