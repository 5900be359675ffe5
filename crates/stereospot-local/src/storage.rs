//! Filesystem object storage: one directory per bucket, objects as plain files.
//!
//! Layout under the data directory:
//!
//! - `objects/{bucket}/{key}`: the objects; a key's `/`-separated segments are directories.
//! - `objects/.tmp/`: uploads in progress, named `{pid}.{random}.tmp`.
//! - `presign.key`: the 32-byte HMAC secret of presigned URLs (mode 0600).
//!
//! **Atomicity.** Every write streams into a temp file on the same filesystem, fsyncs it, renames
//! it over the final path and fsyncs the parent directory (and any directory it had to create), so
//! readers see the old object or the whole new one, never a part, and a crash leaves at most an
//! orphan temp file. Temp files whose writer process is gone are swept when storage is opened.
//!
//! **Keys** are validated before they touch a path: non-empty, at most 1024 bytes, no leading or
//! trailing `/`, no empty, `.` or `..` segments, no segment over 255 bytes, no NUL or backslash.
//! So a key can never name anything outside its bucket directory. Because keys are paths, a key
//! cannot be both an object and a "directory" of other objects (`a` and `a/b`); such a put is
//! refused with `Invalid` (S3 allows it; the pipeline's keys never do it). Bucket names follow
//! S3's rules (lower-case letters, digits, `.` and `-`, 3 to 63 characters, no leading dot).
//!
//! **ETag** is a weak validator derived from the file's inode, modification time (ns) and size
//! (`{ino:x}-{mtime_ns:x}-{size:x}`, as Apache and nginx do). It is free to compute (no hashing
//! on the write path), unchanged while an object is unchanged, and differs from the previous
//! version's after every rewrite: the new file is created while the old one still exists, so
//! their inodes differ. It is not a content hash: identical bytes stored twice get different
//! ETags, and S3's (MD5) ETags are not comparable with it.
//!
//! **Memory** is bounded: puts go through a 1 MiB write buffer and gets stream 256 KiB chunks.
//!
//! **Notifications** (see [`crate::notify`]) go through a durable outbox: recorded before the
//! rename, sent after it, replayed on open if the process died in between.

use std::io::{ErrorKind, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use stereospot_core::UnixSeconds;
use stereospot_core::platform::{
    ByteRange, ByteStream, ObjectMeta, ObjectStorage, PlatformError, PresignOptions, Result,
};

use crate::notify::Notifier;
use crate::presign::{SignedMethod, SignedRequest, UrlSigner};

const TMP_DIR: &str = ".tmp";
const OUTBOX_DIR: &str = ".outbox";
const SECRET_FILE: &str = "presign.key";
const WRITE_BUFFER: usize = 1 << 20;
const READ_CHUNK: usize = 256 << 10;
/// Longest accepted key, in bytes (as S3).
pub const MAX_KEY_LEN: usize = 1024;

/// Options of [`FsObjectStorage::open`].
#[derive(Debug, Clone, Default)]
pub struct FsStorageOptions {
    /// The address presigned URLs start with (the web server's), e.g. `http://127.0.0.1:8080`.
    /// May be changed later with [`FsObjectStorage::set_base_url`].
    pub base_url: String,
    /// Object-created notification rules.
    pub notifier: Notifier,
}

/// [`ObjectStorage`] on the local filesystem.
#[derive(Debug)]
pub struct FsObjectStorage {
    root: PathBuf,
    tmp: PathBuf,
    outbox: PathBuf,
    signer: UrlSigner,
    base_url: RwLock<String>,
    notifier: Notifier,
}

/// An object opened for reading, with the metadata of exactly the file that was opened (a
/// concurrent overwrite cannot change either).
#[derive(Debug)]
pub struct OpenObject {
    file: tokio::fs::File,
    pub meta: ObjectMeta,
}

impl OpenObject {
    /// Streams the object or a range of it; `Invalid` for a range that starts past the end.
    pub async fn into_stream(mut self, range: Option<ByteRange>) -> Result<ByteStream> {
        let (start, len) = match range {
            None => (0, self.meta.size),
            Some(r) => {
                let (start, end) = resolve_range(r, self.meta.size)?;
                (start, end - start + 1)
            }
        };
        if start > 0 {
            self.file
                .seek(SeekFrom::Start(start))
                .await
                .map_err(|e| PlatformError::backend("seeking in object", e))?;
        }
        let reader = self.file.take(len);
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            reader, READ_CHUNK,
        )))
    }
}

