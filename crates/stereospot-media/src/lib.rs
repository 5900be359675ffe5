//! StereoSpot's media layer: the one crate that talks to ffmpeg and ffprobe.
//!
//! (Crate documentation is completed below with the decisions and measurements.)

mod chunk;
mod config;
mod error;
mod frames;
mod join;
mod mp4;
mod packets;
mod probe;
mod process;
mod sniff;
mod validate;

pub use chunk::{ChunkMethod, ChunkOptions, Chunked, ReencodeSettings, SegmentInfo};
pub use config::{DEFAULT_DEMUXERS, Limits, Media, MediaConfig, Timeouts};
pub use error::{MediaError, Result, Tool};
pub use frames::{
    AsyncFrameReader, AsyncFrameWriter, EncodeOptions, FrameReader, FrameSource, FrameWriter,
    OutputPixelFormat, ReadOptions, Resize, RgbFrame, WrittenVideo, X264_PRESETS,
};
pub use join::{AudioHandling, JoinOptions, Joined};
pub use packets::{Packet, PacketScan};
pub use probe::{
    AudioStream, ColorInfo, Hdr, MediaInfo, Rational, Rotation, VideoStream, bit_depth_of_pix_fmt,
};
pub use validate::{DecodeCheck, ValidateOptions, Validated};
