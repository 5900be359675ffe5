//! The `stereospot` binary: command-line parsing, configuration and process wiring. Each
//! subcommand is one process of the system; `serve` runs the embedded default in one process.

pub mod cli;
pub mod config;
pub mod convert_cmd;
pub mod depth_cmd;
pub mod engine_backend;
pub mod inference_cmd;
pub mod model_args;
pub mod serve;
pub mod telemetry;
pub mod workers;
