//! Integration tests of the `stereospot` binary's wiring.

#![allow(clippy::unwrap_used)] // test code

mod browser;
mod crash;
mod depth_cmd;
mod depth_stats;
mod helpers;
mod inference_server;
mod serve;
mod workers;
