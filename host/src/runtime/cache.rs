//! The compile cache and the discovery index.
//!
//! - `<sha256>-<engine>.cwasm`: a precompiled component, keyed by the component's content hash
//!   and the engine's compatibility hash, in wasmtime's own format so it can be mapped
//!   straight from disk. Beside it, `.cwasm.sum` holds its XXH3-128 checksum and the entry's
//!   size, inode, mtime and ctime when that checksum was last verified: a corrupt, truncated,
//!   unchecked or stale entry is recompiled and rewritten, never trusted. A CLI run hashes an
//!   entry again only when its inode changed since; `berth serve` always does.
//! - `index.json`: per component file, its stat fingerprint, content hash, family and action
//!   names, and `describe()` output, so a CLI run knows which component owns an action
//!   without loading any other; a family's full description is parsed only when it is used
//!   (see [`super::discovery::Family`]).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

const SUM_PREFIX: &str = "xxh3-128:";
const INDEX_FORMAT: u32 = 2;

/// A directory of compiled components; `None` compiles every time.
/// Told around each compile (a cache miss: seconds of work), so that a CLI can say so.
pub trait CompileProgress: Send + Sync + 'static {
    /// `name` (a file) of `bytes` is being compiled.
    fn compiling(&self, name: &str, bytes: usize);
    /// It is compiled, in `took`.
    fn compiled(&self, name: &str, took: std::time::Duration);
}

#[derive(Clone)]
pub struct Cache {
    /// Told around each compile.
    pub(crate) progress: Option<std::sync::Arc<dyn CompileProgress>>,
    dir: Option<PathBuf>,
    engine_key: String,
    /// Map entries straight from disk (fast; for short-lived CLI processes). Otherwise copy
    /// them into memory, so a cache file truncated in place by someone else can never fault
    /// a long-running host.
    map_files: bool,
}

/// The default cache directory: `$BERTH_CACHE`, `$XDG_CACHE_HOME/berth` or `~/.cache/berth`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("BERTH_CACHE") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("berth"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/berth"))
}

/// How a component was obtained, for logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cached,
    Compiled,
}

impl Cache {
    pub fn new(dir: Option<PathBuf>, engine: &Engine, map_files: bool) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let engine_key = format!("wt{}-{:016x}", wasmtime_version(), h.finish());
        Cache { progress: None, dir, engine_key, map_files }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn entry_path(&self, sha: &str) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join(format!("{sha}-{}.cwasm", self.engine_key)))
    }

    /// The component with content hash `sha`, from the cache or compiled from `wasm()`.
    /// The compiled component `sha` (`name` for progress): from the cache, else compiled from
    /// `wasm()` and cached.
    pub fn component(&self, engine: &Engine, sha: &str, name: &str, wasm: impl FnOnce() -> anyhow::Result<Vec<u8>>) -> anyhow::Result<(Component, Source)> {
        if let Some(path) = self.entry_path(sha) {
            match load_entry(engine, &path, self.map_files) {
                Ok(Some(c)) => return Ok((c, Source::Cached)),
                Ok(None) => {}
                Err(e) => tracing::warn!(path = %path.display(), "discarding bad cache entry: {e:#}"),
            }
        }
        let bytes = wasm()?;
        let actual = sha256_hex(&bytes);
        if actual != sha {
            anyhow::bail!("component changed while loading (expected sha256 {sha}, found {actual})");
        }
        let started = std::time::Instant::now();
        if let Some(p) = &self.progress {
            p.compiling(name, bytes.len());
        }
        let compiled = engine.precompile_component(&bytes).map_err(wt);
        if let Some(p) = &self.progress {
            p.compiled(name, started.elapsed());
        }
        let compiled = compiled?;
        // Safety: these bytes were produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &compiled).map_err(wt)? };
        if let Some(path) = self.entry_path(sha) {
            if let Err(e) = write_entry(&path, &compiled) {
                tracing::warn!(path = %path.display(), "cannot write compile cache: {e:#}");
            }
        }
        Ok((component, Source::Compiled))
    }

    pub fn write_index(&self, index: &Index) {
        let Some(p) = self.dir.as_deref().map(index_file) else { return };
        let json = serde_json::to_vec(index).expect("index serialises");
        if let Err(e) = atomic_write(&p, &[&json]) {
            tracing::warn!(path = %p.display(), "cannot write discovery index: {e:#}");
        }
    }
}

fn index_file(cache_dir: &Path) -> PathBuf {
    cache_dir.join("index.json")
}

/// The discovery index in cache directory `dir` (empty when absent or unreadable: it is
/// rebuilt). Needs no engine, so the CLI reads it while its engine is being built.
pub fn read_index_in(dir: Option<&Path>) -> Index {
    let Some(p) = dir.map(index_file) else { return Index::default() };
    match std::fs::read(&p) {
        Ok(b) => match serde_json::from_slice::<Index>(&b) {
            Ok(i) if i.format == INDEX_FORMAT => i,
            _ => {
                tracing::warn!(path = %p.display(), "discarding unreadable discovery index");
                Index::default()
            }
        },
        Err(_) => Index::default(),
    }
}

