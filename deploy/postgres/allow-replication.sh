#!/bin/sh
# Run once by the postgres image when it initializes the primary's data directory
# (/docker-entrypoint-initdb.d): lets the compose "replica" profile's standby stream from it
# with the database user's password. An existing data directory needs the line added by hand.
set -e
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
