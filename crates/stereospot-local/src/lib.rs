//! StereoSpot's embedded platform.

pub mod db;
pub mod jobs;
pub mod lock;
pub mod queue;

pub mod http;
pub mod notify;
pub mod presign;
pub mod storage;

pub use db::{DB_FILE_NAME, Db, DbOptions, Synchronous};
pub use jobs::{LocalCompletionStore, LocalJobStore};
pub use lock::LocalReassemblyLock;
pub use queue::{LocalQueue, QueueConfig};

pub mod platform;
pub use platform::{LocalPlatform, QueueOverrides};
