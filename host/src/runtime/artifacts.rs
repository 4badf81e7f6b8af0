//! Host-managed artifacts: files the host opens for a guest that only names them. Output
//! artifacts are written to a temporary file beside the target and renamed on success, so a
//! failed or interrupted transfer leaves nothing behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::engine::{Body, BoxError};

#[derive(Debug, Clone)]
pub enum Artifact {
    /// A file the host streams into a request body.
    Input(PathBuf),
    /// A file the host writes a response body into.
    Output(PathBuf),
}

/// The artifacts one invocation may use, by the names the guest knows them by.
#[derive(Debug, Clone, Default)]
pub struct Artifacts {
    map: HashMap<String, Artifact>,
    /// Bytes all output artifacts of one invocation may hold together (server mode: the
    /// per-invocation cap, further bounded by what is left of the tenant's quota).
    max_bytes: Option<u64>,
    written: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// The start of the message of an artifact that went over its byte cap.
pub const ARTIFACT_LIMIT: &str = "artifact byte limit";

/// What was written to an output artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

impl Artifacts {
    /// Whether any output artifact is named (only then can bytes be written).
    pub fn has_outputs(&self) -> bool {
        self.map.values().any(|a| matches!(a, Artifact::Output(_)))
    }

    /// Caps the bytes this invocation's output artifacts may hold together.
    pub fn cap_bytes(&mut self, max: u64) {
        self.max_bytes = Some(max);
    }

