//! The pipeline's metrics, recorded through the [`metrics`] facade. This crate never installs a
//! recorder: the process that serves `/metrics` does (and may call [`describe`] first so the
//! exporter has help texts and units). Without a recorder every call is a no-op.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `stereospot_segment_conversion_seconds` | histogram | `backend` | one segment's conversion (download, convert, upload) |
//! | `stereospot_segment_seconds_per_mb` | histogram | `backend` | that time per MB of the input segment |
//! | `stereospot_chunking_seconds` | histogram | | validating and cutting a source, uploads included |
//! | `stereospot_reassembly_seconds` | histogram | | joining the segments and the audio, upload included |
//! | `stereospot_job_failures_total` | counter | `code` | jobs failed, by stable error code |
//! | `stereospot_messages_total` | counter | `worker`, `outcome` | messages handled: `done`, `skipped`, `job_failed`, `retry` |
//! | `stereospot_reassembly_resent_total` | counter | | reassembly messages sent again by the lost-trigger sweep |

use std::time::Duration;

use crate::runner::Outcome;

pub const SEGMENT_CONVERSION_SECONDS: &str = "stereospot_segment_conversion_seconds";
pub const SEGMENT_SECONDS_PER_MB: &str = "stereospot_segment_seconds_per_mb";
pub const CHUNKING_SECONDS: &str = "stereospot_chunking_seconds";
pub const REASSEMBLY_SECONDS: &str = "stereospot_reassembly_seconds";
pub const JOB_FAILURES_TOTAL: &str = "stereospot_job_failures_total";
pub const MESSAGES_TOTAL: &str = "stereospot_messages_total";
pub const REASSEMBLY_RESENT_TOTAL: &str = "stereospot_reassembly_resent_total";

/// Registers help texts and units with the installed recorder (call once after installing it).
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_histogram!(
        SEGMENT_CONVERSION_SECONDS,
        Unit::Seconds,
        "Wall time of one segment's conversion, download and upload included"
    );
    describe_histogram!(
        SEGMENT_SECONDS_PER_MB,
        "Segment conversion seconds per megabyte of input segment"
    );
    describe_histogram!(
        CHUNKING_SECONDS,
        Unit::Seconds,
        "Wall time of validating and cutting one source, segment uploads included"
    );
    describe_histogram!(
        REASSEMBLY_SECONDS,
        Unit::Seconds,
        "Wall time of joining one job's segments and audio, upload included"
    );
    describe_counter!(JOB_FAILURES_TOTAL, "Jobs failed, by error code");
    describe_counter!(
        MESSAGES_TOTAL,
        "Queue messages handled, by worker and outcome"
    );
    describe_counter!(
        REASSEMBLY_RESENT_TOTAL,
        "Reassembly messages sent again by the lost-trigger sweep"
    );
}

pub(crate) fn segment_converted(backend: &'static str, elapsed: Duration, input_bytes: u64) {
    let secs = elapsed.as_secs_f64();
    metrics::histogram!(SEGMENT_CONVERSION_SECONDS, "backend" => backend).record(secs);
    if input_bytes > 0 {
        let mb = input_bytes as f64 / 1_000_000.0;
        metrics::histogram!(SEGMENT_SECONDS_PER_MB, "backend" => backend).record(secs / mb);
    }
}

pub(crate) fn chunked(elapsed: Duration) {
    metrics::histogram!(CHUNKING_SECONDS).record(elapsed.as_secs_f64());
}

pub(crate) fn reassembled(elapsed: Duration) {
    metrics::histogram!(REASSEMBLY_SECONDS).record(elapsed.as_secs_f64());
}

pub(crate) fn job_failed(code: &str) {
    metrics::counter!(JOB_FAILURES_TOTAL, "code" => code.to_string()).increment(1);
}

pub(crate) fn message_handled(worker: &'static str, outcome: &Outcome) {
    let outcome = match outcome {
        Outcome::Idle => return,
        Outcome::Done { .. } => "done",
        Outcome::Skipped { .. } => "skipped",
        Outcome::JobFailed { .. } => "job_failed",
        Outcome::Retry { .. } => "retry",
    };
    metrics::counter!(MESSAGES_TOTAL, "worker" => worker, "outcome" => outcome).increment(1);
}

pub(crate) fn reassembly_resent() {
    metrics::counter!(REASSEMBLY_RESENT_TOTAL).increment(1);
}
