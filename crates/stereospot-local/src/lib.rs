//! StereoSpot's embedded platform.

pub mod db;
pub mod jobs;
pub mod lock;
pub mod queue;

pub mod http;
pub mod notify;
pub mod presign;
pub mod storage;
