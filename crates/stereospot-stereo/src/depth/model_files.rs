//! Which depth model file to load, and getting it.
//!
//! The models are the ONNX exports of Depth Anything V2 on the Hugging Face hub:
//! `onnx-community/depth-anything-v2-small` (Apache-2.0, the default), `-base` and `-large`
//! (CC-BY-NC-4.0: non-commercial use only, so only with an explicit opt-in, and the licence is
//! shown). [`resolve_model`] looks, in this order, at:
//!
//! 1. an explicit path (`--model PATH`), which must exist;
//! 2. `WEIGHTS_DIR`: `<WEIGHTS_DIR>/<repo id>/<file in the repo>`, e.g.
//!    `$WEIGHTS_DIR/onnx-community/depth-anything-v2-small/onnx/model.onnx` (the layout
//!    `huggingface-cli download <repo> <file> --local-dir $WEIGHTS_DIR/<repo>` produces);
//! 3. the Hugging Face cache (`HF_HUB_CACHE`, else `HF_HOME/hub`, else
//!    `~/.cache/huggingface/hub`), at the pinned revision;
//! 4. a download into that cache with `hf-hub` (progress bar on a terminal, `HF_TOKEN` sent when
//!    set, `HF_ENDPOINT` honoured), unless offline (`HF_HUB_OFFLINE=1`).
//!
//! When nothing is found offline, or the download fails, the error says where to put the file
//! and how to get it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::{Result, StereoError};

/// The opt-in value that accepts the Base and Large models' licence (`--accept-model-license`).
pub const NON_COMMERCIAL_LICENSE: &str = "cc-by-nc-4.0";

/// Revision of `onnx-community/depth-anything-v2-small` that downloads are pinned to.
///
/// This commit could not be checked from here (no network): it is the revision public projects
/// pin for this repository, where `onnx/model.onnx` is 99,060,839 bytes with SHA-256
/// [`SMALL_FP32_SHA256`]. If the hub ever stops serving it, download fails with a clear error;
/// update this constant after checking the new commit.
pub const SMALL_REVISION: &str = "4472b7362082ad9968fee890ca0f1e5aca36b93d";

/// SHA-256 of `onnx/model.onnx` at [`SMALL_REVISION`] (as published alongside that revision;
/// checked after every download).
pub const SMALL_FP32_SHA256: &str =
    "afb6a5c28f3b6bf1618c6e43f02073ef9dfdc70e937502d51603e57b0a1df10c";

/// SHA-256 of `onnx/model_fp16.onnx` at [`SMALL_REVISION`] (same source).
pub const SMALL_FP16_SHA256: &str =
    "2df6223f206b5164e21f664ace61dabeb9bb6a49b8b5a3e00510b4807d0f5b04";

/// Revision of the Base and Large repositories: a branch name, because no commit of theirs could
/// be looked up offline. Pin a commit here once one has been checked.
pub const BASE_LARGE_REVISION: &str = "main";

/// A Depth Anything V2 model size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ModelChoice {
    /// ViT-S, 24.8 M parameters, Apache-2.0 (the default).
    #[default]
    Small,
    /// ViT-B, 97.5 M parameters, CC-BY-NC-4.0.
    Base,
    /// ViT-L, 335.3 M parameters, CC-BY-NC-4.0.
    Large,
}

impl ModelChoice {
    /// All choices.
    pub const ALL: [ModelChoice; 3] = [ModelChoice::Small, ModelChoice::Base, ModelChoice::Large];

    /// The hub repository.
    pub fn repo_id(self) -> &'static str {
        match self {
            ModelChoice::Small => "onnx-community/depth-anything-v2-small",
            ModelChoice::Base => "onnx-community/depth-anything-v2-base",
            ModelChoice::Large => "onnx-community/depth-anything-v2-large",
        }
    }

    /// The revision downloads are pinned to.
    pub fn revision(self) -> &'static str {
        match self {
            ModelChoice::Small => SMALL_REVISION,
            ModelChoice::Base | ModelChoice::Large => BASE_LARGE_REVISION,
        }
    }

    /// The SPDX identifier of the weights' licence.
    pub fn license(self) -> &'static str {
        match self {
            ModelChoice::Small => "Apache-2.0",
            ModelChoice::Base | ModelChoice::Large => "CC-BY-NC-4.0",
        }
    }

    /// Whether using it needs an explicit licence opt-in.
    pub fn needs_license_opt_in(self) -> bool {
        self != ModelChoice::Small
    }

    /// What a user must be told before these weights are used.
    pub fn license_notice(self) -> String {
        match self {
            ModelChoice::Small => format!(
                "Depth Anything V2 Small ({}) is licensed Apache-2.0",
                self.repo_id()
            ),
            _ => format!(
                "Depth Anything V2 {self} ({}) is licensed CC-BY-NC-4.0 \
                 (https://creativecommons.org/licenses/by-nc/4.0/): non-commercial use only, with \
                 attribution to the Depth Anything V2 authors",
                self.repo_id()
            ),
        }
    }

    /// A short name for logs (`onnx:depth-anything-v2-small`).
    pub fn model_name(self) -> &'static str {
        match self {
            ModelChoice::Small => "depth-anything-v2-small",
            ModelChoice::Base => "depth-anything-v2-base",
            ModelChoice::Large => "depth-anything-v2-large",
        }
    }
}

