//! Discovery: every `*.wasm` in the actions directory, described once (through the compile
//! cache and the index), within caps, with broken components quarantined and clashing ones
//! refused alone.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use serde_json::value::RawValue;

use super::bindings::exports::berth::connector::actions as wit;
use super::{cache, Artifacts, HostContext, Limits, Prepared, Runtime};
use crate::policy::Policy;
use crate::spec::{ActionSpec, FamilyInfo, Kind, ParamSpec, ValueType};

/// Caps on what `describe()` may return, so a component cannot bomb discovery or the catalog.
pub mod describe_caps {
    use std::time::Duration;
    /// Actions per family.
    pub const ACTIONS: usize = 1000;
    /// Params per action, output paths per action.
    pub const PARAMS: usize = 64;
    /// Family, action and param names.
    pub const NAME: usize = 128;
    /// Summaries, descriptions, defaults, output paths.
    pub const TEXT: usize = 4096;
    /// The whole description, serialised.
    pub const TOTAL_BYTES: usize = 1 << 20;
    /// Time describe() may take.
    pub const TIME: Duration = Duration::from_secs(5);
    /// Guest memory describe() may use.
    pub const MEMORY: usize = 64 << 20;
    /// Guest CPU describe() may use.
    pub const CPU: Duration = Duration::from_secs(2);
}

/// A component file found in the actions directory.
#[derive(Debug, Clone)]
pub struct ComponentFile {
    pub path: PathBuf,
    pub sha256: String,
    /// Shared: the server hands a component to every invocation of its actions.
    pub family: Arc<Family>,
}

/// A component's description. Its name, version and action names are known at once; the
/// rest (summaries, params, outputs) is parsed from the index's JSON the first time it is
/// used, so a CLI run parses one family's description, not all of them (~0.5 ms of a
/// `berth run` here). Derefs to the parsed [`FamilyInfo`].
#[derive(Debug)]
pub struct Family {
    name: String,
    version: String,
    action_names: Vec<String>,
    raw: Option<Box<RawValue>>,
    info: OnceLock<FamilyInfo>,
}

impl Family {
    /// A description just returned by `describe()`.
    pub fn parsed(info: FamilyInfo) -> Self {
        Family {
            name: info.name.clone(),
            version: info.version.clone(),
            action_names: info.actions.iter().map(|a| a.name.clone()).collect(),
            raw: None,
            info: OnceLock::from(info),
        }
    }

    /// A description from the index, parsed on first use.
    fn indexed(e: cache::IndexEntry) -> Self {
        Family { name: e.name, version: e.version, action_names: e.actions, raw: Some(e.family), info: OnceLock::new() }
    }

    /// The names of its actions, in declaration order (without parsing the description).
    pub fn action_names(&self) -> &[String] {
        &self.action_names
    }

    /// The whole description. An index entry that no longer parses (written by another
    /// berth with the same index format) gives a family without actions, and a warning.
    pub fn info(&self) -> &FamilyInfo {
        self.info.get_or_init(|| {
            let raw = self.raw.as_ref().map(|r| r.get()).unwrap_or("{}");
            serde_json::from_str::<FamilyInfo>(raw)
                .ok()
                .filter(|f| f.name == self.name && f.actions.iter().map(|a| &a.name).eq(self.action_names.iter()))
                .unwrap_or_else(|| {
                    tracing::warn!(family = %self.name, "the discovery index's description of this family is unreadable; delete index.json in the cache directory to rebuild it");
                    FamilyInfo { name: self.name.clone(), version: self.version.clone(), actions: Vec::new() }
                })
        })
    }

    /// The index entry for this family.
    fn index_entry(&self, fingerprint: cache::Fingerprint, sha256: &str) -> cache::IndexEntry {
        let family = match &self.raw {
            Some(r) => r.clone(),
            None => serde_json::value::to_raw_value(self.info()).expect("a family serialises"),
        };
        cache::IndexEntry {
            fingerprint,
            sha256: sha256.to_string(),
            name: self.name.clone(),
            version: self.version.clone(),
            actions: self.action_names.clone(),
            family,
        }
    }
}

impl std::ops::Deref for Family {
    type Target = FamilyInfo;
    fn deref(&self) -> &FamilyInfo {
        self.info()
    }
}

/// Every action found, by name.
#[derive(Debug, Default)]
pub struct Catalog {
    pub components: Vec<ComponentFile>,
    actions: BTreeMap<String, (usize, usize)>,
    /// Components skipped, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

impl Catalog {
    pub fn action(&self, name: &str) -> Option<(&ComponentFile, &ActionSpec)> {
        let &(c, a) = self.actions.get(name)?;
        let comp = &self.components[c];
        Some((comp, comp.family.actions.get(a)?))
    }

