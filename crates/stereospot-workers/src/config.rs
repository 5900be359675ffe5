//! Worker settings, read from environment variables with the spec's names where the spec has
//! one. Pure: the caller supplies the lookup (normally `std::env::var`).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use stereospot_media::ingest::IngestOptions;

/// An unusable setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?} is not valid: {expected}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub expected: &'static str,
}

/// Which inference backend converts segments (`INFERENCE_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Copies the segment (pipeline tests only). The spec's default.
    Stub,
    /// POST `{INFERENCE_HTTP_URL}/invocations`.
    Http,
    /// The in-process stereo engine (provided by the binary).
    Local,
    /// SageMaker asynchronous inference (comes with the AWS platform).
    Sagemaker,
}

impl FromStr for BackendKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "stub" => Ok(Self::Stub),
            "http" => Ok(Self::Http),
            "local" => Ok(Self::Local),
            "sagemaker" => Ok(Self::Sagemaker),
            _ => Err(()),
        }
    }
}

/// How the workers behave. Defaults suit production; tests shorten the waits.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerConfig {
    /// Long-poll wait of a receive (SQS allows up to 20 s).
    pub receive_wait: Duration,
    /// Deliveries of a message after which a handler error fails its job and the message is
    /// deleted instead of retried (match the queues' maximum receive count, 3).
    /// `WORKER_MAX_ATTEMPTS`.
    pub max_attempts: u32,
    /// First retry delay after a handler error; doubled on each further attempt.
    pub retry_delay: Duration,
    /// How often a message being worked on has its visibility extended.
    pub heartbeat_interval: Duration,
    /// The visibility a heartbeat sets (must exceed `heartbeat_interval`).
    pub visibility_extension: Duration,
    /// Where per-message work directories are created (`STEREOSPOT_WORK_DIR`, default the system
    /// temp dir).
    pub work_root: PathBuf,
    /// Target segment duration for chunking (`SEGMENT_DURATION_SECONDS`, default 20).
    pub segment_duration: Duration,
    /// Segments converted at once by one video worker (`INFERENCE_MAX_IN_FLIGHT`, default 1).
    pub inference_max_in_flight: usize,
    /// Lease of a reassembly claim; renewed by the heartbeat while the join runs.
    pub reassembly_lease: Duration,
    /// On shutdown, how long in-flight work may continue before it is abandoned and its message
    /// made visible again.
    pub shutdown_grace: Duration,
    /// How often the media worker sweeps for jobs whose reassembly message was lost
    /// (`WORKER_REASSEMBLY_SWEEP_INTERVAL_SECONDS`, default 300).
    pub reassembly_sweep_interval: Duration,
    /// How long after its last segment completed a job still waiting for reassembly counts as
    /// lost (`WORKER_REASSEMBLY_SWEEP_AFTER_SECONDS`, default 600).
    pub reassembly_sweep_after: Duration,
    /// `INFERENCE_BACKEND` (default `stub`).
    pub backend: BackendKind,
    /// `INFERENCE_HTTP_URL`, required by the `http` backend.
    pub inference_http_url: Option<String>,
    /// Time limit of one HTTP inference call (`INFERENCE_HTTP_TIMEOUT_SECONDS`, default 1200).
    pub inference_http_timeout: Duration,
    /// URL ingest: `YT_DLP_PATH`, `MAX_VIDEO_HEIGHT` (default 1080), `INGEST_MAX_FILE_SIZE_MB`
    /// (default 4000), `INGEST_MAX_DURATION_SECONDS` (default 10800), `INGEST_TIMEOUT_SECONDS`
    /// (default 1800), `INGEST_ALLOW_LOOPBACK` (tests only, default off). The exact-address
    /// allow-list is for tests and has no variable.
    pub ingest: IngestOptions,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            receive_wait: Duration::from_secs(20),
            max_attempts: 3,
            retry_delay: Duration::from_secs(15),
            heartbeat_interval: Duration::from_secs(60),
            visibility_extension: Duration::from_secs(5 * 60),
            work_root: std::env::temp_dir(),
            segment_duration: Duration::from_secs(20),
            inference_max_in_flight: 1,
            reassembly_lease: Duration::from_secs(10 * 60),
            shutdown_grace: Duration::from_secs(30),
            reassembly_sweep_interval: Duration::from_secs(5 * 60),
            reassembly_sweep_after: Duration::from_secs(10 * 60),
            backend: BackendKind::Stub,
            inference_http_url: None,
            inference_http_timeout: Duration::from_secs(1200),
            ingest: IngestOptions::default(),
        }
    }
}