    pub fn input(&mut self, name: &str, path: impl Into<PathBuf>) -> &mut Self {
        self.map.insert(name.to_string(), Artifact::Input(path.into()));
        self
    }
    pub fn output(&mut self, name: &str, path: impl Into<PathBuf>) -> &mut Self {
        self.map.insert(name.to_string(), Artifact::Output(path.into()));
        self
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn lookup(&self, name: &str) -> Result<&Artifact, String> {
        self.map.get(name).ok_or_else(|| {
            let mut known: Vec<&str> = self.map.keys().map(String::as_str).collect();
            known.sort();
            if known.is_empty() {
                format!("artifact '{name}' was not provided (the CLI takes --in PATH / --out PATH)")
            } else {
                format!("artifact '{name}' was not provided (have: {})", known.join(", "))
            }
        })
    }

    /// Checks that `name` is a provided output artifact, before anything is sent.
    pub fn check_output(&self, name: &str) -> Result<(), String> {
        match self.lookup(name)? {
            Artifact::Output(_) => Ok(()),
            Artifact::Input(_) => Err(format!("artifact '{name}' is an input, not an output")),
        }
    }

    /// Opens an input artifact as a streamed body; returns it with its size.
    pub async fn open_input(&self, name: &str) -> Result<(Body, u64), String> {
        let Artifact::Input(path) = self.lookup(name)? else {
            return Err(format!("artifact '{name}' is an output, not an input"));
        };
        let file = tokio::fs::File::open(path).await.map_err(|e| format!("cannot open input artifact '{name}' ({}): {e}", path.display()))?;
        let size = file.metadata().await.map_err(|e| format!("cannot stat input artifact '{name}': {e}"))?.len();
        Ok((file_body(file), size))
    }

    /// Streams `body` into the output artifact `name`, through a temp file renamed on success.
    /// Like `docker export -o`, the data is not fsynced; the rename makes a complete file
    /// appear at once, and a failure leaves nothing.
    pub async fn write_output(&self, name: &str, body: Body, idle: Duration) -> Result<Written, String> {
        let (path, file, tmp_path) = self.temp_output(name)?;
        let path = &path;
        let (file, size, sha256) = self.pipe(name, body, file, idle, 0).await?;
        drop(file);
        tmp_path.persist(path).map_err(|e| format!("cannot move artifact '{name}' into place at {}: {}", path.display(), e.error))?;
        self.written.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
        Ok(Written { path: path.clone(), size, sha256 })
    }

    /// Streams `body` into `file` at its position, hashing it; returns the file, the bytes
    /// written and their sha256. `already` bytes of this artifact count against the cap.
    ///
    /// Reading from the engine overlaps with hashing and writing: each 1 MiB chunk is hashed
    /// and written on the blocking pool while the next one is read, so memory stays at about
    /// two chunks whatever the size.
    async fn pipe(&self, name: &str, mut body: Body, file: std::fs::File, idle: Duration, already: u64) -> Result<(std::fs::File, u64, String), String> {
        const CHUNK: usize = 1 << 20;
        let write_err = |e: std::io::Error| format!("writing artifact '{name}' failed: {e}");
        // Two pipelines on the blocking pool, each one chunk behind the reader: one hashes,
        // one writes. The file and the hasher travel with their jobs and come back.
        let mut file_idle = Some(file);
        let mut hasher_idle = Some(Sha256::new());
        let mut writing: Option<tokio::task::JoinHandle<std::io::Result<std::fs::File>>> = None;
        let mut hashing: Option<tokio::task::JoinHandle<Sha256>> = None;
        let joined = |e: tokio::task::JoinError| format!("artifact writer failed: {e}");
        // Frames are kept as they arrive (no copy) until a chunk's worth is pending.
        let mut pending: Vec<Bytes> = Vec::new();
        let mut pending_len = 0usize;
        let mut size = 0u64;
        loop {
            let frame = match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => return Err(format!("the engine stopped sending for {idle:?} while writing artifact '{name}'")),
                Ok(None) => None,
                Ok(Some(Err(e))) => return Err(format!("reading the engine's response for artifact '{name}' failed: {e}")),
                Ok(Some(Ok(f))) => Some(f),
            };
            let done = frame.is_none();
            if let Some(data) = frame.and_then(|f| f.into_data().ok()) {
                size += data.len() as u64;
                if let Some(max) = self.max_bytes {
                    let before = self.written.load(std::sync::atomic::Ordering::Relaxed);
                    if before + already + size > max {
                        return Err(format!("{ARTIFACT_LIMIT} of {max} per invocation exceeded while writing '{name}'; nothing was kept"));
                    }
                }
                pending_len += data.len();
                pending.push(data);
            }
            if pending_len >= CHUNK || (done && pending_len > 0) {
                let chunk = std::sync::Arc::new(std::mem::take(&mut pending));
                pending_len = 0;
                let mut file = match writing.take() {
                    Some(job) => job.await.map_err(joined)?.map_err(write_err)?,
                    None => file_idle.take().expect("the file is idle when no write is in flight"),
                };
                let mut hasher = match hashing.take() {
                    Some(job) => job.await.map_err(joined)?,
                    None => hasher_idle.take().expect("the hasher is idle when no hash is in flight"),
                };
                let for_hash = chunk.clone();
                hashing = Some(tokio::task::spawn_blocking(move || {
                    for piece in for_hash.iter() {
                        hasher.update(piece);
                    }
                    hasher
                }));
                writing = Some(tokio::task::spawn_blocking(move || {
                    use std::io::Write;
                    for piece in chunk.iter() {
                        file.write_all(piece)?;
                    }
                    Ok(file)
                }));
            }
            if done {
                break;
            }
        }
        let file = match writing.take() {
            Some(job) => job.await.map_err(joined)?.map_err(write_err)?,
            None => file_idle.take().expect("the file is idle when no write is in flight"),
        };
        let hasher = match hashing.take() {
            Some(job) => job.await.map_err(joined)?,
            None => hasher_idle.take().expect("the hasher is idle when no hash is in flight"),
        };
        Ok((file, size, hex::encode(hasher.finalize())))
    }

    /// Opens the output artifact `name` as a tar (a temp file beside it until finished).
    pub fn open_tar(&self, name: &str) -> Result<TarFile, String> {
        let (path, file, tmp) = self.temp_output(name)?;
        Ok(TarFile { artifact: name.to_string(), path, tmp: Some(tmp), file: Some(file), size: 0, hasher: Sha256::new(), names: Default::default() })
    }

