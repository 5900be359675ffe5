//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`). Metrics: the
//! process-wide Prometheus recorder behind the `metrics` facade, rendered by `/metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once; later calls are ignored).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The handle of the process's Prometheus recorder, installed as the `metrics` global recorder
/// on first use (once per process: every server in a test process shares it). Every
/// `metrics::counter!`/`histogram!`/`gauge!` in the workers lands in it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics shows only scrape-time gauges");
            } else {
                // HELP lines and units for the workers' metrics.
                stereospot_workers::metrics::describe();
            }
            handle
        })
        .clone()
}