impl fmt::Display for ModelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelChoice::Small => "small",
            ModelChoice::Base => "base",
            ModelChoice::Large => "large",
        })
    }
}

impl FromStr for ModelChoice {
    type Err = StereoError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "small" | "s" | "vits" => Ok(ModelChoice::Small),
            "base" | "b" | "vitb" => Ok(ModelChoice::Base),
            "large" | "l" | "vitl" => Ok(ModelChoice::Large),
            _ => Err(StereoError::InvalidArgument(format!(
                "unknown depth model {s:?} (expected small, base or large)"
            ))),
        }
    }
}

/// Which export of a model: the repositories hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ModelPrecision {
    /// `onnx/model.onnx`: float32 (the reference).
    #[default]
    Fp32,
    /// `onnx/model_fp16.onnx`: float16 weights and compute (for GPUs: 1.15x SLOWER than fp32 on
    /// the 2-core AVX2 benchmark machine).
    Fp16,
    /// `onnx/model_int8_matmul.onnx`, made locally from `onnx/model.onnx` by
    /// `scripts/stereo/quantize_int8.py` (dynamic int8 quantisation of the encoder's MatMuls only)
    /// and never downloaded: the hub's own `model_int8.onnx` was not benchmarked, and quantising
    /// the convolutions too made the model 1.25-1.34x slower than fp32 here. Measured on the
    /// 2-core machine: 0.78x the fp32 time at 518x518, 1% relative L2 on normalised depth (random
    /// weights: indicative). It alone does not reach 0.5 s at 518x518 (see benches/depth.rs).
    Int8,
}

impl ModelPrecision {
    /// The file in the hub repository.
    pub fn repo_file(self) -> &'static str {
        match self {
            ModelPrecision::Fp32 => "onnx/model.onnx",
            ModelPrecision::Fp16 => "onnx/model_fp16.onnx",
            ModelPrecision::Int8 => "onnx/model_int8_matmul.onnx",
        }
    }

    /// Whether the hub serves this file (otherwise it is made locally, see [`ModelPrecision::Int8`]).
    pub fn downloadable(self) -> bool {
        self != ModelPrecision::Int8
    }
}

impl fmt::Display for ModelPrecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelPrecision::Fp32 => "fp32",
            ModelPrecision::Fp16 => "fp16",
            ModelPrecision::Int8 => "int8",
        })
    }
}

impl FromStr for ModelPrecision {
    type Err = StereoError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "fp32" | "f32" | "float32" => Ok(ModelPrecision::Fp32),
            "fp16" | "f16" | "float16" => Ok(ModelPrecision::Fp16),
            "int8" | "i8" | "q8" => Ok(ModelPrecision::Int8),
            _ => Err(StereoError::InvalidArgument(format!(
                "unknown model precision {s:?} (expected fp32, fp16 or int8)"
            ))),
        }
    }
}

/// How [`resolve_model`] looks for and fetches files.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ResolveOptions {
    /// Which export to use.
    pub precision: ModelPrecision,
    /// The caller's explicit acceptance of CC-BY-NC-4.0 (needed for Base and Large), e.g. from
    /// `--accept-model-license cc-by-nc-4.0`.
    pub accept_non_commercial_license: bool,
    /// A directory of local model files (`WEIGHTS_DIR`).
    pub weights_dir: Option<PathBuf>,
    /// The Hugging Face hub cache (`None`: `HF_HOME/hub` or `~/.cache/huggingface/hub`).
    pub hf_cache: Option<PathBuf>,
    /// Never download (`HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// Token sent to the hub (`HF_TOKEN`; else the cache's `token` file, as `huggingface-cli
    /// login` writes it).
    pub token: Option<String>,
    /// Hub address (`HF_ENDPOINT`; `None`: <https://huggingface.co>).
    pub endpoint: Option<String>,
    /// Show a download progress bar (on a terminal).
    pub progress: bool,
}

