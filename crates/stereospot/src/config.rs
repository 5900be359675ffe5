//! Process configuration: `STEREOSPOT_ENV_FILE` (a dotenv file) is loaded first, then the
//! environment is read with the spec's variable names (see `stereospot_core::config`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use stereospot_core::config::{PlatformKind, Settings};

/// Loads `STEREOSPOT_ENV_FILE` if set (variables already in the environment win), then reads
/// the settings.
pub fn load() -> Result<Settings> {
    if let Some(path) = std::env::var_os("STEREOSPOT_ENV_FILE").filter(|p| !p.is_empty()) {
        dotenvy::from_path(&path).with_context(|| {
            format!(
                "cannot load STEREOSPOT_ENV_FILE={}",
                PathBuf::from(&path).display()
            )
        })?;
    }
    Ok(Settings::from_lookup(|k| std::env::var(k).ok())?)
}

/// The data directory of the local platform: `--data-dir`, else `STEREOSPOT_DATA_DIR`, else
/// `stereospot` under the user's data directory (e.g. `~/.local/share/stereospot`).
pub fn data_dir(settings: &Settings, flag: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = flag.or_else(|| settings.data_dir.clone()) {
        return Ok(dir);
    }
    match dirs::data_dir() {
        Some(base) => Ok(base.join("stereospot")),
        None => {
            bail!("no user data directory is known here: set STEREOSPOT_DATA_DIR or --data-dir")
        }
    }
}

/// Opens the local platform in `data_dir`, with the queue overrides from the environment
/// (`STEREOSPOT_QUEUE_VISIBILITY_SECONDS`, `STEREOSPOT_QUEUE_MAX_RECEIVES`).
pub async fn open_local(
    settings: &Settings,
    data_dir: &std::path::Path,
    base_url: &str,
) -> Result<stereospot_local::LocalPlatform> {
    let overrides = stereospot_local::QueueOverrides::from_lookup(|k| std::env::var(k).ok())?;
    stereospot_local::LocalPlatform::open_with(data_dir, settings, base_url, &overrides)
        .await
        .with_context(|| format!("cannot open the local platform in {}", data_dir.display()))
}

/// Refuses platforms this build cannot run yet.
pub fn require_local(settings: &Settings) -> Result<()> {
    match settings.platform {
        PlatformKind::Local => Ok(()),
        PlatformKind::Aws => bail!(
            "PLATFORM=aws is not available yet in this build: the AWS adapters (S3, SQS, DynamoDB) are a planned crate; use PLATFORM=local"
        ),
    }
}
