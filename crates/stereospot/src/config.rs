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

/// Refuses platforms this build cannot run yet.
pub fn require_local(settings: &Settings) -> Result<()> {
    match settings.platform {
        PlatformKind::Local => Ok(()),
        PlatformKind::Aws => bail!(
            "PLATFORM=aws is not available yet in this build: the AWS adapters (S3, SQS, DynamoDB) are a planned crate; use PLATFORM=local"
        ),
    }
}