    /// The output artifact `name`'s path and a temp file beside it (removed unless persisted).
    fn temp_output(&self, name: &str) -> Result<(PathBuf, std::fs::File, tempfile::TempPath), String> {
        let Artifact::Output(path) = self.lookup(name)? else {
            return Err(format!("artifact '{name}' is an input, not an output"));
        };
        let dir = parent_dir(path);
        let tmp = tempfile::Builder::new()
            .prefix(".berth-")
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(|e| format!("cannot create a temp file in {}: {e}", dir.display()))?;
        let (file, tmp) = tmp.into_parts();
        Ok((path.clone(), file, tmp))
    }
}

/// An output artifact being written as a tar; dropped unfinished, its temp file goes too.
pub struct TarFile {
    artifact: String,
    path: PathBuf,
    tmp: Option<tempfile::TempPath>,
    file: Option<std::fs::File>,
    /// Bytes written so far (headers and padding included).
    size: u64,
    /// The sha256 of those bytes.
    hasher: Sha256,
    names: std::collections::HashSet<String>,
}

/// Member names: relative, no `..`, printable, at most 100 bytes (a plain ustar name).
fn member_name_ok(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.len() > 100
        || name.starts_with('/')
        || name.split('/').any(|s| s.is_empty() || s == "." || s == "..")
        || name.chars().any(char::is_control);
    if bad {
        return Err(format!("tar member name '{}' must be a relative path of at most 100 bytes without '.', '..' or empty segments", name.escape_debug()));
    }
    Ok(())
}

fn tar_header(name: &str, size: u64) -> Result<tar::Header, String> {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).map_err(|e| format!("tar member name '{name}': {e}"))?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mtime(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0));
    h.set_cksum();
    Ok(h)
}

impl TarFile {
    pub fn check_name(&self, name: &str) -> Result<(), String> {
        member_name_ok(name)?;
        if self.names.contains(name) {
            return Err(format!("tar member '{name}' was already added"));
        }
        Ok(())
    }

    /// The open file; gone once a write failed, since what it holds is no tar any more (the
    /// temp file goes when the writer is dropped).
    fn file(&mut self) -> Result<&mut std::fs::File, String> {
        let artifact = &self.artifact;
        self.file.as_mut().ok_or_else(|| format!("tar artifact '{artifact}' can take no more members: an earlier one failed"))
    }

    /// Appends `parts`; a failed write leaves the tar unusable.
    fn write(&mut self, parts: &[&[u8]]) -> Result<(), String> {
        use std::io::Write;
        let f = self.file()?;
        let r = parts.iter().try_for_each(|p| f.write_all(p));
        if let Err(e) = r {
            self.file = None;
            return Err(format!("writing the tar failed: {e}"));
        }
        for p in parts {
            self.hasher.update(p);
        }
        self.size += parts.iter().map(|p| p.len() as u64).sum::<u64>();
        Ok(())
    }

    fn pad(&mut self, len: u64) -> Result<(), String> {
        let pad = (512 - len % 512) % 512;
        self.write(&[&vec![0u8; pad as usize]])
    }

    fn over_cap(&self, arts: &Artifacts, more: u64) -> Result<(), String> {
        if let Some(max) = arts.max_bytes {
            if arts.written.load(std::sync::atomic::Ordering::Relaxed) + self.size + more > max {
                return Err(format!("{ARTIFACT_LIMIT} of {max} per invocation exceeded while writing '{}'; nothing was kept", self.artifact));
            }
        }
        Ok(())
    }

    /// Adds a member holding `data`; returns its size and sha256.
    pub fn add_bytes(&mut self, arts: &Artifacts, name: &str, data: &[u8]) -> Result<(u64, String), String> {
        self.check_name(name)?;
        self.over_cap(arts, 512 + data.len() as u64)?;
        let h = tar_header(name, data.len() as u64)?;
        self.write(&[h.as_bytes(), data])?;
        self.pad(data.len() as u64)?;
        self.names.insert(name.to_string());
        Ok((data.len() as u64, hex::encode(Sha256::digest(data))))
    }