    pub fn actions(&self) -> impl Iterator<Item = (&ComponentFile, &ActionSpec)> {
        self.actions.values().filter_map(|&(c, a)| Some((&self.components[c], self.components[c].family.actions.get(a)?)))
    }
}

/// The part of discovery that needs no wasm engine: the directory's `*.wasm` files with their
/// fingerprints, and the index. The CLI makes it while its engine is being built.
pub struct Scan {
    dir: PathBuf,
    files: Vec<(PathBuf, cache::Fingerprint)>,
    index: cache::Index,
}

impl Scan {
    /// Lists `dir` and reads the index in cache directory `cache_dir`.
    pub fn new(cache_dir: Option<&Path>, dir: &Path) -> anyhow::Result<Scan> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read actions directory {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        paths.sort();
        let files = paths
            .into_iter()
            .filter_map(|p| match std::fs::metadata(&p) {
                Ok(m) if m.is_file() => Some((p, cache::Fingerprint::of(&m))),
                _ => None,
            })
            .collect();
        Ok(Scan { dir: dir.to_path_buf(), files, index: cache::read_index_in(cache_dir) })
    }
}

impl Runtime {
    /// Finds every `*.wasm` in `dir`. Components the index already knows are not loaded; new
    /// or changed ones are compiled (through the cache) and asked to describe themselves. A
    /// broken component is skipped with a warning; two components declaring the same action
    /// is an error naming both files.
    pub async fn discover(&self, dir: &Path) -> anyhow::Result<Catalog> {
        self.discover_scanned(Scan::new(self.cache.dir(), dir)?).await
    }

    /// [`Runtime::discover`] from a [`Scan`] made beforehand (with this runtime's cache
    /// directory).
    pub async fn discover_scanned(&self, scan: Scan) -> anyhow::Result<Catalog> {
        let Scan { dir, files, mut index } = scan;
        let dir = dir.as_path();
        let mut index_changed = false;
        let mut catalog = Catalog::default();
        // Fingerprints of the catalog's components, in the same order. Index hits are moved
        // out of the index rather than cloned (this is every CLI run's path); the index is
        // rebuilt from the catalog in the rare case it must be written.
        let mut fingerprints = Vec::new();
        let prefix = format!("{}/", dir.to_string_lossy().trim_end_matches('/'));
        let stale_before = index.files.keys().filter(|k| k.starts_with(&prefix)).count();
        for (path, fp) in files {
            let key = path.to_string_lossy().into_owned();
            if index.files.get(&key).is_some_and(|e| e.fingerprint == fp) {
                let mut e = index.files.remove(&key).expect("checked above");
                let sha256 = std::mem::take(&mut e.sha256);
                catalog.components.push(ComponentFile { path, sha256, family: Arc::new(Family::indexed(e)) });
                fingerprints.push(fp);
                continue;
            }
            if let Some((qfp, why)) = self.quarantine.lock().unwrap().get(&path) {
                if *qfp == fp {
                    catalog.skipped.push((path, why.clone()));
                    continue;
                }
            }
            match self.describe_file(&path).await {
                Ok(cf) => {
                    index_changed = true;
                    self.quarantine.lock().unwrap().remove(&path);
                    catalog.components.push(cf);
                    fingerprints.push(fp);
                }
                Err(e) => {
                    let why = format!("{e:#}");
                    tracing::warn!(path = %path.display(), "skipping component until it changes: {why}");
                    self.quarantine.lock().unwrap().insert(path.clone(), (fp, why.clone()));
                    catalog.skipped.push((path, why));
                }
            }
        }
        // What is left of this directory in the index is for files that are gone or changed.
        let leftover = index.files.keys().filter(|k| k.starts_with(&prefix)).count();
        if index_changed || leftover > 0 || stale_before != catalog.components.len() + leftover {
            index.files.retain(|k, _| !k.starts_with(&prefix));
            for (c, fp) in catalog.components.iter().zip(&fingerprints) {
                index.files.insert(c.path.to_string_lossy().into_owned(), c.family.index_entry(*fp, &c.sha256));
            }
            self.cache.write_index(&index);
        }
        // What is not a component's own is refused, and never settled by file order: an
        // action outside its family's prefix refuses its component; two files declaring the
        // same family, or the same action, are all refused and named.
        let components = std::mem::take(&mut catalog.components);
        let mut owners: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut family_files: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut refused: Vec<Option<String>> = components.iter().map(|c| unprefixed(&c.family)).collect();
        for (i, c) in components.iter().enumerate() {
            family_files.entry(c.family.name.as_str()).or_default().push(i);
            for a in c.family.action_names() {
                owners.entry(a.as_str()).or_default().push(i);
            }
        }
        let files = |ix: &[usize]| ix.iter().map(|&i| components[i].path.display().to_string()).collect::<Vec<_>>().join(" and ");
        for (family, ix) in family_files.iter().filter(|(_, ix)| ix.len() > 1) {
            for &i in ix {
                refused[i].get_or_insert_with(|| format!("family '{family}' is declared by {}; each is refused until one remains", files(ix)));
            }
        }
        for (action, ix) in owners.iter().filter(|(_, ix)| ix.len() > 1) {
            for &i in ix {
                refused[i].get_or_insert_with(|| format!("action '{action}' is declared by {}; each is refused until one remains", files(ix)));
            }
        }
        for (comp, why) in components.into_iter().zip(refused) {
            if let Some(why) = why {
                tracing::warn!(path = %comp.path.display(), "{why}");
                catalog.skipped.push((comp.path.clone(), why));
                continue;
            }
            let ci = catalog.components.len();
            for (ai, a) in comp.family.action_names().iter().enumerate() {
                catalog.actions.insert(a.clone(), (ci, ai));
            }
            catalog.components.push(comp);
        }
        Ok(catalog)
    }

