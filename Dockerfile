# Builds the release binary, then runs it on a slim Debian with only its runtime libraries.
# SQLite and libpq are compiled into the binary (bundled); libpq links the system OpenSSL.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# The rust image already carries pkg-config and libssl-dev, which the bundled libpq needs.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
# The regions' decree, compiled into the binary (ODbL: its licence and attribution travel with it).
COPY reference ./reference
RUN cargo build --release --locked && strip target/release/umkm-api

FROM debian:bookworm-slim
# postgresql-client (15 on bookworm, as the compose file's server): pg_dump, pg_restore and psql
# for `umkm-api backup` and `restore` against PostgreSQL.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 ca-certificates postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /app --create-home umkm \
    && install -d -o umkm -g umkm /app/backups \
    && install -d -o umkm -g umkm -m 700 /app/keys
COPY --from=build /src/target/release/umkm-api /usr/local/bin/umkm-api
COPY reference/regions/README.md reference/regions/LICENSE.md /usr/share/doc/umkm-api/regions/
USER umkm
WORKDIR /app
# mimalloc (the server's allocator) commits its arenas lazily: half the resident memory, the
# same speed (bench/README.md, "Persons, third part").
ENV BIND_ADDR=0.0.0.0:8080 RUST_LOG=info MIMALLOC_ARENA_EAGER_COMMIT=0
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q '200 OK' <&3"]
ENTRYPOINT ["umkm-api"]
CMD ["serve"]