    /// Streams `body` into the tar, one part of at most [`PART_BYTES`] at a time, each written
    /// and hashed on the blocking pool while the next is read: a body that fits in one part is
    /// one member `name`; a bigger one is stored as consecutive members `name.0000`,
    /// `name.0001`, … (concatenated in order they are the body). Every header is written
    /// knowing its member's size, so nothing is patched afterwards and the tar's own sha256 is
    /// computed as it is written. Returns the whole body's size and sha256. If the body fails
    /// midway, the tar can take no more members.
    pub async fn add_body(&mut self, arts: &Artifacts, name: &str, mut body: Body, idle: Duration) -> Result<(u64, String), String> {
        self.check_name(name)?;
        let artifact = self.artifact.clone();
        let file = self.file.take().ok_or_else(|| format!("tar artifact '{artifact}' can take no more members: an earlier one failed"))?;
        // From here the file is only put back once the member is whole.
        let mut jobs = PartJobs { file: Some(file), tar_hash: Some(std::mem::take(&mut self.hasher)), body_hash: Some(Sha256::new()), writing: None, hashing: None, summing: None, in_flight: None, spare: None };
        // Frames are copied into the part's buffer (two buffers in all, reused): a frame is a
        // slice of a bigger read buffer, and holding frames would hold those.
        let mut part: Vec<u8> = Vec::new();
        let mut parts = 0usize;
        let mut names = Vec::new();
        let mut size = 0u64;
        let mut tar_bytes = 0u64;
        loop {
            let frame = match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => return Err(format!("the engine stopped sending for {idle:?} while writing '{name}' into artifact '{artifact}'")),
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(format!("reading the engine's response for '{name}' in artifact '{artifact}' failed: {e}")),
                Ok(Some(Ok(f))) => f,
            };
            let Ok(mut data) = frame.into_data() else { continue };
            size += data.len() as u64;
            if let Some(max) = arts.max_bytes {
                let before = arts.written.load(std::sync::atomic::Ordering::Relaxed);
                if before + self.size + tar_bytes + 512 + size > max {
                    return Err(format!("{ARTIFACT_LIMIT} of {max} per invocation exceeded while writing '{name}' into '{artifact}'; nothing was kept"));
                }
            }
            while !data.is_empty() {
                if part.len() == PART_BYTES {
                    // A full part with more to come: the body takes several members.
                    let part_name = self.part_name(name, parts)?;
                    let next = jobs.buffer();
                    tar_bytes += jobs.emit(&part_name, std::mem::replace(&mut part, next)).await?;
                    names.push(part_name);
                    parts += 1;
                }
                if part.capacity() == 0 {
                    part.reserve_exact(PART_BYTES);
                }
                let piece = data.split_to((PART_BYTES - part.len()).min(data.len()));
                part.extend_from_slice(&piece);
            }
        }
        let last = if parts == 0 { name.to_string() } else { self.part_name(name, parts)? };
        tar_bytes += jobs.emit(&last, part).await?;
        names.push(last);
        let (file, tar_hash, body_hash) = jobs.settle().await?;
        self.file = Some(file);
        self.hasher = tar_hash;
        self.size += tar_bytes;
        self.names.insert(name.to_string());
        self.names.extend(names);
        Ok((size, hex::encode(body_hash.finalize())))
    }

    /// The name of part `index` of the streamed member `name`.
    fn part_name(&self, name: &str, index: usize) -> Result<String, String> {
        if index >= MAX_PARTS {
            return Err(format!("tar member '{name}' is over {MAX_PARTS} parts of {PART_BYTES} bytes"));
        }
        let part = format!("{name}.{index:04}");
        self.check_name(&part).map_err(|e| format!("{e} (tar member '{name}' is bigger than {PART_BYTES} bytes and is stored in parts)"))?;
        Ok(part)
    }

    /// Ends the tar (two zero blocks) and renames it into place; its sha256 was computed as
    /// it was written.
    pub fn finish(mut self, arts: &Artifacts) -> Result<Written, String> {
        self.write(&[&[0u8; 1024]])?;
        drop(self.file.take().expect("open after a successful write"));
        let tmp = self.tmp.take().expect("open");
        tmp.persist(&self.path).map_err(|e| format!("cannot move artifact '{}' into place at {}: {}", self.artifact, self.path.display(), e.error))?;
        arts.written.fetch_add(self.size, std::sync::atomic::Ordering::Relaxed);
        let sha256 = hex::encode(std::mem::take(&mut self.hasher).finalize());
        Ok(Written { path: self.path.clone(), size: self.size, sha256 })
    }
}

