//! Integration tests through the real application over HTTP, on SQLite by default and on
//! PostgreSQL when `TEST_DATABASE_URL` is set. All in one binary: it builds once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod backup;
mod banks;
mod businesses;
mod clients;
mod concurrency;
mod consents;
mod disclosure;
mod erasure;
mod errors;
mod feed;
mod health;
mod helpers;
mod layout;
mod lists;
mod metrics;
mod openapi;
mod persons;
mod plans;
mod products;
mod regions;
mod replicas;
mod requests;
mod retail;
mod rights;
mod schema;
mod seed;
mod stats;
mod summary;
mod summary_sequences;
mod trail;
mod trainings;
mod users;
mod webhooks;
