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
    ///
    /// Reading from the engine overlaps with hashing and writing: each [`CHUNK_BYTES`] chunk is
    /// hashed and written on the blocking pool while the next one is read, so memory stays at
    /// two chunks whatever the size and however the engine's frames are cut.
    pub async fn write_output(&self, name: &str, mut body: Body, idle: Duration) -> Result<Written, String> {
        let (path, file, tmp_path) = self.temp_output(name)?;
        let what = format!("artifact '{name}'");
        let mut jobs = Jobs::new(file, None, CHUNK_BYTES);
        let mut size = 0u64;
        while let Some(mut data) = next_data(&mut body, idle, &what).await? {
            size += data.len() as u64;
            self.check_cap(size, || format!("'{name}'"))?;
            while !data.is_empty() {
                if jobs.is_full() {
                    jobs.emit(None).await?;
                }
                jobs.fill(&mut data);
            }
        }
        if !jobs.is_empty() {
            jobs.emit(None).await?;
        }
        let (file, _, sha256) = jobs.settle().await?;
        drop(file);
        tmp_path.persist(&path).map_err(|e| format!("cannot move artifact '{name}' into place at {}: {}", path.display(), e.error))?;
        self.written.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
        Ok(Written { path, size, sha256: hex::encode(sha256.finalize()) })
    }

    /// Refuses `more` bytes beyond what the invocation's output artifacts already hold, if
    /// that goes over its cap (`what` names where they were going; called per frame, so it is
    /// only spelled out for the refusal).
    fn check_cap(&self, more: u64, what: impl FnOnce() -> String) -> Result<(), String> {
        if let Some(max) = self.max_bytes {
            if self.written.load(std::sync::atomic::Ordering::Relaxed) + more > max {
                return Err(format!("{ARTIFACT_LIMIT} of {max} per invocation exceeded while writing {}; nothing was kept", what()));
            }
        }
        Ok(())
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
        arts.check_cap(self.size + more, || format!("'{}'", self.artifact))
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
        let mut jobs = Jobs::new(file, Some(std::mem::take(&mut self.hasher)), PART_BYTES);
        let what = format!("'{name}' in artifact '{artifact}'");
        let mut names = Vec::new();
        let mut size = 0u64;
        let mut tar_bytes = 0u64;
        while let Some(mut data) = next_data(&mut body, idle, &what).await? {
            size += data.len() as u64;
            arts.check_cap(self.size + tar_bytes + 512 + size, || format!("'{name}' into '{artifact}'"))?;
            while !data.is_empty() {
                if jobs.is_full() {
                    // A full part with more to come: the body takes several members.
                    let part_name = self.part_name(name, names.len())?;
                    tar_bytes += jobs.emit(Some(&part_name)).await?;
                    names.push(part_name);
                }
                jobs.fill(&mut data);
            }
        }
        let last = if names.is_empty() { name.to_string() } else { self.part_name(name, names.len())? };
        tar_bytes += jobs.emit(Some(&last)).await?;
        names.push(last);
        let (file, tar_hash, body_hash) = jobs.settle().await?;
        self.file = Some(file);
        self.hasher = tar_hash.expect("a tar's jobs hash the tar");
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

/// Bytes of a plain output artifact per write (and hash) job.
const CHUNK_BYTES: usize = 1 << 20;

/// The next data frame of `body` (trailers are skipped), `None` at its end; an error names
/// `what` was being written, also when the engine sent nothing for `idle`.
async fn next_data(body: &mut Body, idle: Duration, what: &str) -> Result<Option<Bytes>, String> {
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(format!("the engine stopped sending for {idle:?} while writing {what}")),
            Ok(None) => return Ok(None),
            Ok(Some(Err(e))) => return Err(format!("reading the engine's response for {what} failed: {e}")),
            Ok(Some(Ok(f))) => {
                if let Ok(data) = f.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// A streamed body's way to a file: its bytes are copied into a buffer of at most `cap`
/// bytes, and each full buffer is handed to one job on the blocking pool while the next one
/// fills. The job walks the buffer in [`SLICE_BYTES`] slices and does everything to a slice
/// while it is in the core's cache: for a tar member it hashes the tar (header, data,
/// padding), it hashes the body, and it writes the slice to the file. Read once from memory
/// instead of once per hasher and once for the write, a gigabyte costs about a second less
/// of CPU (most of it the kernel's copy out of a buffer no longer in cache). The job runs
/// one buffer behind the reader; the file and the hashers travel with it and come back. Two
/// buffers in all, reused.
///
/// Frames are copied, never kept: a frame is a slice of the connection's read buffer (256
/// KiB), so keeping small frames until a buffer's worth arrived would keep a read buffer per
/// frame alive — tens of MiB when the engine's writes come in small pieces.
struct Jobs {
    /// The file and the hashers, here while no job holds them.
    state: Option<JobState>,
    /// The job in flight gives back its buffer with the file and the hashers.
    job: Option<tokio::task::JoinHandle<(Vec<u8>, std::io::Result<JobState>)>>,
    /// The buffer filling now, and the last one a job gave back (to fill next).
    part: Vec<u8>,
    spare: Vec<u8>,
    cap: usize,
}

struct JobState {
    file: std::fs::File,
    /// The tar's hasher, for tar members (`None` for a plain artifact, where the file is the body).
    tar_hash: Option<Sha256>,
    body_hash: Sha256,
}

impl JobState {
    /// Hashes and writes a tar member (`header`, `data`, `pad` zeros) or plain `data`, one
    /// [`SLICE_BYTES`] slice at a time: the body's hasher takes the data, the tar's hasher
    /// everything that goes into the file.
    fn write(&mut self, header: Option<&[u8]>, data: &[u8], pad: usize) -> std::io::Result<()> {
        if let Some(h) = header {
            self.put(h)?;
        }
        for slice in data.chunks(SLICE_BYTES) {
            self.body_hash.update(slice);
            self.put(slice)?;
        }
        self.put(&[0u8; 512][..pad])
    }

    /// Bytes that go into the file as they are: into the tar's hash (if a tar) and the file.
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        if let Some(h) = &mut self.tar_hash {
            h.update(bytes);
        }
        self.file.write_all(bytes)
    }
}

/// Bytes a job hashes and writes at a time: small enough to stay in a core's L2 cache
/// between the hashers and the write.
const SLICE_BYTES: usize = 128 << 10;

fn joined(e: tokio::task::JoinError) -> String {
    format!("the artifact writer failed: {e}")
}

impl Jobs {
    fn new(file: std::fs::File, tar_hash: Option<Sha256>, cap: usize) -> Self {
        Jobs { state: Some(JobState { file, tar_hash, body_hash: Sha256::new() }), job: None, part: Vec::new(), spare: Vec::new(), cap }
    }

    fn is_full(&self) -> bool {
        self.part.len() == self.cap
    }

    fn is_empty(&self) -> bool {
        self.part.is_empty()
    }

    /// Moves as much of `data` into the filling buffer as fits. The buffer grows with what
    /// it holds (a small member never takes `cap`), doubling up to `cap`.
    fn fill(&mut self, data: &mut Bytes) {
        let n = (self.cap - self.part.len()).min(data.len());
        let want = self.part.len() + n;
        if want > self.part.capacity() {
            let target = want.max((2 * self.part.capacity()).min(self.cap));
            self.part.reserve_exact(target - self.part.len());
        }
        self.part.extend_from_slice(&data.split_to(n));
    }

    /// Waits for the job in flight; the file and the hashers are back.
    async fn idle(&mut self) -> Result<(), String> {
        if let Some(job) = self.job.take() {
            let (buf, done) = job.await.map_err(joined)?;
            self.spare = buf;
            self.state = Some(done.map_err(|e| format!("writing the artifact failed: {e}"))?);
        }
        Ok(())
    }

    /// Hands the filled buffer to a job once the previous one is through, as a tar member
    /// named `member` (header, data, padding) or as plain bytes; returns the bytes it adds
    /// to the file. The buffer the job gave back fills next.
    async fn emit(&mut self, member: Option<&str>) -> Result<u64, String> {
        self.idle().await?;
        let mut spare = std::mem::take(&mut self.spare);
        spare.clear();
        let data = std::mem::replace(&mut self.part, spare);
        let len = data.len();
        let (header, pad) = match member {
            Some(name) => (Some(*tar_header(name, len as u64)?.as_bytes()), (512 - len % 512) % 512),
            None => (None, 0),
        };
        let mut st = self.state.take().expect("idle");
        assert_eq!(header.is_some(), st.tar_hash.is_some(), "a tar member's job hashes the tar");
        self.job = Some(tokio::task::spawn_blocking(move || {
            let done = st.write(header.as_ref().map(|h| &h[..]), &data, pad);
            (data, done.map(|()| st))
        }));
        Ok((header.map_or(0, |_| 512) + len + pad) as u64)
    }

    /// Waits for the last job: the file, the tar's hasher (if a tar) and the body's.
    async fn settle(mut self) -> Result<(std::fs::File, Option<Sha256>, Sha256), String> {
        self.idle().await?;
        let st = self.state.expect("idle");
        Ok((st.file, st.tar_hash, st.body_hash))
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
        let failing =
            futures_util::stream::iter(vec![Ok(http_body::Frame::data(Bytes::from_static(b"part"))), Err(Box::new(std::io::Error::other("boom")) as BoxError)]);
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
        let failing =
            futures_util::stream::iter(vec![Ok(http_body::Frame::data(Bytes::from_static(b"part"))), Err(Box::new(std::io::Error::other("boom")) as BoxError)]);
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
        let want = [
            ("first.json", 2),
            ("fs/export.tar.0000", PART_BYTES),
            ("fs/export.tar.0001", PART_BYTES),
            ("fs/export.tar.0002", 5),
            ("exact.bin", PART_BYTES),
            ("empty", 0),
        ];
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

    /// A frame that counts itself alive in `live` until dropped, like a slice of a read buffer.
    struct Counted(Vec<u8>, std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl AsRef<[u8]> for Counted {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }
    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// `n` frames of `len` bytes; `most` ends as the most frames alive when one more was asked.
    fn counted_frames(n: usize, len: usize, most: std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Body {
        use std::sync::atomic::Ordering::SeqCst;
        let live = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stream = futures_util::StreamExt::map(futures_util::stream::iter(0..n), move |i| {
            most.fetch_max(live.load(SeqCst), SeqCst);
            live.fetch_add(1, SeqCst);
            Ok::<_, BoxError>(http_body::Frame::data(Bytes::from_owner(Counted(vec![i as u8; len], live.clone()))))
        });
        http_body_util::StreamBody::new(stream).boxed()
    }

    #[tokio::test]
    async fn small_frames_are_copied_not_kept() {
        // 16 KiB frames, as when the engine's writes arrive one by one: were frames kept until
        // a chunk's worth had come, 64 of them (and their read buffers) would be alive.
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let dir = tempfile::tempdir().unwrap();
        let mut a = Artifacts::default();
        a.output("out", dir.path().join("out.bin"));
        a.output("tar", dir.path().join("out.tar"));
        let most = std::sync::Arc::new(AtomicUsize::new(0));
        let w = a.write_output("out", counted_frames(1024, 16 << 10, most.clone()), Duration::from_secs(5)).await.unwrap();
        assert_eq!(w.size, 16 << 20);
        assert!(most.load(SeqCst) <= 1, "{} frames were alive at once", most.load(SeqCst));
        let most = std::sync::Arc::new(AtomicUsize::new(0));
        let mut t = a.open_tar("tar").unwrap();
        assert_eq!(t.add_body(&a, "m", counted_frames(1024, 16 << 10, most.clone()), Duration::from_secs(5)).await.unwrap().0, 16 << 20);
        assert!(most.load(SeqCst) <= 1, "{} frames were alive at once", most.load(SeqCst));
        t.finish(&a).unwrap();
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
