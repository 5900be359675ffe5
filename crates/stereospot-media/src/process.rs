//! Running ffmpeg and ffprobe: argument vectors only, `kill_on_drop`, a timeout that kills the
//! child, spawn errors that say what to install, and the tail of stderr kept for error messages.
//!
//! Modelled on pict-rs `src/process.rs`. Nothing here ever goes through a shell.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::error::{MediaError, Result, Tool};

/// How many stderr lines are kept for error messages.
const STDERR_TAIL_LINES: usize = 16;
/// Longest stderr line kept (characters); ffmpeg can print very long lines for broken input.
const STDERR_LINE_MAX: usize = 400;

/// Arguments every ffmpeg invocation starts with: no banner, never read the terminal, only errors
/// on stderr (so the tail we keep is the useful part).
pub(crate) const FFMPEG_COMMON: &[&str] = &["-hide_banner", "-nostdin", "-loglevel", "error"];

/// The last lines a program wrote to stderr.
#[derive(Debug, Default, Clone)]
pub(crate) struct StderrTail {
    lines: VecDeque<String>,
}

impl StderrTail {
    pub(crate) fn push(&mut self, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        for piece in text.split(['\n', '\r']) {
            let piece = piece.trim_end();
            if piece.is_empty() {
                continue;
            }
            let mut line: String = piece.chars().take(STDERR_LINE_MAX).collect();
            if line.len() < piece.len() {
                line.push_str("...");
            }
            if self.lines.len() == STDERR_TAIL_LINES {
                self.lines.pop_front();
            }
            self.lines.push_back(line);
        }
    }

    pub(crate) fn text(&self) -> String {
        self.lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// The last line, which is usually ffmpeg's summary of what went wrong.
    pub(crate) fn last_line(&self) -> Option<&str> {
        self.lines.back().map(String::as_str)
    }
}

/// Reads a child's stderr to the end in a task, keeping the tail. Always draining stderr matters:
/// a child that fills the pipe would block forever.
pub(crate) fn drain_stderr<R>(stderr: R) -> JoinHandle<StderrTail>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut tail = StderrTail::default();
        let mut reader = BufReader::new(stderr);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => tail.push(&line),
            }
        }
        tail
    })
}

/// One invocation of ffmpeg, ffprobe or yt-dlp.
#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    pub tool: Tool,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub timeout: Duration,
    /// When set, the child's whole environment (nothing is inherited).
    pub env: Option<Vec<(OsString, OsString)>>,
    /// The child's working directory (default: ours).
    pub current_dir: Option<PathBuf>,
}

impl Invocation {
    pub(crate) fn new(tool: Tool, program: &Path, timeout: Duration) -> Self {
        Invocation {
            tool,
            program: program.to_path_buf(),
            args: Vec::new(),
            timeout,
            env: None,
            current_dir: None,
        }
    }

    pub(crate) fn arg(&mut self, a: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    pub(crate) fn args<I, S>(&mut self, items: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in items {
            self.arg(a);
        }
        self
    }

    /// The command line for logs (arguments are shown, never executed as a string).
    pub(crate) fn display(&self) -> String {
        let mut s = self.tool.name().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    /// Spawns the child with the given pipes; stderr is always piped (see [`drain_stderr`]).
    pub(crate) fn spawn(&self, stdin: bool, stdout: bool) -> Result<Child> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(if stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(env) = &self.env {
            cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
        }
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        tracing::debug!(command = %self.display(), "spawning");
        cmd.spawn()
            .map_err(|e| spawn_error(self.tool, &self.program, e))
    }
}

pub(crate) fn spawn_error(tool: Tool, program: &Path, e: std::io::Error) -> MediaError {
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            MediaError::ToolMissing {
                tool,
                program: program.to_path_buf(),
            }
        }
        _ => MediaError::io(format!("starting {}", program.display()), e),
    }
}

