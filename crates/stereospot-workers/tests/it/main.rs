//! Integration tests of the pipeline workers on the local platform (SQLite and files in a temp
//! dir) with real videos from `shared/data/video`, driven through the step functions.

// Test code throughout: helpers, queue wrappers and backends, not only #[test] fns.
#![allow(clippy::unwrap_used)]

mod helpers;

mod analysis;
mod at_least_once;
mod end_to_end;
mod http_backend;
mod idempotency;
mod ingest;
mod metrics;
mod poison;
mod running;
mod sweep;
