#!/usr/bin/env bash
# A person's trail at 10 million disclosure entries (issue 30: <= 50 ms on PostgreSQL).
#
#   bench/trail.sh [postgres://postgres@127.0.0.1:5432] [entries]
#
# Makes a scratch database `umkm_trail_bench` with the log's table and indexes as the
# migrations leave them (000020, 000021), fills it with ENTRIES entries over 351,000 persons —
# nine in ten a single person (a read by id), one in ten a page of 50 (a list page) — and times
# the trail query the API runs (`disclosures::of_person`) for persons of each kind, with
# EXPLAIN ANALYZE. Drops the database at the end.
set -euo pipefail
URL=${1:-postgres://postgres@127.0.0.1:5432}
N=${2:-10000000}
DB=umkm_trail_bench
cd "$(dirname "$0")/.."
psql -q "$URL/postgres" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
trap 'psql -q "$URL/postgres" -c "DROP DATABASE IF EXISTS $DB"' EXIT
psql -q "$URL/$DB" -f migrations/postgres/2026-12-09-000020_disclosures/up.sql
start=$SECONDS
psql -q -v ON_ERROR_STOP=1 "$URL/$DB" <<SQL
DROP INDEX IF EXISTS disclosures_persons;
INSERT INTO disclosures (occurred_at, user_id, route, request_id, classes, persons)
SELECT timestamp '2026-01-01' + g * interval '3 seconds', 1 + g % 40,
       CASE WHEN g % 10 = 0 THEN 'GET /api/v1/businesses' ELSE 'GET /api/v1/businesses/{id}' END,
       md5(g::text), 7,
       CASE WHEN g % 10 = 0
            THEN (SELECT string_agg((1 + (g * 7919 + k * 104729) % 351000)::text, ',') FROM generate_series(1, 50) k)
            ELSE (1 + (g * 2654435761) % 351000)::text END
FROM generate_series(1::bigint, $N::bigint) g;
SQL
echo "filled $N entries in $((SECONDS - start)) s"
start=$SECONDS
psql -q "$URL/$DB" -f migrations/postgres/2026-12-10-000021_disclosure_persons_index/up.sql
psql -q "$URL/$DB" -c "VACUUM ANALYZE disclosures"
echo "GIN index built in $((SECONDS - start)) s"
psql -qAt "$URL/$DB" -c "SELECT pg_size_pretty(pg_relation_size('disclosures')), pg_size_pretty(pg_relation_size('disclosures_persons')), pg_size_pretty(pg_relation_size('disclosures_pkey'))"
for person in 12345 200000 351000; do
    psql -qAt "$URL/$DB" -c "SELECT count(*) FROM disclosures WHERE string_to_array(persons, ',')::bigint[] @> ARRAY[$person::bigint]" | sed "s/^/person $person: entries /"
    for run in 1 2 3; do
        psql -qAt "$URL/$DB" -c "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) WITH mine AS MATERIALIZED (SELECT id, occurred_at, user_id, bank_partner_id, retail_partner_id, route, request_id, classes FROM disclosures WHERE string_to_array(persons, ',')::bigint[] @> ARRAY[$person::bigint] AND id < 9223372036854775807) SELECT * FROM mine ORDER BY id DESC LIMIT 51" | grep "Execution Time" | sed "s/^/  run $run: /"
    done
done
