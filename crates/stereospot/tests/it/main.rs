//! Integration tests of the `stereospot` binary's wiring.

#![allow(clippy::unwrap_used)] // test code

mod browser;
mod depth_cmd;
mod helpers;
mod serve;
mod workers;