/// What a finished child left behind.
#[derive(Debug)]
pub(crate) struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: StderrTail,
}

impl Finished {
    /// Turns a non-zero exit into [`MediaError::ProcessFailed`].
    pub(crate) fn check(self, tool: Tool) -> Result<Finished> {
        if self.status.success() {
            Ok(self)
        } else {
            Err(failed(tool, self.status, &self.stderr))
        }
    }
}

pub(crate) fn failed(tool: Tool, status: ExitStatus, stderr: &StderrTail) -> MediaError {
    MediaError::ProcessFailed {
        tool,
        status: status.to_string(),
        stderr_tail: stderr.text(),
    }
}

/// What to do with the child's stdout.
pub(crate) enum StdoutMode<'a> {
    /// Discard it (stdout is /dev/null).
    Ignore,
    /// Collect it, failing with [`MediaError::Internal`] past `limit` bytes.
    Collect { limit: usize },
    /// Hand each line to the callback as it arrives (memory stays bounded).
    Lines(&'a mut (dyn FnMut(&str) + Send)),
}

impl std::fmt::Debug for StdoutMode<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StdoutMode::Ignore => f.write_str("Ignore"),
            StdoutMode::Collect { limit } => write!(f, "Collect({limit})"),
            StdoutMode::Lines(_) => f.write_str("Lines"),
        }
    }
}

/// Runs the invocation to completion (or to its timeout, which kills it). A non-zero exit is not
/// an error here: callers classify failures (a bad input file is not an internal error).
pub(crate) async fn run(inv: &Invocation, mut mode: StdoutMode<'_>) -> Result<Finished> {
    let wants_stdout = !matches!(mode, StdoutMode::Ignore);
    let mut child = inv.spawn(false, wants_stdout)?;
    let stderr_task = child.stderr.take().map(drain_stderr);
    let stdout = child.stdout.take();

    let work = async {
        let mut collected = Vec::new();
        if let Some(mut out) = stdout {
            match &mut mode {
                StdoutMode::Ignore => {}
                StdoutMode::Collect { limit } => {
                    let limit = *limit;
                    let mut buf = [0u8; 64 * 1024];
                    loop {
                        let n = out.read(&mut buf).await.map_err(|e| {
                            MediaError::io(format!("reading {} output", inv.tool), e)
                        })?;
                        if n == 0 {
                            break;
                        }
                        if collected.len() + n > limit {
                            return Err(MediaError::Internal(format!(
                                "{} wrote more than {limit} bytes",
                                inv.tool
                            )));
                        }
                        collected.extend_from_slice(&buf[..n]);
                    }
                }
                StdoutMode::Lines(callback) => {
                    let mut reader = BufReader::with_capacity(64 * 1024, out);
                    let mut line = String::new();
                    loop {
                        line.clear();
                        let n = reader.read_line(&mut line).await.map_err(|e| {
                            MediaError::io(format!("reading {} output", inv.tool), e)
                        })?;
                        if n == 0 {
                            break;
                        }
                        callback(line.trim_end());
                    }
                }
            }
        }
        let status = child
            .wait()
            .await
            .map_err(|e| MediaError::io(format!("waiting for {}", inv.tool), e))?;
        Ok::<_, MediaError>((status, collected))
    };

    let outcome = tokio::time::timeout(inv.timeout, work).await;
    match outcome {
        Ok(Ok((status, stdout))) => {
            let stderr = match stderr_task {
                Some(t) => t.await.unwrap_or_default(),
                None => StderrTail::default(),
            };
            tracing::debug!(tool = %inv.tool, %status, "finished");
            Ok(Finished {
                status,
                stdout,
                stderr,
            })
        }
        Ok(Err(e)) => {
            kill_and_reap(&mut child).await;
            Err(e)
        }
        Err(_elapsed) => {
            tracing::warn!(command = %inv.display(), timeout = ?inv.timeout, "timed out, killing");
            kill_and_reap(&mut child).await;
            Err(MediaError::Timeout {
                tool: inv.tool,
                after: inv.timeout,
            })
        }
    }
}

