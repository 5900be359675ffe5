//! Integration tests of the `stereospot` binary's wiring.

mod helpers;
mod serve;
