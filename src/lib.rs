//! umkm-api: the JSON REST backend for a regency trade and industry office's UMKM records.
//!
//! The crate root only lists the modules; `app` builds the application from them.

pub mod accounts;
pub mod app;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod banks;
pub mod businesses;
pub mod config;
pub mod crypto;
pub mod db;
pub mod disclosures;
pub mod domain;
pub mod error;
pub mod health;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod persons;
pub mod products;
pub mod regions;
pub mod retail;
pub mod rights;
pub mod seed;
pub mod spool;
pub mod state;
pub mod stats;
pub mod summary;
pub mod trainings;
pub mod users;
pub mod webhooks;