impl fmt::Debug for ResolveOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolveOptions")
            .field("precision", &self.precision)
            .field(
                "accept_non_commercial_license",
                &self.accept_non_commercial_license,
            )
            .field("weights_dir", &self.weights_dir)
            .field("hf_cache", &self.hf_cache)
            .field("offline", &self.offline)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("endpoint", &self.endpoint)
            .field("progress", &self.progress)
            .finish()
    }
}

impl ResolveOptions {
    /// Options from the environment: `WEIGHTS_DIR`, `HF_HUB_CACHE`/`HF_HOME`, `HF_HUB_OFFLINE`,
    /// `HF_TOKEN`, `HF_ENDPOINT`; fp32, no licence opt-in, progress bar on.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`ResolveOptions::from_env`] with another source of variables (for tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let hf_cache = non_empty("HF_HUB_CACHE")
            .map(PathBuf::from)
            .or_else(|| non_empty("HF_HOME").map(|h| PathBuf::from(h).join("hub")));
        let offline = non_empty("HF_HUB_OFFLINE").is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        });
        ResolveOptions {
            precision: ModelPrecision::Fp32,
            accept_non_commercial_license: false,
            weights_dir: non_empty("WEIGHTS_DIR").map(PathBuf::from),
            hf_cache,
            offline,
            token: non_empty("HF_TOKEN"),
            endpoint: non_empty("HF_ENDPOINT"),
            progress: true,
        }
    }

    fn cache(&self) -> hf_hub::Cache {
        match &self.hf_cache {
            Some(dir) => hf_hub::Cache::new(dir.clone()),
            None => hf_hub::Cache::from_env(),
        }
    }
}

/// Where a model file goes under `WEIGHTS_DIR`.
pub fn weights_dir_path(
    weights_dir: &Path,
    choice: ModelChoice,
    precision: ModelPrecision,
) -> PathBuf {
    weights_dir
        .join(choice.repo_id())
        .join(precision.repo_file())
}

/// The hub URL of a model file at its pinned revision.
pub fn download_url(choice: ModelChoice, precision: ModelPrecision) -> String {
    format!(
        "https://huggingface.co/{}/resolve/{}/{}",
        choice.repo_id(),
        choice.revision(),
        precision.repo_file()
    )
}

/// How to get a missing file, for error messages.
fn where_to_put_it(choice: ModelChoice, opts: &ResolveOptions) -> String {
    let file = opts.precision.repo_file();
    let (place, dir) = match &opts.weights_dir {
        Some(dir) => (
            weights_dir_path(dir, choice, opts.precision)
                .display()
                .to_string(),
            dir.join(choice.repo_id()).display().to_string(),
        ),
        None => (
            format!(
                "$WEIGHTS_DIR/{}/{file} (set WEIGHTS_DIR to a directory)",
                choice.repo_id()
            ),
            format!("$WEIGHTS_DIR/{}", choice.repo_id()),
        ),
    };
    format!(
        "put the file at {place}, e.g. fetched on a machine with internet access with \
         `huggingface-cli download {repo} {file} --revision {rev} --local-dir {dir}` or from {url}; \
         or pass its path with --model PATH",
        repo = choice.repo_id(),
        rev = choice.revision(),
        url = download_url(choice, opts.precision),
    )
}

fn check_license(choice: ModelChoice, opts: &ResolveOptions) -> Result<()> {
    if !choice.needs_license_opt_in() {
        return Ok(());
    }
    if !opts.accept_non_commercial_license {
        return Err(StereoError::InvalidArgument(format!(
            "{}; to use it, accept that licence with --accept-model-license \
             {NON_COMMERCIAL_LICENSE} (or use the default Apache-2.0 small model)",
            choice.license_notice()
        )));
    }
    tracing::warn!(model = %choice, "{}", choice.license_notice());
    Ok(())
}

