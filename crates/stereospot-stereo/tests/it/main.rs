//! The crate's one integration-test binary.
//!
//! - The ground-truth check reads the stereo pairs in `shared/data/stereo` next to the checkout
//!   (or `STEREOSPOT_STEREO_DATA`). Run with `-- --nocapture` to see the figures (PSNR table,
//!   segment-joint depth jump).
//! - The depth tests compare against outputs of the official Depth Anything V2 code kept in
//!   `tests/fixtures/` (made by `scripts/stereo/make_fixtures.py`); they need the ONNX Runtime
//!   library that `scripts/deps.sh test` installs.
//! - The conversion tests run `convert_file` on every video in `shared/data/video`.

mod convert;
mod depth;
mod ground_truth;
mod helpers;
mod stabilize;
mod support;
mod views;