/// Kills the child and waits for it, so no zombie and no stray writer to our temp dir is left.
pub(crate) async fn kill_and_reap(child: &mut Child) {
    if let Err(e) = child.kill().await {
        tracing::debug!(error = %e, "kill failed (child probably already exited)");
    }
}

/// A temporary directory under the configured temp root, removed when dropped (on every path,
/// including errors and panics).
pub(crate) fn temp_dir(root: &Path, purpose: &str) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(root)
        .map_err(|e| MediaError::io(format!("creating temp root {}", root.display()), e))?;
    tempfile::Builder::new()
        .prefix(&format!("stereospot-{purpose}-"))
        .tempdir_in(root)
        .map_err(|e| MediaError::io(format!("creating a temp dir in {}", root.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_tail_keeps_the_last_lines_and_truncates_long_ones() {
        let mut t = StderrTail::default();
        for i in 0..40 {
            t.push(format!("line {i}\n").as_bytes());
        }
        let text = t.text();
        assert_eq!(text.lines().count(), STDERR_TAIL_LINES);
        assert!(text.starts_with("line 24"));
        assert_eq!(t.last_line(), Some("line 39"));

        let mut t = StderrTail::default();
        t.push(&vec![b'x'; 5000]);
        assert_eq!(t.text().len(), STDERR_LINE_MAX + 3);

        let mut t = StderrTail::default();
        t.push(b"a\r\nb\rc\n\n\xff\n");
        assert_eq!(t.text(), "a\nb\nc\n\u{fffd}");
    }

    #[test]
    fn invocation_display_shows_arguments() {
        let mut inv = Invocation::new(Tool::Ffmpeg, Path::new("ffmpeg"), Duration::from_secs(1));
        inv.args(["-i", "file:/x y.mp4"]);
        assert_eq!(inv.display(), "ffmpeg -i file:/x y.mp4");
    }

    #[tokio::test]
    async fn missing_program_says_what_to_install() {
        let inv = Invocation::new(
            Tool::Ffprobe,
            Path::new("/nonexistent/ffprobe-xyz"),
            Duration::from_secs(5),
        );
        let err = run(&inv, StdoutMode::Ignore).await.expect_err("must fail");
        assert_eq!(err.code(), "ffprobe_missing");
        assert!(err.to_string().contains("apt-get install ffmpeg"), "{err}");
    }

    #[tokio::test]
    async fn timeout_kills_the_child() {
        // `sleep` stands in for a hung ffmpeg; the point is the kill path, not the program.
        let mut inv = Invocation::new(Tool::Ffmpeg, Path::new("sleep"), Duration::from_millis(200));
        inv.arg("30");
        let started = std::time::Instant::now();
        let err = run(&inv, StdoutMode::Ignore)
            .await
            .expect_err("must time out");
        assert_eq!(err.code(), "timeout");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn lines_mode_streams_stdout_and_collect_mode_is_bounded() {
        let mut inv = Invocation::new(Tool::Ffprobe, Path::new("seq"), Duration::from_secs(5));
        inv.args(["1", "5"]);
        let mut seen = Vec::new();
        let mut cb = |l: &str| seen.push(l.to_string());
        let fin = run(&inv, StdoutMode::Lines(&mut cb))
            .await
            .expect("seq runs");
        assert!(fin.status.success());
        assert_eq!(seen, ["1", "2", "3", "4", "5"]);

        let mut inv = Invocation::new(Tool::Ffprobe, Path::new("seq"), Duration::from_secs(5));
        inv.args(["1", "100000"]);
        let err = run(&inv, StdoutMode::Collect { limit: 1000 })
            .await
            .expect_err("over the limit");
        assert_eq!(err.code(), "internal");
    }
}