    /// Loads one component file and asks it to describe itself.
    pub async fn describe_file(&self, path: &Path) -> anyhow::Result<ComponentFile> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let sha = cache::sha256_hex(&bytes);
        super::contract::of_bytes(&bytes)?;
        let prepared = self.prepare_bytes(&sha, &path.display().to_string(), Some(bytes))?;
        let family = self.describe(&prepared).await?;
        validate_family(&family)?;
        Ok(ComponentFile { path: path.to_path_buf(), sha256: sha, family: Arc::new(Family::parsed(family)) })
    }

    /// Instantiates a component in a fresh, engine-less store and calls `describe()`, within
    /// [`describe_caps`].
    pub async fn describe(&self, prepared: &Prepared) -> anyhow::Result<FamilyInfo> {
        let limits = Limits { memory_bytes: describe_caps::MEMORY, cpu: describe_caps::CPU, wall: describe_caps::TIME, ..Limits::default() };
        Ok(self.describe_under(prepared, limits).await?.0)
    }

    /// [`Runtime::describe`] under `limits` (tighter than the describe caps only), with the
    /// guest memory it took: `berth check` runs it under the invocation defaults.
    pub async fn describe_under(&self, prepared: &Prepared, limits: Limits) -> anyhow::Result<(FamilyInfo, usize)> {
        let limits = Limits {
            memory_bytes: limits.memory_bytes.min(describe_caps::MEMORY),
            cpu: limits.cpu.min(describe_caps::CPU),
            wall: limits.wall.min(describe_caps::TIME),
            ..limits
        };
        let mut store = self.store(HostContext::offline(), "describe", Policy::for_action(true), limits, Artifacts::default());
        let family = tokio::time::timeout(limits.wall, async { prepared.pre.describe(&mut store).await })
            .await
            .map_err(|_| anyhow::anyhow!("describe() did not return within {:?}", limits.wall))?
            .map_err(|e| match store.data().memory.exceeded.clone().or_else(|| store.data().record.violation.clone()) {
                Some(why) => anyhow::anyhow!("describe() failed: {why}"),
                None => anyhow::anyhow!("describe() failed: {}", super::crash_message(&e, &store.data().out.stderr.contents())),
            })?;
        check_describe_caps(&family)?;
        Ok((FamilyInfo::from(family), store.data().memory.granted))
    }
}

/// Refuses an oversized description before anything keeps it.
fn check_describe_caps(f: &wit::FamilyInfo) -> anyhow::Result<()> {
    use describe_caps::*;
    if f.actions.len() > ACTIONS {
        anyhow::bail!("describe() declares {} actions (at most {ACTIONS})", f.actions.len());
    }
    let mut total = f.name.len() + f.version.len();
    let long = |what: &str, s: &str, cap: usize| -> anyhow::Result<usize> {
        if s.len() > cap {
            anyhow::bail!("describe(): {what} is {} bytes long (at most {cap})", s.len());
        }
        Ok(s.len())
    };
    long("the family name", &f.name, NAME)?;
    long("the family version", &f.version, NAME)?;
    for a in &f.actions {
        total += long("an action name", &a.name, NAME)? + long(&format!("the summary of {}", a.name), &a.summary, TEXT)?;
        if a.params.len() > PARAMS || a.output.len() > PARAMS {
            anyhow::bail!("describe(): {} declares {} params and {} outputs (at most {PARAMS} each)", a.name, a.params.len(), a.output.len());
        }
        for p in &a.params {
            total += long("a param name", &p.name, NAME)? + long(&format!("the description of {}.{}", a.name, p.name), &p.description, TEXT)?;
            total += long("a default", p.default.as_deref().unwrap_or(""), TEXT)?;
        }
        for o in &a.output {
            total += long("an output path", o, TEXT)?;
        }
        if total > TOTAL_BYTES {
            anyhow::bail!("describe() returned more than {TOTAL_BYTES} bytes");
        }
    }
    Ok(())
}