/// Clamps an HTTP-style range to an object of `size` bytes: `(start, end)` inclusive.
pub fn resolve_range(range: ByteRange, size: u64) -> Result<(u64, u64)> {
    let end = range
        .end
        .map_or(size.saturating_sub(1), |e| e.min(size.saturating_sub(1)));
    if range.start >= size || range.end.is_some_and(|e| e < range.start) {
        return Err(PlatformError::Invalid(format!(
            "range {}-{} not satisfiable for an object of {size} bytes",
            range.start,
            range.end.map(|e| e.to_string()).unwrap_or_default()
        )));
    }
    Ok((range.start, end))
}

/// Checks a bucket name (S3 rules, simplified).
pub fn validate_bucket(bucket: &str) -> Result<()> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !bucket.starts_with(['.', '-'])
        && !bucket.contains("..");
    if ok {
        Ok(())
    } else {
        Err(PlatformError::Invalid(format!(
            "bucket name {:?} must be 3 to 63 lower-case letters, digits, '.' or '-' and start with a letter or digit",
            truncate(bucket)
        )))
    }
}

/// Checks an object key; see the module docs for the rules.
pub fn validate_key(key: &str) -> Result<()> {
    let invalid = |why: &str| {
        Err(PlatformError::Invalid(format!(
            "object key {:?} {why}",
            truncate(key)
        )))
    };
    if key.is_empty() {
        return invalid("is empty");
    }
    if key.len() > MAX_KEY_LEN {
        return invalid("is longer than 1024 bytes");
    }
    if key.contains('\0') || key.contains('\\') {
        return invalid("contains NUL or a backslash");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return invalid("has an empty segment (leading, trailing or double '/')");
        }
        if segment == "." || segment == ".." {
            return invalid("has a '.' or '..' segment");
        }
        if segment.len() > 255 {
            return invalid("has a segment longer than 255 bytes");
        }
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

fn not_found(bucket: &str, key: &str) -> PlatformError {
    PlatformError::NotFound(format!("object {bucket}/{key}"))
}

/// fsyncs a directory so that entries created or renamed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn unix_seconds(t: SystemTime) -> UnixSeconds {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn meta_of(md: &std::fs::Metadata) -> ObjectMeta {
    let mtime = md.modified().ok();
    let mtime_ns = mtime
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(md);
    #[cfg(not(unix))]
    let ino = 0u64;
    ObjectMeta {
        size: md.len(),
        etag: Some(format!("{ino:x}-{mtime_ns:x}-{:x}", md.len())),
        last_modified: mtime.map(unix_seconds),
    }
}

/// Removes a temp file when dropped, unless it was renamed into place.
struct TempGuard {
    path: Option<PathBuf>,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether a temp file was left by a process that no longer runs. Names are
/// `{pid}.{random}.tmp`; anything else in the temp directory is junk.
fn temp_is_orphan(name: &str, our_pid: u32, age: Option<Duration>) -> bool {
    let Some(pid) = name.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
        return true;
    };
    if pid == our_pid {
        // Possibly another storage instance in this process, mid-write.
        return false;
    }
    let proc = Path::new("/proc");
    if proc.is_dir() {
        !proc.join(pid.to_string()).exists()
    } else {
        age.is_some_and(|a| a > Duration::from_secs(24 * 3600))
    }
}