/// The model file for `choice`: `explicit` when given, else found or downloaded as the module
/// docs describe. Base and Large are refused unless
/// [`ResolveOptions::accept_non_commercial_license`] is set (and their licence is logged).
pub fn resolve_model(
    choice: ModelChoice,
    explicit: Option<&Path>,
    opts: &ResolveOptions,
) -> Result<PathBuf> {
    check_license(choice, opts)?;
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(StereoError::ModelMissing(format!(
                "model file {} does not exist",
                path.display()
            )))
        };
    }
    if let Some(dir) = &opts.weights_dir {
        let path = weights_dir_path(dir, choice, opts.precision);
        if path.is_file() {
            tracing::debug!(path = %path.display(), "depth model from WEIGHTS_DIR");
            return Ok(path);
        }
    }
    if !opts.precision.downloadable() {
        let fp32 = match &opts.weights_dir {
            Some(dir) => weights_dir_path(dir, choice, ModelPrecision::Fp32)
                .display()
                .to_string(),
            None => format!(
                "$WEIGHTS_DIR/{}/{}",
                choice.repo_id(),
                ModelPrecision::Fp32.repo_file()
            ),
        };
        let place = match &opts.weights_dir {
            Some(dir) => weights_dir_path(dir, choice, opts.precision)
                .display()
                .to_string(),
            None => format!(
                "$WEIGHTS_DIR/{}/{}",
                choice.repo_id(),
                opts.precision.repo_file()
            ),
        };
        return Err(StereoError::ModelMissing(format!(
            "the {} model of {} is made locally, not downloaded: run `python \
             scripts/stereo/quantize_int8.py --input {fp32} --output {place}` (the fp32 model \
             comes from {}), or pass its path with --model PATH",
            opts.precision,
            choice.repo_id(),
            download_url(choice, ModelPrecision::Fp32)
        )));
    }
    if let Some(path) = cached(choice, opts) {
        tracing::debug!(path = %path.display(), "depth model from the Hugging Face cache");
        return Ok(path);
    }
    if opts.offline {
        return Err(StereoError::ModelMissing(format!(
            "depth model {} ({}) is not available offline (HF_HUB_OFFLINE is set): {}",
            choice.repo_id(),
            opts.precision.repo_file(),
            where_to_put_it(choice, opts)
        )));
    }
    download(choice, opts)
}

/// The file in the hub cache at the pinned revision, if there.
fn cached(choice: ModelChoice, opts: &ResolveOptions) -> Option<PathBuf> {
    let cache = opts.cache();
    let repo = hf_hub::Repo::with_revision(
        choice.repo_id().to_string(),
        hf_hub::RepoType::Model,
        choice.revision().to_string(),
    );
    let file = opts.precision.repo_file();
    if let Some(path) = cache.repo(repo.clone()).get(file) {
        return Some(path);
    }
    // A commit revision fetched by Python's huggingface_hub has a snapshot but no ref file.
    let snapshot = cache.repo(repo).pointer_path(choice.revision()).join(file);
    snapshot.is_file().then_some(snapshot)
}

fn expected_sha256(choice: ModelChoice, precision: ModelPrecision) -> Option<&'static str> {
    match (choice, precision) {
        (ModelChoice::Small, ModelPrecision::Fp32) => Some(SMALL_FP32_SHA256),
        (ModelChoice::Small, ModelPrecision::Fp16) => Some(SMALL_FP16_SHA256),
        _ => None,
    }
}

fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut file = std::fs::File::open(path).map_err(|e| StereoError::io(path, e))?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| StereoError::io(path, e))?;
    Ok(hex::encode(hasher.finalize()))
}

