//! Integration tests of the web UI: routes through `oneshot`, SSE and Web Push over real
//! port-0 listeners. (The browser test, which needs the whole pipeline, is in the `stereospot`
//! crate.)

#![allow(clippy::unwrap_used)] // test code

mod helpers;
mod push;
mod routes;
mod sse;
