//! Settings read from environment variables with the spec's names. Pure: the caller supplies a
//! lookup function (normally `std::env::var` after loading `STEREOSPOT_ENV_FILE`).

use std::path::PathBuf;

/// Which platform implementation to use (`PLATFORM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformKind {
    /// SQLite and the filesystem in one data directory (default).
    Local,
    /// DynamoDB, SQS and S3.
    Aws,
}

/// A setting with an unusable value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}={value:?} is not valid: {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

pub const DEFAULT_INPUT_BUCKET: &str = "stereospot-input";
pub const DEFAULT_OUTPUT_BUCKET: &str = "stereospot-output";

/// Settings shared by every process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub platform: PlatformKind,
    /// `STEREOSPOT_DATA_DIR`: the local platform's data directory (the binary picks a default
    /// under the user's data directory when unset).
    pub data_dir: Option<PathBuf>,
    /// `INPUT_BUCKET_NAME`
    pub input_bucket: String,
    /// `OUTPUT_BUCKET_NAME`
    pub output_bucket: String,
    /// `NAME_PREFIX`: enables operator links on AWS.
    pub name_prefix: Option<String>,
    /// `AWS_REGION`
    pub aws_region: Option<String>,
    /// `AWS_ENDPOINT_URL`: moto, MinIO, LocalStack; implies path-style S3 addressing.
    pub aws_endpoint_url: Option<String>,
}

impl Settings {
    /// Reads settings through `lookup` (empty values count as unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let platform = match get("PLATFORM").as_deref().map(str::trim) {
            None | Some("local") => PlatformKind::Local,
            Some("aws") => PlatformKind::Aws,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "PLATFORM",
                    value: other.into(),
                    expected: "local or aws",
                });
            }
        };
        Ok(Self {
            platform,
            data_dir: get("STEREOSPOT_DATA_DIR").map(PathBuf::from),
            input_bucket: get("INPUT_BUCKET_NAME").unwrap_or_else(|| DEFAULT_INPUT_BUCKET.into()),
            output_bucket: get("OUTPUT_BUCKET_NAME")
                .unwrap_or_else(|| DEFAULT_OUTPUT_BUCKET.into()),
            name_prefix: get("NAME_PREFIX"),
            aws_region: get("AWS_REGION"),
            aws_endpoint_url: get("AWS_ENDPOINT_URL"),
        })
    }
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
    fn defaults_to_local() {
        let s = Settings::from_lookup(lookup(&[])).unwrap();
        assert_eq!(s.platform, PlatformKind::Local);
        assert_eq!(s.input_bucket, DEFAULT_INPUT_BUCKET);
        assert_eq!(s.data_dir, None);
    }

    #[test]
    fn reads_spec_names() {
        let s = Settings::from_lookup(lookup(&[
            ("PLATFORM", "aws"),
            ("INPUT_BUCKET_NAME", "in"),
            ("OUTPUT_BUCKET_NAME", "out"),
            ("NAME_PREFIX", "stereo-spot"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("STEREOSPOT_DATA_DIR", ""),
        ]))
        .unwrap();
        assert_eq!(s.platform, PlatformKind::Aws);
        assert_eq!(s.input_bucket, "in");
        assert_eq!(s.output_bucket, "out");
        assert_eq!(s.name_prefix.as_deref(), Some("stereo-spot"));
        assert_eq!(s.data_dir, None);
    }

    #[test]
    fn rejects_unknown_platform() {
        let e = Settings::from_lookup(lookup(&[("PLATFORM", "gcp")])).unwrap_err();
        assert!(e.to_string().contains("local or aws"));
    }
}
