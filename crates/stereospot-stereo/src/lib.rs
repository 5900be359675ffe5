//! StereoSpot's stereo engine: one 2D frame in, a stereoscopic frame out.
//!
//! ```text
//! RgbFrame --DepthModel--> DepthMap (relative inverse depth, near = large, any scale)
//!          --DepthNormalizer--> DepthMap in 0..=1 (temporally stable, reset at scene cuts)
//!          --synth--> left and right views (depth-ordered forward warp, holes filled)
//!          --compose--> anaglyph / sbs / hsbs / tab frame
//! ```
//!
//! Frames are [`stereospot_media::RgbFrame`]s, so the media crate's reader and writer plug in
//! directly. Everything CPU-heavy runs on rayon; nothing here is async.

pub mod compose;
pub mod convert;
pub mod depth;
mod error;
pub mod image;
pub mod stabilize;
pub mod synth;

pub use error::{Result, StereoError};
pub use image::DepthMap;
pub use stereospot_media::RgbFrame;