/// Bytes of a streamed body per tar member: a bigger body is stored in parts of this size.
pub const PART_BYTES: usize = 8 << 20;
/// Parts one streamed member may take (80 GiB); the suffix keeps four digits so that the
/// parts sort in order.
const MAX_PARTS: usize = 10_000;

/// The three jobs a streamed member's parts go through on the blocking pool, each one part
/// behind the reader and in order: writing to the file, hashing the tar, hashing the body.
/// The file and the hashers travel with their jobs and come back.
struct PartJobs {
    file: Option<std::fs::File>,
    tar_hash: Option<Sha256>,
    body_hash: Option<Sha256>,
    writing: Option<tokio::task::JoinHandle<std::io::Result<std::fs::File>>>,
    hashing: Option<tokio::task::JoinHandle<Sha256>>,
    summing: Option<tokio::task::JoinHandle<Sha256>>,
    /// The part the jobs are on, and a buffer for the next one once they are through.
    in_flight: Option<std::sync::Arc<Vec<u8>>>,
    spare: Option<Vec<u8>>,
}

fn joined(e: tokio::task::JoinError) -> String {
    format!("the tar writer failed: {e}")
}

impl PartJobs {
    /// Waits for the jobs in flight; the file and the hashers are back.
    async fn idle(&mut self) -> Result<(), String> {
        if let Some(job) = self.writing.take() {
            self.file = Some(job.await.map_err(joined)?.map_err(|e| format!("writing the tar failed: {e}"))?);
        }
        if let Some(job) = self.hashing.take() {
            self.tar_hash = Some(job.await.map_err(joined)?);
        }
        if let Some(job) = self.summing.take() {
            self.body_hash = Some(job.await.map_err(joined)?);
        }
        // The jobs dropped their handles on the part: its buffer can take the next one.
        if let Some(mut buf) = self.in_flight.take().and_then(|a| std::sync::Arc::try_unwrap(a).ok()) {
            buf.clear();
            self.spare = Some(buf);
        }
        Ok(())
    }

    /// An empty buffer for the next part: the one the jobs gave back, if they are through.
    fn buffer(&mut self) -> Vec<u8> {
        self.spare.take().unwrap_or_default()
    }

    /// Hands one member (header, `part`, padding) to the jobs once the previous one is
    /// through; returns the bytes it adds to the tar.
    async fn emit(&mut self, name: &str, part: Vec<u8>) -> Result<u64, String> {
        self.idle().await?;
        let len = part.len();
        let header = *tar_header(name, len as u64)?.as_bytes();
        let pad = (512 - len % 512) % 512;
        let chunks = std::sync::Arc::new(part);
        self.in_flight = Some(chunks.clone());
        let (mut file, mut tar_hash, mut body_hash) = (self.file.take().expect("idle"), self.tar_hash.take().expect("idle"), self.body_hash.take().expect("idle"));
        let for_write = chunks.clone();
        self.writing = Some(tokio::task::spawn_blocking(move || {
            use std::io::Write;
            file.write_all(&header)?;
            file.write_all(&for_write)?;
            file.write_all(&[0u8; 512][..pad])?;
            Ok(file)
        }));
        let for_tar = chunks.clone();
        self.hashing = Some(tokio::task::spawn_blocking(move || {
            tar_hash.update(header);
            tar_hash.update(&*for_tar);
            tar_hash.update(&[0u8; 512][..pad]);
            tar_hash
        }));
        self.summing = Some(tokio::task::spawn_blocking(move || {
            body_hash.update(&*chunks);
            body_hash
        }));
        Ok((512 + len + pad) as u64)
    }

