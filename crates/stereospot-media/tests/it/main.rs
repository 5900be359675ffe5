//! The crate's one integration-test binary. Needs ffmpeg/ffprobe on PATH and the shared test
//! videos in `shared/data/video` next to the checkout.

mod chunk_join;
mod frames;
mod helpers;
mod probe_fixtures;
mod validate;