impl FsObjectStorage {
    /// Opens (creating if needed) the object store of `data_dir`: makes `objects/` and its temp
    /// directory, loads or creates the presign secret, and sweeps temp files of crashed writers.
    pub async fn open(data_dir: &Path, options: FsStorageOptions) -> Result<Self> {
        let data_dir = data_dir.to_path_buf();
        let (root, tmp, outbox, signer) = tokio::task::spawn_blocking(move || {
            let root = data_dir.join("objects");
            let tmp = root.join(TMP_DIR);
            let outbox = root.join(OUTBOX_DIR);
            for dir in [&tmp, &outbox] {
                std::fs::create_dir_all(dir).map_err(|e| {
                    PlatformError::backend(format!("creating {}", dir.display()), e)
                })?;
            }
            let secret = data_dir.join(SECRET_FILE);
            let signer = UrlSigner::load_or_create(&secret).map_err(|e| {
                PlatformError::backend(format!("loading presign secret {}", secret.display()), e)
            })?;
            let swept = sweep_temp(&tmp).map_err(|e| {
                PlatformError::backend(format!("sweeping {}", tmp.display()), e)
            })?;
            if swept > 0 {
                tracing::info!(swept, dir = %tmp.display(), "removed temp files of interrupted uploads");
            }
            Ok::<_, PlatformError>((root, tmp, outbox, signer))
        })
        .await
        .map_err(|e| PlatformError::backend("opening object storage", e))??;
        let storage = Self {
            root,
            tmp,
            outbox,
            signer,
            base_url: RwLock::new(options.base_url),
            notifier: options.notifier,
        };
        storage.replay_outbox().await?;
        Ok(storage)
    }