    async fn settle(mut self) -> Result<(std::fs::File, Sha256, Sha256), String> {
        self.idle().await?;
        Ok((self.file.expect("idle"), self.tar_hash.expect("idle"), self.body_hash.expect("idle")))
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A file as a streamed body, read in 256 KiB chunks.
pub(crate) fn file_body(file: tokio::fs::File) -> Body {
    let stream = futures_util::stream::unfold(Some(file), |state| async move {
        let mut file = state?;
        let mut buf = vec![0u8; 256 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(http_body::Frame::data(Bytes::from(buf))), Some(file)))
            }
            Err(e) => Some((Err(Box::new(e) as BoxError), None)),
        }
    });
    http_body_util::StreamBody::new(stream).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_is_atomic_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.tar");
        let mut a = Artifacts::default();
        a.output("out", &target);
        let w = a.write_output("out", crate::engine::full(Bytes::from_static(b"hello")), Duration::from_secs(1)).await.unwrap();
        assert_eq!(w.size, 5);
        assert_eq!(w.sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(std::fs::read(&target).unwrap(), b"hello");

        // A body that fails midway leaves neither the target nor a temp file.
        let failing = futures_util::stream::iter(vec![
            Ok(http_body::Frame::data(Bytes::from_static(b"part"))),
            Err(Box::new(std::io::Error::other("boom")) as BoxError),
        ]);
        let body = http_body_util::StreamBody::new(failing).boxed();
        let other = dir.path().join("other.tar");
        a.output("other", &other);
        let e = a.write_output("other", body, Duration::from_secs(1)).await.unwrap_err();
        assert!(e.contains("boom"), "{e}");
        assert!(!other.exists());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.tar")]);
    }

    #[tokio::test]
    async fn a_tar_of_bytes_and_streamed_members_reads_back_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("bundle.tar");
        let mut a = Artifacts::default();
        a.output("out", &target);
        let mut t = a.open_tar("out").unwrap();
        assert_eq!(t.add_bytes(&a, "inspect.json", b"{}").unwrap().0, 2);
        let big = vec![7u8; 3 << 20 | 5];
        let (len, sha) = t.add_body(&a, "fs/export.tar", crate::engine::full(Bytes::from(big.clone())), Duration::from_secs(5)).await.unwrap();
        assert_eq!((len, sha.as_str()), (big.len() as u64, hex::encode(Sha256::digest(&big)).as_str()));
        assert!(t.add_bytes(&a, "inspect.json", b"again").unwrap_err().contains("already added"));
        assert!(t.add_bytes(&a, "../escape", b"x").unwrap_err().contains("relative path"));
        assert!(!target.exists(), "nothing appears before finish");
        let w = t.finish(&a).unwrap();
        let bytes = std::fs::read(&target).unwrap();
        assert_eq!((w.size, w.sha256.as_str()), (bytes.len() as u64, hex::encode(Sha256::digest(&bytes)).as_str()));
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            seen.push((e.path().unwrap().to_string_lossy().into_owned(), data.len()));
        }
        assert_eq!(seen, vec![("inspect.json".to_string(), 2), ("fs/export.tar".to_string(), big.len())]);
        // A body that fails midway: the member is refused, and so is everything after it
        // (no panic, no half tar at the target).
        let mut c = Artifacts::default();
        let broken = dir.path().join("broken.tar");
        c.output("b", &broken);
        let mut t = c.open_tar("b").unwrap();
        let failing = futures_util::stream::iter(vec![Ok(http_body::Frame::data(Bytes::from_static(b"part"))), Err(Box::new(std::io::Error::other("boom")) as BoxError)]);
        let e = t.add_body(&c, "fs.tar", http_body_util::StreamBody::new(failing).boxed(), Duration::from_secs(1)).await.unwrap_err();
        assert!(e.contains("boom"), "{e}");
        assert!(t.add_bytes(&c, "after", b"x").unwrap_err().contains("an earlier one failed"));
        assert!(t.finish(&c).unwrap_err().contains("an earlier one failed"));
        assert!(!broken.exists());
        // Dropped unfinished: nothing is left.
        let mut b = Artifacts::default();
        let other = dir.path().join("other.tar");
        b.output("o", &other);
        let mut t = b.open_tar("o").unwrap();
        t.add_bytes(&b, "x", b"1").unwrap();
        drop(t);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// Frames of `sizes` bytes, numbered so that a part in the wrong place shows.
    fn frames(sizes: &[usize]) -> (Body, Vec<u8>) {
        let mut all = Vec::new();
        let mut frames = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            let f: Vec<u8> = (0..n).map(|j| (i * 7 + j / 4096) as u8).collect();
            all.extend_from_slice(&f);
            frames.push(Ok::<_, BoxError>(http_body::Frame::data(Bytes::from(f))));
        }
        (http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed(), all)
    }

    #[tokio::test]
    async fn a_body_over_one_part_is_stored_in_ordered_parts_and_the_tar_hash_is_the_file_s() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("bundle.tar");
        let mut a = Artifacts::default();
        a.output("out", &target);
        let mut t = a.open_tar("out").unwrap();
        t.add_bytes(&a, "first.json", b"[]").unwrap();
        // Two full parts and five bytes, in frames that straddle the part boundaries.
        let (big, big_bytes) = frames(&[3 << 20, PART_BYTES, PART_BYTES - (3 << 20), 5]);
        let (len, sha) = t.add_body(&a, "fs/export.tar", big, Duration::from_secs(5)).await.unwrap();
        assert_eq!((len, sha.as_str()), (big_bytes.len() as u64, hex::encode(Sha256::digest(&big_bytes)).as_str()));
        // Exactly one part's worth stays one member under its own name.
        let (exact, exact_bytes) = frames(&[PART_BYTES / 2, PART_BYTES / 2]);
        assert_eq!(t.add_body(&a, "exact.bin", exact, Duration::from_secs(5)).await.unwrap().0, PART_BYTES as u64);
        assert!(t.add_bytes(&a, "fs/export.tar.0001", b"x").unwrap_err().contains("already added"), "a part's name is taken");
        let (empty, _) = frames(&[]);
        assert_eq!(t.add_body(&a, "empty", empty, Duration::from_secs(5)).await.unwrap().0, 0);
        let w = t.finish(&a).unwrap();
        let bytes = std::fs::read(&target).unwrap();
        assert_eq!((w.size, w.sha256.as_str()), (bytes.len() as u64, hex::encode(Sha256::digest(&bytes)).as_str()));
        let mut seen = Vec::new();
        let mut joined = Vec::new();
        for e in tar::Archive::new(&bytes[..]).entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            if name.starts_with("fs/export.tar.") {
                joined.extend_from_slice(&data);
            }
            if name == "exact.bin" {
                assert_eq!(data, exact_bytes);
            }
            seen.push((name, data.len()));
        }
        let want = [("first.json", 2), ("fs/export.tar.0000", PART_BYTES), ("fs/export.tar.0001", PART_BYTES), ("fs/export.tar.0002", 5), ("exact.bin", PART_BYTES), ("empty", 0)];
        assert_eq!(seen, want.iter().map(|(n, l)| (n.to_string(), *l)).collect::<Vec<_>>());
        assert_eq!(joined, big_bytes, "the parts, in order, are the body");
        // A name too long for its part suffix is refused clearly once the body needs parts.
        let mut c = Artifacts::default();
        c.output("c", dir.path().join("c.tar"));
        let mut t = c.open_tar("c").unwrap();
        let (body, _) = frames(&[PART_BYTES + 1]);
        let e = t.add_body(&c, &"n".repeat(98), body, Duration::from_secs(5)).await.unwrap_err();
        assert!(e.contains("stored in parts"), "{e}");
    }

    #[tokio::test]
    async fn unknown_and_wrong_direction() {
        let mut a = Artifacts::default();
        a.input("in", "/nonexistent/x.tar");
        assert!(a.write_output("in", crate::engine::full(Bytes::new()), Duration::from_secs(1)).await.unwrap_err().contains("is an input"));
        assert!(a.open_input("nope").await.err().unwrap().contains("'nope' was not provided"));
        assert!(a.open_input("in").await.err().unwrap().contains("cannot open input artifact 'in'"));
    }
}