impl WorkerConfig {
    /// Reads the settings through `lookup` (empty values count as unset); unset ones keep their
    /// defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut c = Self::default();
        if let Some(v) = get("WORKER_MAX_ATTEMPTS") {
            c.max_attempts = parse_num("WORKER_MAX_ATTEMPTS", &v, 1, 100)?;
        }
        if let Some(v) = get("STEREOSPOT_WORK_DIR") {
            c.work_root = PathBuf::from(v);
        }
        if let Some(v) = get("SEGMENT_DURATION_SECONDS") {
            let secs: u32 = parse_num("SEGMENT_DURATION_SECONDS", &v, 1, 3600)?;
            c.segment_duration = Duration::from_secs(u64::from(secs));
        }
        if let Some(v) = get("INFERENCE_MAX_IN_FLIGHT") {
            let n: u32 = parse_num("INFERENCE_MAX_IN_FLIGHT", &v, 1, 256)?;
            c.inference_max_in_flight = n as usize;
        }
        if let Some(v) = get("INFERENCE_BACKEND") {
            c.backend = v.parse().map_err(|()| ConfigError {
                name: "INFERENCE_BACKEND",
                value: v.clone(),
                expected: "stub, http, local or sagemaker",
            })?;
        }
        c.inference_http_url = get("INFERENCE_HTTP_URL");
        if c.backend == BackendKind::Http && c.inference_http_url.is_none() {
            return Err(ConfigError {
                name: "INFERENCE_HTTP_URL",
                value: String::new(),
                expected: "a base URL such as http://10.0.1.5:8080 (required by INFERENCE_BACKEND=http)",
            });
        }
        for (name, field) in [
            ("WORKER_RETRY_DELAY_SECONDS", &mut c.retry_delay),
            ("WORKER_HEARTBEAT_SECONDS", &mut c.heartbeat_interval),
            (
                "WORKER_VISIBILITY_EXTENSION_SECONDS",
                &mut c.visibility_extension,
            ),
            ("WORKER_REASSEMBLY_LEASE_SECONDS", &mut c.reassembly_lease),
            ("WORKER_SHUTDOWN_GRACE_SECONDS", &mut c.shutdown_grace),
            (
                "WORKER_REASSEMBLY_SWEEP_INTERVAL_SECONDS",
                &mut c.reassembly_sweep_interval,
            ),
            (
                "WORKER_REASSEMBLY_SWEEP_AFTER_SECONDS",
                &mut c.reassembly_sweep_after,
            ),
        ] {
            if let Some(v) = get(name) {
                *field = parse_secs(name, &v)?;
            }
        }
        if c.visibility_extension <= c.heartbeat_interval {
            return Err(ConfigError {
                name: "WORKER_VISIBILITY_EXTENSION_SECONDS",
                value: format!("{}", c.visibility_extension.as_secs_f64()),
                expected: "more than WORKER_HEARTBEAT_SECONDS (a heartbeat must renew a message before it shows again)",
            });
        }
        if let Some(v) = get("INFERENCE_HTTP_TIMEOUT_SECONDS") {
            let secs: u32 = parse_num("INFERENCE_HTTP_TIMEOUT_SECONDS", &v, 1, 86_400)?;
            c.inference_http_timeout = Duration::from_secs(u64::from(secs));
        }
        c.ingest.yt_dlp = get("YT_DLP_PATH").map(PathBuf::from);
        if let Some(v) = get("MAX_VIDEO_HEIGHT") {
            c.ingest.max_height = parse_num("MAX_VIDEO_HEIGHT", &v, 144, 8640)?;
        }
        if let Some(v) = get("INGEST_MAX_FILE_SIZE_MB") {
            let mb: u32 = parse_num("INGEST_MAX_FILE_SIZE_MB", &v, 1, 1_000_000)?;
            c.ingest.max_file_size = u64::from(mb) * 1_000_000;
        }
        if let Some(v) = get("INGEST_MAX_DURATION_SECONDS") {
            let secs: u32 = parse_num("INGEST_MAX_DURATION_SECONDS", &v, 1, 7 * 86_400)?;
            c.ingest.max_duration = Duration::from_secs(u64::from(secs));
        }
        if let Some(v) = get("INGEST_TIMEOUT_SECONDS") {
            let secs: u32 = parse_num("INGEST_TIMEOUT_SECONDS", &v, 10, 7 * 86_400)?;
            c.ingest.timeout = Duration::from_secs(u64::from(secs));
        }
        if let Some(v) = get("INGEST_ALLOW_LOOPBACK") {
            c.ingest.policy.allow_loopback = parse_bool("INGEST_ALLOW_LOOPBACK", &v)?;
        }
        Ok(c)
    }

    /// The delay before retrying a message after its `receive_count`-th delivery failed.
    pub fn retry_delay_for(&self, receive_count: u32) -> Duration {
        let doublings = receive_count.saturating_sub(1).min(10);
        self.retry_delay
            .saturating_mul(1 << doublings)
            .min(Duration::from_secs(15 * 60))
    }
}

fn parse_bool(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError {
            name,
            value: value.to_string(),
            expected: "true or false",
        }),
    }
}

