//! The crate's one integration-test binary. The ground-truth check reads the stereo pairs in
//! `shared/data/stereo` next to the checkout (or `STEREOSPOT_STEREO_DATA`). Run with
//! `-- --nocapture` to see the figures (PSNR table, segment-joint depth jump).

mod convert;
mod ground_truth;
mod stabilize;
mod support;
mod views;