fn wasmtime_version() -> &'static str {
    // Bumped with the dependency; the compatibility hash covers the rest.
    "48.0.8"
}

fn sum_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".sum");
    PathBuf::from(p)
}

fn checksum(bytes: &[u8]) -> String {
    format!("{SUM_PREFIX}{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

fn load_entry(engine: &Engine, path: &Path, map_files: bool) -> anyhow::Result<Option<Component>> {
    let want = match std::fs::read_to_string(sum_path(path)) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let (want, stamped) = match want.split_once(' ') {
        Some((sum, fp)) => (sum.trim(), Some(fp.trim())),
        None => (want.trim(), None),
    };
    if map_files {
        let meta = file.metadata()?;
        if meta.len() == 0 {
            anyhow::bail!("empty cache entry");
        }
        // The checksum was verified (or computed, when the entry was written) for this very
        // inode as it is now: its size, mtime and ctime change with any write to it, so it is
        // not read again on every run (the discovery index trusts component files the same
        // way). Otherwise hash it through a shared mapping (no copy; the pages stay in the
        // page cache for the mapping wasmtime makes next) and stamp the checksum file.
        let now = stamp(&meta);
        if stamped != Some(now.as_str()) {
            // Safety: cache files are replaced by rename, never rewritten in place by berth;
            // this process only reads the mapping.
            let map = unsafe { memmap2::Mmap::map(&file)? };
            if want != checksum(&map) {
                anyhow::bail!("checksum mismatch (corrupt, truncated or half-written)");
            }
            drop(map);
            let _ = write_sum(path, want, &now);
        }
        // Safety: the file is byte-for-byte what this host wrote (checksum verified), and
        // wasmtime itself refuses artifacts from an incompatible engine or version.
        let c = unsafe { Component::deserialize_file(engine, path).map_err(wt)? };
        return Ok(Some(c));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut &file, &mut bytes)?;
    // A long-running host reads the whole entry anyway: it always checks it.
    if want != checksum(&bytes) {
        anyhow::bail!("checksum mismatch (corrupt, truncated or half-written)");
    }
    // Safety: as above.
    let c = unsafe { Component::deserialize(engine, &bytes).map_err(wt)? };
    Ok(Some(c))
}

fn write_entry(path: &Path, compiled: &[u8]) -> anyhow::Result<()> {
    let sum = checksum(compiled);
    // The artifact first, then its checksum, stamped with the artifact's inode as it is now:
    // a crash in between leaves an unchecked entry, which is rebuilt.
    atomic_write(path, &[compiled])?;
    write_sum(path, &sum, &stamp(&std::fs::metadata(path)?))
}

/// The checksum file of entry `path`: `xxh3-128:<hex> <stamp>`.
fn write_sum(path: &Path, sum: &str, stamp: &str) -> anyhow::Result<()> {
    atomic_write(&sum_path(path), &[format!("{sum} {stamp}").as_bytes()])
}

/// Size, inode, mtime and ctime of a cache entry, as its checksum file records them.
fn stamp(meta: &std::fs::Metadata) -> String {
    let f = Fingerprint::of(meta);
    format!("{}:{}:{}:{}", f.size, f.ino, f.mtime_ns, f.ctime_ns)
}

/// Writes `parts` to a temp file beside `path`, then renames it into place.
pub fn atomic_write(path: &Path, parts: &[&[u8]]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    for p in parts {
        tmp.write_all(p)?;
    }
    tmp.as_file().sync_data()?;
    tmp.persist(path)?;
    Ok(())
}

/// wasmtime 48 has its own error type; keep its full chain.
pub fn wt(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:#}")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The discovery index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    pub format: u32,
    pub files: BTreeMap<String, IndexEntry>,
}

impl Default for Index {
    fn default() -> Self {
        Index { format: INDEX_FORMAT, files: BTreeMap::new() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexEntry {
    pub fingerprint: Fingerprint,
    pub sha256: String,
    /// The family's name, version and action names, read on every run.
    pub name: String,
    pub version: String,
    pub actions: Vec<String>,
    /// The whole `describe()` output ([`crate::spec::FamilyInfo`]), kept as JSON text until
    /// the family is used.
    pub family: Box<serde_json::value::RawValue>,
}

/// Size, inode, mtime and ctime: any write to the file changes at least the ctime.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fingerprint {
    pub size: u64,
    pub ino: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl Fingerprint {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        Fingerprint {
            size: meta.size(),
            ino: meta.ino(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            ctime_ns: meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
        }
    }
}