/// Seconds, fractions allowed (`0.5`), from 0 to a day.
fn parse_secs(name: &'static str, value: &str) -> Result<Duration, ConfigError> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| (0.0..=86_400.0).contains(s))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| ConfigError {
            name,
            value: value.to_string(),
            expected: "seconds from 0 to 86400 (fractions allowed)",
        })
}

fn parse_num(name: &'static str, value: &str, min: u32, max: u32) -> Result<u32, ConfigError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| ConfigError {
            name,
            value: value.to_string(),
            expected: "a whole number in range",
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = WorkerConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(c.backend, BackendKind::Stub);
        assert_eq!(c.inference_max_in_flight, 1);
        assert_eq!(c.max_attempts, 3);
    }

    #[test]
    fn reads_spec_names_and_rejects_nonsense() {
        let c = WorkerConfig::from_lookup(lookup(&[
            ("INFERENCE_BACKEND", "http"),
            ("INFERENCE_HTTP_URL", "http://127.0.0.1:9"),
            ("INFERENCE_MAX_IN_FLIGHT", "4"),
            ("SEGMENT_DURATION_SECONDS", "5"),
        ]))
        .unwrap();
        assert_eq!(c.backend, BackendKind::Http);
        assert_eq!(c.inference_max_in_flight, 4);
        assert_eq!(c.segment_duration, Duration::from_secs(5));
        let e = WorkerConfig::from_lookup(lookup(&[("INFERENCE_BACKEND", "http")])).unwrap_err();
        assert_eq!(e.name, "INFERENCE_HTTP_URL");
        assert!(WorkerConfig::from_lookup(lookup(&[("INFERENCE_BACKEND", "gpu")])).is_err());
        assert!(WorkerConfig::from_lookup(lookup(&[("INFERENCE_MAX_IN_FLIGHT", "0")])).is_err());
    }

    #[test]
    fn ingest_settings_have_safe_defaults_and_read_their_variables() {
        let c = WorkerConfig::from_lookup(lookup(&[])).unwrap();
        assert_eq!(c.ingest.max_height, 1080);
        assert!(!c.ingest.policy.allow_loopback);
        assert!(c.ingest.policy.allow_exact.is_empty());
        assert_eq!(c.ingest.max_duration, Duration::from_secs(3 * 3600));
        let c = WorkerConfig::from_lookup(lookup(&[
            ("MAX_VIDEO_HEIGHT", "720"),
            ("INGEST_MAX_FILE_SIZE_MB", "50"),
            ("INGEST_MAX_DURATION_SECONDS", "600"),
            ("INGEST_TIMEOUT_SECONDS", "120"),
            ("INGEST_ALLOW_LOOPBACK", "true"),
            ("YT_DLP_PATH", "/opt/yt-dlp"),
        ]))
        .unwrap();
        assert_eq!(c.ingest.max_height, 720);
        assert_eq!(c.ingest.max_file_size, 50_000_000);
        assert_eq!(c.ingest.max_duration, Duration::from_secs(600));
        assert_eq!(c.ingest.timeout, Duration::from_secs(120));
        assert!(c.ingest.policy.allow_loopback);
        assert_eq!(c.ingest.yt_dlp, Some(PathBuf::from("/opt/yt-dlp")));
        for (k, v) in [
            ("MAX_VIDEO_HEIGHT", "0"),
            ("MAX_VIDEO_HEIGHT", "tall"),
            ("INGEST_ALLOW_LOOPBACK", "maybe"),
            ("INGEST_MAX_FILE_SIZE_MB", "-1"),
        ] {
            let e = WorkerConfig::from_lookup(lookup(&[(k, v)])).unwrap_err();
            assert_eq!(e.name, k);
        }
    }

    #[test]
    fn timings_are_settable_for_drills() {
        let c = WorkerConfig::from_lookup(lookup(&[
            ("WORKER_HEARTBEAT_SECONDS", "0.2"),
            ("WORKER_VISIBILITY_EXTENSION_SECONDS", "1"),
            ("WORKER_REASSEMBLY_LEASE_SECONDS", "2"),
        ]))
        .unwrap();
        assert_eq!(c.heartbeat_interval, Duration::from_millis(200));
        assert_eq!(c.visibility_extension, Duration::from_secs(1));
        assert_eq!(c.reassembly_lease, Duration::from_secs(2));
        let e =
            WorkerConfig::from_lookup(lookup(&[("WORKER_HEARTBEAT_SECONDS", "600")])).unwrap_err();
        assert_eq!(e.name, "WORKER_VISIBILITY_EXTENSION_SECONDS");
        assert!(
            WorkerConfig::from_lookup(lookup(&[("WORKER_RETRY_DELAY_SECONDS", "-1")])).is_err()
        );
    }

    #[test]
    fn retry_delay_doubles_and_is_capped() {
        let c = WorkerConfig::default();
        assert_eq!(c.retry_delay_for(1), c.retry_delay);
        assert_eq!(c.retry_delay_for(2), c.retry_delay * 2);
        assert_eq!(c.retry_delay_for(99), Duration::from_secs(15 * 60));
    }
}
