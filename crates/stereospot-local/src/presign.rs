//! presign