fn download(choice: ModelChoice, opts: &ResolveOptions) -> Result<PathBuf> {
    let file = opts.precision.repo_file();
    let failed = |e: &dyn fmt::Display| {
        StereoError::Download(format!(
            "{} {} at {}: {e}; {}",
            choice.repo_id(),
            file,
            choice.revision(),
            where_to_put_it(choice, opts)
        ))
    };
    let mut builder = hf_hub::api::sync::ApiBuilder::from_cache(opts.cache())
        .with_progress(false)
        .with_user_agent("stereospot", env!("CARGO_PKG_VERSION"));
    if let Some(token) = &opts.token {
        builder = builder.with_token(Some(token.clone()));
    }
    if let Some(endpoint) = &opts.endpoint {
        builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_string());
    }
    let api = builder.build().map_err(|e| failed(&e))?;
    let repo = api.repo(hf_hub::Repo::with_revision(
        choice.repo_id().to_string(),
        hf_hub::RepoType::Model,
        choice.revision().to_string(),
    ));
    tracing::info!(
        repo = choice.repo_id(),
        file,
        revision = choice.revision(),
        "downloading the depth model"
    );
    let bar = if opts.progress {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let path = repo
        .download_with_progress(file, bar)
        .map_err(|e| failed(&e))?;
    if let Some(want) = expected_sha256(choice, opts.precision) {
        let got = sha256_file(&path)?;
        if got != want {
            // Drop the bad file so the next run downloads it again.
            let blob = std::fs::canonicalize(&path).ok();
            let _ = std::fs::remove_file(&path);
            if let Some(blob) = blob {
                let _ = std::fs::remove_file(blob);
            }
            return Err(failed(&format!(
                "the downloaded file's SHA-256 is {got}, expected {want} (removed it)"
            )));
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offline(dir: &Path) -> ResolveOptions {
        ResolveOptions {
            hf_cache: Some(dir.join("hub")),
            offline: true,
            progress: false,
            ..ResolveOptions::default()
        }
    }

    #[test]
    fn names_parse_and_print() {
        for c in ModelChoice::ALL {
            assert_eq!(c.to_string().parse::<ModelChoice>().unwrap(), c);
        }
        assert_eq!("VITL".parse::<ModelChoice>().unwrap(), ModelChoice::Large);
        assert!("huge".parse::<ModelChoice>().is_err());
        for p in [
            ModelPrecision::Fp32,
            ModelPrecision::Fp16,
            ModelPrecision::Int8,
        ] {
            assert_eq!(p.to_string().parse::<ModelPrecision>().unwrap(), p);
        }
        assert!("int4".parse::<ModelPrecision>().is_err());
    }

    #[test]
    fn environment_is_read() {
        let vars = [
            ("WEIGHTS_DIR", "/w"),
            ("HF_HOME", "/h"),
            ("HF_HUB_OFFLINE", "1"),
            ("HF_TOKEN", "hf_secret"),
        ];
        let opts = ResolveOptions::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        });
        assert_eq!(opts.weights_dir, Some(PathBuf::from("/w")));
        assert_eq!(opts.hf_cache, Some(PathBuf::from("/h/hub")));
        assert!(opts.offline);
        assert_eq!(opts.token.as_deref(), Some("hf_secret"));
        assert!(
            !format!("{opts:?}").contains("hf_secret"),
            "token is redacted"
        );
        let opts = ResolveOptions::from_lookup(|k| {
            (k == "HF_HUB_CACHE" || k == "HF_HOME").then(|| format!("/{k}"))
        });
        assert_eq!(opts.hf_cache, Some(PathBuf::from("/HF_HUB_CACHE")));
        assert!(!opts.offline);
    }

    fn put(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"onnx").unwrap();
    }

    #[test]
    fn explicit_path_wins_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mine.onnx");
        put(&file);
        let mut opts = offline(dir.path());
        opts.weights_dir = Some(dir.path().join("weights"));
        put(&weights_dir_path(
            dir.path().join("weights").as_path(),
            ModelChoice::Small,
            ModelPrecision::Fp32,
        ));
        assert_eq!(
            resolve_model(ModelChoice::Small, Some(&file), &opts).unwrap(),
            file
        );
        let missing = dir.path().join("nope.onnx");
        let err = resolve_model(ModelChoice::Small, Some(&missing), &opts).unwrap_err();
        assert!(matches!(err, StereoError::ModelMissing(_)), "{err}");
        assert!(err.to_string().contains("nope.onnx"), "{err}");
    }

    #[test]
    fn weights_dir_layout_mirrors_the_hub() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = offline(dir.path());
        opts.weights_dir = Some(dir.path().to_path_buf());
        opts.precision = ModelPrecision::Int8;
        let want = dir
            .path()
            .join("onnx-community/depth-anything-v2-small/onnx/model_int8_matmul.onnx");
        put(&want);
        assert_eq!(
            resolve_model(ModelChoice::Small, None, &opts).unwrap(),
            want
        );
        // Another precision is another file.
        opts.precision = ModelPrecision::Fp32;
        assert!(resolve_model(ModelChoice::Small, None, &opts).is_err());
    }

    #[test]
    fn hub_cache_is_used_at_the_pinned_revision() {
        let dir = tempfile::tempdir().unwrap();
        let opts = offline(dir.path());
        let repo = dir
            .path()
            .join("hub/models--onnx-community--depth-anything-v2-small");
        // As hf-hub leaves it: refs/<revision> names the snapshot.
        let snapshot = repo.join("snapshots/0123abcd/onnx/model.onnx");
        put(&snapshot);
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs").join(SMALL_REVISION), "0123abcd").unwrap();
        assert_eq!(
            resolve_model(ModelChoice::Small, None, &opts).unwrap(),
            snapshot
        );

        // As Python's huggingface_hub leaves a commit revision: a snapshot, no ref.
        let dir = tempfile::tempdir().unwrap();
        let opts = offline(dir.path());
        let snapshot = dir
            .path()
            .join("hub/models--onnx-community--depth-anything-v2-small/snapshots")
            .join(SMALL_REVISION)
            .join("onnx/model.onnx");
        put(&snapshot);
        assert_eq!(
            resolve_model(ModelChoice::Small, None, &opts).unwrap(),
            snapshot
        );

        // Another revision's snapshot is not taken.
        let dir = tempfile::tempdir().unwrap();
        let opts = offline(dir.path());
        put(&dir
            .path()
            .join("hub/models--onnx-community--depth-anything-v2-small/snapshots/feedbeef/onnx/model.onnx"));
        assert!(resolve_model(ModelChoice::Small, None, &opts).is_err());
    }

    #[test]
    fn offline_miss_says_where_to_put_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = offline(dir.path());
        let err = resolve_model(ModelChoice::Small, None, &opts).unwrap_err();
        assert!(matches!(err, StereoError::ModelMissing(_)), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("$WEIGHTS_DIR/onnx-community/depth-anything-v2-small/onnx/model.onnx"),
            "{msg}"
        );
        assert!(msg.contains("huggingface-cli download"), "{msg}");
        assert!(msg.contains(SMALL_REVISION), "{msg}");

        opts.weights_dir = Some(dir.path().join("w"));
        let msg = resolve_model(ModelChoice::Small, None, &opts)
            .unwrap_err()
            .to_string();
        let exact = dir
            .path()
            .join("w/onnx-community/depth-anything-v2-small/onnx/model.onnx");
        assert!(msg.contains(&exact.display().to_string()), "{msg}");
    }

    #[test]
    fn non_commercial_models_need_the_opt_in() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = offline(dir.path());
        opts.weights_dir = Some(dir.path().to_path_buf());
        for choice in [ModelChoice::Base, ModelChoice::Large] {
            put(&weights_dir_path(dir.path(), choice, ModelPrecision::Fp32));
            let err = resolve_model(choice, None, &opts).unwrap_err().to_string();
            assert!(err.contains("CC-BY-NC-4.0"), "{err}");
            assert!(err.contains("--accept-model-license cc-by-nc-4.0"), "{err}");
            // Also for an explicit file said to be these weights.
            let file = weights_dir_path(dir.path(), choice, ModelPrecision::Fp32);
            assert!(resolve_model(choice, Some(&file), &opts).is_err());
        }
        opts.accept_non_commercial_license = true;
        let path = resolve_model(ModelChoice::Large, None, &opts).unwrap();
        assert!(path.ends_with("onnx-community/depth-anything-v2-large/onnx/model.onnx"));
        assert!(
            ModelChoice::Base
                .license_notice()
                .contains("non-commercial")
        );
    }

    #[test]
    fn failed_download_says_where_to_put_the_file() {
        // A closed local port: the download fails at once, without the internet.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let dir = tempfile::tempdir().unwrap();
        let mut opts = offline(dir.path());
        opts.offline = false;
        opts.endpoint = Some(format!("http://127.0.0.1:{port}"));
        let err = resolve_model(ModelChoice::Small, None, &opts).unwrap_err();
        assert!(matches!(err, StereoError::Download(_)), "{err}");
        assert!(err.to_string().contains("--model PATH"), "{err}");
    }

    #[test]
    fn int8_is_made_locally_never_downloaded() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = offline(dir.path());
        opts.offline = false; // it must not even try
        opts.endpoint = Some("http://127.0.0.1:1".into());
        opts.weights_dir = Some(dir.path().to_path_buf());
        opts.precision = ModelPrecision::Int8;
        let err = resolve_model(ModelChoice::Small, None, &opts).unwrap_err();
        assert!(matches!(err, StereoError::ModelMissing(_)), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("scripts/stereo/quantize_int8.py"), "{msg}");
        assert!(msg.contains("model_int8_matmul.onnx"), "{msg}");
        assert!(!ModelPrecision::Int8.downloadable());
    }
}
