//! Integration tests of the local platform: the shared conformance suite, crash safety with
//! real SIGKILLed child processes, and local-only behaviour.

mod crash;
mod harness;
mod sqlite_conformance;
mod storage_conformance;
