//! Integration tests of the `stereospot` binary's wiring.

#![allow(clippy::unwrap_used)] // test code

mod helpers;
mod serve;
mod workers;