/// Prefixes a family owns besides its name: the Engine API's exec operations belong to the
/// container family.
const MORE_PREFIXES: &[(&str, &str)] = &[("container", "exec")];

/// Whether `action` is `<prefix>.<name>` for one of `family`'s prefixes.
pub(crate) fn owns(family: &str, action: &str) -> bool {
    let under = |p: &str| action.strip_prefix(p).is_some_and(|rest| rest.starts_with('.') && rest.len() > 1);
    under(family) || MORE_PREFIXES.iter().any(|(f, p)| *f == family && under(p))
}

/// Why a family may not be loaded because it declares an action outside its own prefix
/// (`<family>.<name>`; SOAR display aliases, names with a space, excepted).
fn unprefixed(f: &Family) -> Option<String> {
    let bad = f.action_names().iter().find(|a| !a.contains(' ') && !owns(&f.name, a))?;
    Some(format!("family '{}' declares action '{}', outside its prefix '{}.'", f.name, bad.escape_debug(), f.name))
}

pub(crate) fn validate_family(f: &FamilyInfo) -> anyhow::Result<()> {
    if f.name.is_empty() {
        anyhow::bail!("the family has no name");
    }
    let mut names = std::collections::HashSet::new();
    for a in &f.actions {
        if a.name.trim().is_empty() || a.name.len() > 128 {
            anyhow::bail!("family '{}' declares an action with an empty or overlong name", f.name);
        }
        if !names.insert(a.name.as_str()) {
            anyhow::bail!("family '{}' declares action '{}' twice", f.name, a.name);
        }
        let mut params = std::collections::HashSet::new();
        for p in &a.params {
            if !params.insert(p.name.as_str()) {
                anyhow::bail!("action '{}' declares parameter '{}' twice", a.name, p.name);
            }
        }
    }
    Ok(())
}

impl From<wit::FamilyInfo> for FamilyInfo {
    fn from(f: wit::FamilyInfo) -> Self {
        FamilyInfo {
            name: f.name,
            version: f.version,
            actions: f
                .actions
                .into_iter()
                .map(|a| ActionSpec {
                    name: a.name,
                    summary: a.summary,
                    kind: match a.kind {
                        wit::Kind::Investigate => Kind::Investigate,
                        wit::Kind::Generic => Kind::Generic,
                        wit::Kind::Contain => Kind::Contain,
                        wit::Kind::Correct => Kind::Correct,
                    },
                    read_only: a.read_only,
                    params: a
                        .params
                        .into_iter()
                        .map(|p| ParamSpec {
                            name: p.name,
                            value_type: match p.value_type {
                                wit::ValueType::Text => ValueType::String,
                                wit::ValueType::Integer => ValueType::Integer,
                                wit::ValueType::Number => ValueType::Number,
                                wit::ValueType::Boolean => ValueType::Boolean,
                                wit::ValueType::Object => ValueType::Object,
                                wit::ValueType::Array => ValueType::Array,
                                wit::ValueType::Any => ValueType::Any,
                            },
                            required: p.required,
                            default: p.default.and_then(|d| serde_json::from_str(&d).ok()),
                            description: p.description,
                            secret: p.secret,
                        })
                        .collect(),
                    output: a.output,
                    operations: a.operations,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(name: &str, actions: &[&str]) -> Family {
        let json = serde_json::json!({"name": name, "version": "1", "actions": actions.iter().map(|a| serde_json::json!({
            "name": a, "summary": "", "kind": "investigate", "read_only": true, "params": [], "output": []
        })).collect::<Vec<_>>()});
        Family::parsed(serde_json::from_value(json).unwrap())
    }

    #[test]
    fn actions_outside_the_family_prefix_refuse_their_component() {
        assert_eq!(unprefixed(&family("system", &["system.ping", "system.info", "test connectivity"])), None);
        let why = unprefixed(&family("clash", &["clash.a", "system.info"])).unwrap();
        assert!(why.contains("'system.info', outside its prefix 'clash.'"), "{why}");
        assert!(unprefixed(&family("sys", &["system.info"])).is_some(), "a prefix of the family name is not enough");
        assert!(unprefixed(&family("system", &["system."])).is_some());
        assert_eq!(unprefixed(&family("container", &["container.list", "exec.start"])), None, "exec belongs to the container family");
        assert!(unprefixed(&family("clash", &["exec.start"])).is_some());
    }
}
