//! Finding and loading the ONNX Runtime shared library.
//!
//! `ort` is built with `load-dynamic`: nothing links against ONNX Runtime at build time, and the
//! library is opened on first use, from (in this order):
//!
//! 1. `ORT_DYLIB_PATH`, when set (it must exist);
//! 2. `.tools/onnxruntime/libonnxruntime.so*`, where `scripts/deps.sh` installs it, looked up in
//!    the workspace this crate was built from, the current directory and its ancestors, and the
//!    executable's directory and its ancestors;
//! 3. the system library (`libonnxruntime.so` on the loader's search path).
//!
//! When none loads, the error says what to install. Version 1.21 or newer is required (the `ort`
//! API level this crate is built with); scripts/deps.sh installs 1.31.1.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::{Result, StereoError};

/// Where scripts/deps.sh installs the library, relative to the repository root.
pub const TOOLS_DIR: &str = ".tools/onnxruntime";

const LIB_NAME: &str = "libonnxruntime.so";

const INSTALL_HINT: &str = "install it with `scripts/deps.sh runtime` (or `./test`, which runs \
     `scripts/deps.sh test`) from the repository root, which puts ONNX Runtime 1.31.1 into \
     .tools/onnxruntime/; or point ORT_DYLIB_PATH at a libonnxruntime.so 1.21 or newer (the PyPI \
     onnxruntime wheel carries one in onnxruntime/capi/)";

/// Where a library candidate came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibrarySource {
    /// `ORT_DYLIB_PATH`.
    Env,
    /// A project-local `.tools/onnxruntime/`.
    Tools,
    /// The dynamic loader's search path.
    System,
}

/// The library to load, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryChoice {
    /// A path, or a bare file name for the system loader.
    pub path: PathBuf,
    /// Which rule found it.
    pub source: LibrarySource,
}

/// The newest `libonnxruntime.so*` in `dir` (the unversioned link first).
fn library_in(dir: &Path) -> Option<PathBuf> {
    let plain = dir.join(LIB_NAME);
    if plain.is_file() {
        return Some(plain);
    }
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(LIB_NAME))
        })
        .collect();
    versioned.sort();
    versioned.pop()
}

/// Directories searched for `.tools/onnxruntime`, most specific first.
fn tools_roots(cwd: Option<PathBuf>, exe: Option<PathBuf>) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    // The workspace this crate was compiled in (tests, benches, `cargo run`).
    roots.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    if let Some(cwd) = cwd {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Some(exe) = exe.as_deref().and_then(Path::parent) {
        roots.extend(exe.ancestors().map(Path::to_path_buf));
    }
    roots
}

/// Picks the library per the module's rules, given the environment (for tests).
fn choose_library(
    env_path: Option<PathBuf>,
    cwd: Option<PathBuf>,
    exe: Option<PathBuf>,
) -> Result<LibraryChoice> {
    if let Some(path) = env_path.filter(|p| !p.as_os_str().is_empty()) {
        if !path.is_file() {
            return Err(StereoError::Runtime(format!(
                "ORT_DYLIB_PATH is {}, which is not a file; {INSTALL_HINT}",
                path.display()
            )));
        }
        return Ok(LibraryChoice {
            path,
            source: LibrarySource::Env,
        });
    }
    for root in tools_roots(cwd, exe) {
        if let Some(path) = library_in(&root.join(TOOLS_DIR)) {
            return Ok(LibraryChoice {
                path,
                source: LibrarySource::Tools,
            });
        }
    }
    Ok(LibraryChoice {
        path: PathBuf::from(LIB_NAME),
        source: LibrarySource::System,
    })
}

/// The ONNX Runtime library this process would load (see the module docs).
pub fn find_library() -> Result<LibraryChoice> {
    choose_library(
        std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from),
        std::env::current_dir().ok(),
        std::env::current_exe().ok(),
    )
}

static ENVIRONMENT: OnceLock<ort::environment::Environment> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// Loads ONNX Runtime (once per process) and returns the shared environment.
pub fn environment() -> Result<&'static ort::environment::Environment> {
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(env) = ENVIRONMENT.get() {
        return Ok(env);
    }
    let choice = find_library()?;
    let builder = ort::init_from(&choice.path).map_err(|e| {
        let what = match choice.source {
            LibrarySource::Env => "ORT_DYLIB_PATH",
            LibrarySource::Tools => "the project's .tools",
            LibrarySource::System => "the system",
        };
        StereoError::Runtime(format!(
            "cannot load ONNX Runtime from {what} ({}): {e}; {INSTALL_HINT}",
            choice.path.display()
        ))
    })?;
    let env = builder
        .with_name("stereospot")
        .build()
        .map_err(|e| StereoError::Runtime(format!("cannot start ONNX Runtime: {e}")))?;
    tracing::debug!(library = %choice.path.display(), source = ?choice.source, "ONNX Runtime loaded");
    Ok(ENVIRONMENT.get_or_init(|| env))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_path_wins_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("libonnxruntime.so.1.31.1");
        std::fs::write(&lib, b"").unwrap();
        let got = choose_library(Some(lib.clone()), None, None).unwrap();
        assert_eq!(got.path, lib);
        assert_eq!(got.source, LibrarySource::Env);

        let err = choose_library(Some(dir.path().join("missing.so")), None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ORT_DYLIB_PATH"), "{err}");
        assert!(err.contains("scripts/deps.sh"), "{err}");
    }

    #[test]
    fn tools_dir_is_found_from_a_subdirectory() {
        let dir = tempfile::tempdir().unwrap();
        let tools = dir.path().join(TOOLS_DIR);
        std::fs::create_dir_all(&tools).unwrap();
        std::fs::write(tools.join("libonnxruntime.so.1.30.0"), b"").unwrap();
        std::fs::write(tools.join("libonnxruntime.so.1.31.1"), b"").unwrap();
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        let roots = tools_roots(Some(sub.clone()), None);
        let found = roots
            .iter()
            .skip(1) // the build workspace may have its own .tools
            .find_map(|r| library_in(&r.join(TOOLS_DIR)))
            .unwrap();
        assert_eq!(found, tools.join("libonnxruntime.so.1.31.1"));
        // An unversioned link is preferred.
        std::fs::write(tools.join("libonnxruntime.so"), b"").unwrap();
        assert_eq!(library_in(&tools).unwrap(), tools.join("libonnxruntime.so"));
    }

    #[test]
    fn executable_ancestors_are_searched() {
        let roots = tools_roots(
            None,
            Some(PathBuf::from("/opt/app/target/release/stereospot")),
        );
        assert!(roots.contains(&PathBuf::from("/opt/app")));
        assert!(roots.contains(&PathBuf::from("/opt/app/target/release")));
    }

    #[test]
    fn falls_back_to_the_system_library() {
        let dir = tempfile::tempdir().unwrap();
        let choice = choose_library(None, Some(dir.path().to_path_buf()), None).unwrap();
        // Either this workspace's .tools (when installed) or the system loader.
        match choice.source {
            LibrarySource::Tools => assert!(choice.path.is_file()),
            LibrarySource::System => assert_eq!(choice.path, PathBuf::from(LIB_NAME)),
            LibrarySource::Env => panic!("no env path was given"),
        }
    }
}
