//! Integration tests of the `stereospot` binary's wiring.

mod depth_cmd;
mod helpers;
mod serve;