    /// Sends the notifications of puts that stored their object but did not get to send (the
    /// process crashed, or the queue failed and the put was not retried). A record whose object
    /// is absent belongs to a write that never became visible and is dropped. Records whose send
    /// fails again are kept for the next open.
    async fn replay_outbox(&self) -> Result<u64> {
        let dir = self.outbox.clone();
        let records = blocking(move || {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                let parsed = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<OutboxRecord>(&b).ok());
                out.push((path, parsed));
            }
            Ok(out)
        })
        .await
        .map_err(|e| PlatformError::backend("reading the notification outbox", e))?;
        let mut sent = 0;
        for (path, record) in records {
            let Some(record) = record else {
                let _ = tokio::fs::remove_file(&path).await; // torn record: its write never committed
                continue;
            };
            let meta = match self.head(&record.bucket, &record.key).await {
                Ok(Some(meta)) => meta,
                Ok(None) | Err(PlatformError::Invalid(_)) => {
                    let _ = tokio::fs::remove_file(&path).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match self
                .notifier
                .object_created(&record.bucket, &record.key, &meta)
                .await
            {
                Ok(()) => {
                    sent += 1;
                    let _ = tokio::fs::remove_file(&path).await;
                }
                Err(e) => tracing::warn!(
                    bucket = record.bucket,
                    key = record.key,
                    error = %e,
                    "notification replay failed; will retry on next open"
                ),
            }
        }
        if sent > 0 {
            tracing::info!(
                sent,
                "replayed object-created notifications from the outbox"
            );
        }
        Ok(sent)
    }

    /// Changes the address presigned URLs start with (e.g. after binding to port 0).
    pub fn set_base_url(&self, base_url: impl Into<String>) {
        let mut guard = match self.base_url.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = base_url.into();
    }

    pub fn base_url(&self) -> String {
        match self.base_url.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The directory holding the buckets.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The signer of presigned URLs (the HTTP routes verify with it).
    pub fn signer(&self) -> &UrlSigner {
        &self.signer
    }

    /// Creates a bucket's directory (puts create it too).
    pub async fn create_bucket(&self, bucket: &str) -> Result<()> {
        validate_bucket(bucket)?;
        let dir = self.root.join(bucket);
        let root = self.root.clone();
        blocking(move || {
            std::fs::create_dir_all(&dir)?;
            sync_dir(&root)
        })
        .await
        .map_err(|e| PlatformError::backend(format!("creating bucket {bucket}"), e))
    }

    fn object_path(&self, bucket: &str, key: &str) -> Result<PathBuf> {
        validate_bucket(bucket)?;
        validate_key(key)?;
        let mut path = self.root.join(bucket);
        path.extend(key.split('/'));
        Ok(path)
    }

    /// A presigned URL expiring at `expires` (unix seconds); the trait methods use now plus
    /// the requested duration. Lets tests and callers pick an exact expiry.
    pub fn presign_at(
        &self,
        method: SignedMethod,
        bucket: &str,
        key: &str,
        options: &PresignOptions,
        expires: UnixSeconds,
    ) -> Result<String> {
        validate_bucket(bucket)?;
        validate_key(key)?;
        for (what, value) in [
            ("content disposition", &options.content_disposition),
            ("content type", &options.content_type),
        ] {
            if let Some(v) = value
                && axum::http::HeaderValue::from_str(v).is_err()
            {
                return Err(PlatformError::Invalid(format!(
                    "{what} {:?} is not a valid header value",
                    truncate(v)
                )));
            }
        }
        let request = SignedRequest {
            method,
            bucket,
            key,
            expires,
            content_disposition: options.content_disposition.as_deref(),
            content_type: options.content_type.as_deref(),
        };
        Ok(self.signer.url(&self.base_url(), &request))
    }

    fn presign(
        &self,
        method: SignedMethod,
        bucket: &str,
        key: &str,
        options: &PresignOptions,
    ) -> Result<String> {
        if options.expires_in.is_zero() {
            return Err(PlatformError::Invalid(
                "presigned URL expiry must be positive".into(),
            ));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| PlatformError::backend("reading the clock", e))?;
        // Round up, so a URL is valid for at least `expires_in`.
        let expires = (now + options.expires_in).as_secs_f64().ceil() as i64;
        self.presign_at(method, bucket, key, options, expires)
    }

    /// Opens an object for reading. `NotFound` when absent.
    pub async fn open_object(&self, bucket: &str, key: &str) -> Result<OpenObject> {
        let path = self.object_path(bucket, key)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if is_absent(&e) => return Err(not_found(bucket, key)),
            Err(e) => {
                return Err(PlatformError::backend(
                    format!("opening object {bucket}/{key}"),
                    e,
                ));
            }
        };
        let md = file.metadata().await.map_err(|e| {
            PlatformError::backend(format!("reading metadata of {bucket}/{key}"), e)
        })?;
        if !md.is_file() {
            return Err(not_found(bucket, key));
        }
        Ok(OpenObject {
            file,
            meta: meta_of(&md),
        })
    }

    fn new_temp_path(&self) -> PathBuf {
        let random: u64 = rand::random();
        self.tmp
            .join(format!("{}.{random:016x}.tmp", std::process::id()))
    }

    /// Moves a complete, fsynced temp file into place and makes that durable.
    async fn commit(&self, guard: TempGuard, bucket: &str, key: &str) -> Result<ObjectMeta> {
        let bucket_dir = self.root.join(bucket);
        let segments: Vec<String> = key.split('/').map(str::to_owned).collect();
        let root = self.root.clone();
        let (bucket_s, key_s) = (bucket.to_owned(), key.to_owned());
        let outbox_path = self.notifier.matches_any(bucket, key).then(|| {
            self.outbox
                .join(format!("{:016x}.json", rand::random::<u64>()))
        });
        let outbox_record = outbox_path.clone();
        let meta = tokio::task::spawn_blocking(move || {
            let mut guard = guard;
            if let Some(path) = &outbox_record {
                write_outbox_record(path, &bucket_s, &key_s).map_err(|e| {
                    PlatformError::backend(format!("recording the notification of {bucket_s}/{key_s}"), e)
                })?;
            }
            let drop_record = |e: PlatformError| {
                if let Some(path) = &outbox_record {
                    let _ = std::fs::remove_file(path);
                }
                e
            };
            let Some(tmp) = guard.path.as_ref() else {
                return Err(PlatformError::backend("committing object", "temp file already gone"));
            };
            let (file_name, dirs) = match segments.split_last() {
                Some(split) => split,
                None => return Err(PlatformError::Invalid("empty key".into())),
            };
            let conflict = || {
                PlatformError::Invalid(format!(
                    "object key {key_s:?} conflicts with an existing object or prefix in bucket {bucket_s} (a key cannot be both an object and a prefix of other keys)"
                ))
            };
            let io_err = |what: &str, e: std::io::Error| {
                PlatformError::backend(format!("{what} for object {bucket_s}/{key_s}"), e)
            };
            // A concurrent delete may prune a directory we just created; retry a few times.
            let mut attempt = 0;
            loop {
                attempt += 1;
                let parent = ensure_dirs(&root, &bucket_dir, dirs)
                    .map_err(|e| match e.kind() {
                        ErrorKind::NotADirectory | ErrorKind::AlreadyExists => conflict(),
                        _ => io_err("creating directories", e),
                    })
                    .map_err(drop_record)?;
                let target = parent.join(file_name);
                match std::fs::rename(tmp, &target) {
                    Ok(()) => {
                        guard.path = None;
                        sync_dir(&parent).map_err(|e| io_err("syncing directory", e))?;
                        let md = std::fs::metadata(&target).map_err(|e| io_err("reading metadata", e))?;
                        return Ok(meta_of(&md));
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound && attempt < 5 => continue,
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::IsADirectory
                                | ErrorKind::DirectoryNotEmpty
                                | ErrorKind::NotADirectory
                                | ErrorKind::AlreadyExists
                        ) =>
                    {
                        return Err(drop_record(conflict()));
                    }
                    Err(e) => return Err(drop_record(io_err("renaming temp file", e))),
                }
            }
        })
        .await
        .map_err(|e| PlatformError::backend("committing object", e))??;
        self.notifier.object_created(bucket, key, &meta).await?;
        if let Some(path) = outbox_path {
            // Losing this removal only means a duplicate notification after a restart.
            let _ = tokio::fs::remove_file(path).await;
        }
        Ok(meta)
    }

    /// Removes empty directories from `dir` up to (not including) the bucket directory.
    async fn prune_empty_dirs(&self, bucket: &str, dir: PathBuf) {
        let bucket_dir = self.root.join(bucket);
        let _ = tokio::task::spawn_blocking(move || {
            let mut dir = dir;
            while dir != bucket_dir && dir.starts_with(&bucket_dir) {
                if std::fs::remove_dir(&dir).is_err() {
                    break;
                }
                match dir.parent() {
                    Some(p) => dir = p.to_path_buf(),
                    None => break,
                }
            }
        })
        .await;
    }
}

/// Creates `dirs` below `bucket_dir` (and the bucket directory), fsyncing the parent of every
/// directory it creates. Returns the innermost directory.
fn ensure_dirs(root: &Path, bucket_dir: &Path, dirs: &[String]) -> std::io::Result<PathBuf> {
    fn ensure(dir: &Path, parent: &Path) -> std::io::Result<()> {
        match std::fs::create_dir(dir) {
            Ok(()) => sync_dir(parent),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                if std::fs::metadata(dir)?.is_dir() {
                    Ok(())
                } else {
                    Err(std::io::Error::new(
                        ErrorKind::NotADirectory,
                        "a file is in the way",
                    ))
                }
            }
            Err(e) => Err(e),
        }
    }
    ensure(bucket_dir, root)?;
    let mut dir = bucket_dir.to_path_buf();
    for d in dirs {
        let child = dir.join(d);
        ensure(&child, &dir)?;
        dir = child;
    }
    Ok(dir)
}

/// A notification that must be sent because its object was (or is about to be) stored.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct OutboxRecord {
    bucket: String,
    key: String,
}

/// Writes and fsyncs an outbox record (and its directory entry) before the object's rename.
fn write_outbox_record(path: &Path, bucket: &str, key: &str) -> std::io::Result<()> {
    let record = OutboxRecord {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    };
    let bytes = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
    let mut file = std::fs::File::create(path)?;
    std::io::Write::write_all(&mut file, &bytes)?;
    file.sync_all()?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

fn is_absent(e: &std::io::Error) -> bool {
    // NotADirectory: a key "a/b" when "a" is an object.
    matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

fn sweep_temp(tmp: &Path) -> std::io::Result<u64> {
    let our_pid = std::process::id();
    let mut swept = 0;
    for entry in std::fs::read_dir(tmp)? {
        let entry = entry?;
        let name = entry.file_name();
        let age = entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok());
        if temp_is_orphan(&name.to_string_lossy(), our_pid, age) {
            let path = entry.path();
            let removed = if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Ok(()) => swept += 1,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(swept)
}

/// Walks `dir` (relative key prefix `rel`) collecting every file as a key.
fn walk(dir: &Path, rel: &str, prefix: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if is_absent(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue; // not created by us
        };
        let key = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let ft = entry.file_type()?;
        if ft.is_dir() {
            // Descend only where keys below could match the prefix.
            let as_prefix = format!("{key}/");
            if as_prefix.starts_with(prefix) || prefix.starts_with(&as_prefix) {
                walk(&entry.path(), &key, prefix, out)?;
            }
        } else if ft.is_file() && key.starts_with(prefix) {
            out.push(key);
        }
    }
    Ok(())
}

#[async_trait]
impl ObjectStorage for FsObjectStorage {
    async fn presign_put(
        &self,
        bucket: &str,
        key: &str,
        options: &PresignOptions,
    ) -> Result<String> {
        self.presign(SignedMethod::Put, bucket, key, options)
    }

    async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        options: &PresignOptions,
    ) -> Result<String> {
        self.presign(SignedMethod::Get, bucket, key, options)
    }

    async fn put_stream(
        &self,
        bucket: &str,
        key: &str,
        mut body: ByteStream,
    ) -> Result<ObjectMeta> {
        self.object_path(bucket, key)?;
        let tmp = self.new_temp_path();
        let file = tokio::fs::File::create(&tmp).await.map_err(|e| {
            PlatformError::backend(format!("creating temp file {}", tmp.display()), e)
        })?;
        let guard = TempGuard { path: Some(tmp) };
        let mut writer = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
        let write_err = |e| PlatformError::backend(format!("writing object {bucket}/{key}"), e);
        while let Some(chunk) = body.next().await {
            let chunk: Bytes = chunk.map_err(|e| {
                PlatformError::backend(format!("reading the body of {bucket}/{key}"), e)
            })?;
            writer.write_all(&chunk).await.map_err(write_err)?;
        }
        writer.flush().await.map_err(write_err)?;
        let file = writer.into_inner();
        file.sync_all().await.map_err(write_err)?;
        drop(file);
        self.commit(guard, bucket, key).await
    }

    async fn put_file(&self, bucket: &str, key: &str, path: &Path) -> Result<ObjectMeta> {
        self.object_path(bucket, key)?;
        let tmp = self.new_temp_path();
        let guard = TempGuard {
            path: Some(tmp.clone()),
        };
        let src = path.to_path_buf();
        blocking(move || {
            std::fs::copy(&src, &tmp)?;
            std::fs::OpenOptions::new()
                .write(true)
                .open(&tmp)?
                .sync_all()
        })
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => PlatformError::NotFound(format!("file {}", path.display())),
            _ => {
                PlatformError::backend(format!("copying {} into {bucket}/{key}", path.display()), e)
            }
        })?;
        self.commit(guard, bucket, key).await
    }

    async fn get_stream(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<ByteStream> {
        self.open_object(bucket, key)
            .await?
            .into_stream(range)
            .await
    }

    async fn get_to_file(&self, bucket: &str, key: &str, path: &Path) -> Result<u64> {
        let src = self.object_path(bucket, key)?;
        let dst = path.to_path_buf();
        let copied = blocking(move || {
            // Open the source first, so a missing object is told apart from a bad destination.
            let mut from = match std::fs::File::open(&src) {
                Ok(f) if f.metadata()?.is_file() => f,
                Ok(_) => return Ok(None),
                Err(e) if is_absent(&e) => return Ok(None),
                Err(e) => return Err(e),
            };
            let mut to = std::fs::File::create(&dst)?;
            Ok(Some(std::io::copy(&mut from, &mut to)?))
        })
        .await
        .map_err(|e| {
            PlatformError::backend(format!("copying {bucket}/{key} to {}", path.display()), e)
        })?;
        copied.ok_or_else(|| not_found(bucket, key))
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectMeta>> {
        let path = self.object_path(bucket, key)?;
        match tokio::fs::metadata(&path).await {
            Ok(md) if md.is_file() => Ok(Some(meta_of(&md))),
            Ok(_) => Ok(None),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(PlatformError::backend(
                format!("reading metadata of {bucket}/{key}"),
                e,
            )),
        }
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<()> {
        let path = self.object_path(bucket, key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if is_absent(&e) || e.kind() == ErrorKind::IsADirectory => return Ok(()),
            Err(e) => {
                return Err(PlatformError::backend(
                    format!("deleting {bucket}/{key}"),
                    e,
                ));
            }
        }
        if let Some(parent) = path.parent() {
            self.prune_empty_dirs(bucket, parent.to_path_buf()).await;
        }
        Ok(())
    }

    async fn delete_prefix(&self, bucket: &str, prefix: &str) -> Result<u64> {
        let keys = self.list_prefix(bucket, prefix).await?;
        let mut deleted = 0;
        for key in &keys {
            let path = self.object_path(bucket, key)?;
            match tokio::fs::remove_file(&path).await {
                Ok(()) => deleted += 1,
                Err(e) if is_absent(&e) => {}
                Err(e) => {
                    return Err(PlatformError::backend(
                        format!("deleting {bucket}/{key}"),
                        e,
                    ));
                }
            }
            if let Some(parent) = path.parent() {
                self.prune_empty_dirs(bucket, parent.to_path_buf()).await;
            }
        }
        Ok(deleted)
    }

    async fn list_prefix(&self, bucket: &str, prefix: &str) -> Result<Vec<String>> {
        validate_bucket(bucket)?;
        if prefix.contains('\0') || prefix.contains('\\') {
            return Err(PlatformError::Invalid(format!(
                "prefix {:?} contains NUL or a backslash",
                truncate(prefix)
            )));
        }
        // Start the walk at the deepest directory the prefix fully names, if it is a valid key.
        let (start_rel, start_dir) = match prefix.rsplit_once('/') {
            Some((dir, _)) if validate_key(dir).is_ok() => {
                let mut path = self.root.join(bucket);
                path.extend(dir.split('/'));
                (dir.to_owned(), path)
            }
            Some(_) => return Ok(Vec::new()), // no valid key can start with it
            None => (String::new(), self.root.join(bucket)),
        };
        let prefix = prefix.to_owned();
        let mut keys = blocking(move || {
            let mut out = Vec::new();
            walk(&start_dir, &start_rel, &prefix, &mut out)?;
            Ok(out)
        })
        .await
        .map_err(|e| PlatformError::backend(format!("listing bucket {bucket}"), e))?;
        keys.sort_unstable();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_escape_are_invalid() {
        for bad in [
            "", "/abs", "a/", "a//b", "..", "../x", "a/../b", "a/..", ".", "./a", "a/./b", "a\\b",
            "a\0b",
        ] {
            assert!(
                matches!(validate_key(bad), Err(PlatformError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(validate_key(&"a".repeat(256)).is_err());
        assert!(validate_key(&format!("{}/x", "a/".repeat(600))).is_err());
        for good in [
            "a",
            "input/x/source.mp4",
            "a b+c%é",
            "...",
            "..a",
            ".hidden/x",
        ] {
            assert!(validate_key(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn bucket_names() {
        for bad in [
            "",
            "ab",
            ".tmp",
            "-a1",
            "A-b",
            "a/b",
            "a..b",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(validate_bucket(bad).is_err(), "{bad:?}");
        }
        for good in ["abc", "in-bucket", "a.b.c", "0ab"] {
            assert!(validate_bucket(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn ranges_resolve_like_http() {
        let r = |start, end| ByteRange { start, end };
        assert_eq!(resolve_range(r(0, None), 10).unwrap(), (0, 9));
        assert_eq!(resolve_range(r(2, Some(4)), 10).unwrap(), (2, 4));
        assert_eq!(resolve_range(r(2, Some(100)), 10).unwrap(), (2, 9));
        assert!(resolve_range(r(10, None), 10).is_err());
        assert!(resolve_range(r(5, Some(4)), 10).is_err());
        assert!(resolve_range(r(0, None), 0).is_err());
    }

    #[test]
    fn orphan_detection() {
        let me = std::process::id();
        assert!(temp_is_orphan("junk", me, None));
        assert!(!temp_is_orphan(&format!("{me}.00.tmp"), me, None));
        // pid 1 always runs on Linux.
        if Path::new("/proc/1").exists() {
            assert!(!temp_is_orphan("1.00.tmp", me, None));
            assert!(temp_is_orphan("4294967295.00.tmp", me, None));
        }
    }
}
