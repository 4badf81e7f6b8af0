//! Writing your own actions: `berth check` and `berth install` of a component file, and
//! `berth new`, which scaffolds a family in Rust, Python or JavaScript (see `scaffold`).

pub mod scaffold;
pub mod soar_app;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::runtime::{cache, contract, Catalog, Contract, Limits, Runtime, Source};
use crate::spec::FamilyInfo;

/// The largest component file `check` and `install` read.
const MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// What `berth check` found: every check passed (a failure is an error instead).
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub file: PathBuf,
    pub sha256: String,
    pub size: u64,
    /// The contract it was built for.
    pub contract: Contract,
    /// The `berth:contract` section's text (absent: taken from the export's version).
    pub contract_section: Option<String>,
    pub family: FamilyInfo,
    /// Linear memory it took to instantiate and describe itself.
    pub memory_bytes: usize,
    /// Whether this check compiled it or found it in the compile cache.
    pub compiled: bool,
    /// What passed, one line each, for people.
    pub passed: Vec<String>,
    pub warnings: Vec<String>,
}

/// Checks a component file as `install` would put it in `dir`, against what `dir` already
/// holds: its contract, that it links with berth's imports, that `describe()` is sane and
/// within caps (names family-prefixed, no clash with installed families), and that it
/// instantiates under the default caps.
pub async fn check(runtime: &Runtime, file: &Path, installed: &Catalog, dir: &Path) -> anyhow::Result<(Report, Vec<u8>)> {
    let meta = std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if !meta.is_file() {
        anyhow::bail!("{} is not a file", file.display());
    }
    if meta.len() > MAX_COMPONENT_BYTES {
        anyhow::bail!("{} is {} MiB; components are at most {} MiB", file.display(), meta.len() >> 20, MAX_COMPONENT_BYTES >> 20);
    }
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let sha = cache::sha256_hex(&bytes);
    let mut passed = Vec::new();
    let mut warnings = Vec::new();

    let declared = contract::read(&bytes)?;
    let contract = declared.contract()?;
    match &declared.section {
        Some(s) => passed.push(format!(
            "contract: built for berth:connector {contract} ({} section: {s}); this host supports {}",
            contract::SECTION,
            contract::supported_range()
        )),
        None => {
            passed.push(format!("contract: berth:connector {contract}, from its export; this host supports {}", contract::supported_range()));
            warnings.push(format!("no {} section: build it with a berth SDK (or its stamp script) so the host need not guess", contract::SECTION));
        }
    }
    if contract != Contract::CURRENT {
        warnings.push(format!(
            "built for berth:connector {contract}; the current contract is {} (rebuild with the SDK to declare engine operations)",
            Contract::CURRENT
        ));
    }

    let prepared = runtime.prepare_bytes(&sha, &file.display().to_string(), Some(bytes.clone())).map_err(|e| {
        let msg = format!("{e:#}");
        let hint = if msg.contains("wasi:http") { " (berth gives no wasi:http: a componentize-js build needs `-d http -d fetch-event`)" } else { "" };
        anyhow::anyhow!("does not link with berth's imports: {msg}{hint}")
    })?;
    passed.push("links: every import is one berth provides (berth:connector engine and log, WASI without sockets or http)".into());

    let defaults = Limits::default();
    let (family, memory) = runtime.describe_under(&prepared, defaults).await?;
    crate::runtime::discovery::validate_family(&family)?;
    passed.push(format!(
        "runs: instantiates and describes itself under the default caps ({} MiB of guest memory taken of {} MiB)",
        memory.div_ceil(1 << 20),
        defaults.memory_bytes >> 20
    ));
    if memory > defaults.memory_bytes / 2 {
        warnings.push(format!("it takes {} MiB just to start; actions get {} MiB by default", memory >> 20, defaults.memory_bytes >> 20));
    }

    check_names(&family)?;
    passed.push(format!(
        "describe: family '{}' {} with {} actions, names family-prefixed, within the describe caps",
        family.name,
        family.version,
        family.actions.len()
    ));
    check_clash(&family, installed, &dir.join(format!("{}.wasm", family.name)), file)?;
    passed.push(format!("no clash with the {} families installed in {}", installed.components.len(), dir.display()));
    let undeclared: Vec<&str> = family.actions.iter().filter(|a| a.operations.is_empty()).map(|a| a.name.as_str()).collect();
    if contract == Contract::CURRENT && !undeclared.is_empty() {
        warnings.push(format!("these actions declare no engine operations, so the host cannot hold them to any: {}", undeclared.join(", ")));
    }
    let report = Report {
        file: file.to_path_buf(),
        sha256: sha,
        size: meta.len(),
        contract,
        contract_section: declared.section,
        family,
        memory_bytes: memory,
        compiled: prepared.source == Source::Compiled,
        passed,
        warnings,
    };
    Ok((report, bytes))
}

/// Every action is `<family>.<name>` (SOAR display aliases, words with spaces, excepted), and
/// every declared operation is one of the Engine API's.
fn check_names(f: &FamilyInfo) -> anyhow::Result<()> {
    let valid_family = !f.name.is_empty()
        && f.name.len() <= 64
        && f.name.starts_with(|c: char| c.is_ascii_lowercase())
        && f.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid_family {
        anyhow::bail!("family name '{}' must be lower-case letters, digits, '-' or '_', starting with a letter", f.name.escape_debug());
    }
    let known: std::collections::HashSet<&str> = crate::policy::routes::table().iter().map(|r| r.operation).collect();
    for a in &f.actions {
        let alias = a.name.contains(' ');
        if !alias && !crate::runtime::discovery::owns(&f.name, &a.name) {
            anyhow::bail!("action '{}' is not prefixed with its family name ('{}.…')", a.name.escape_debug(), f.name);
        }
        if a.name.chars().any(|c| c.is_control()) {
            anyhow::bail!("action '{}' has control characters in its name", a.name.escape_debug());
        }
        for op in &a.operations {
            if !known.contains(op.as_str()) {
                anyhow::bail!("action '{}' declares '{}', which is no Engine API operation (operationIds such as ContainerList)", a.name, op.escape_debug());
            }
        }
    }
    Ok(())
}

/// Another installed component may not hold the same family or any of the same actions;
/// the file the install would replace (`dest`), or the checked file itself, does not count.
fn check_clash(f: &FamilyInfo, installed: &Catalog, dest: &Path, file: &Path) -> anyhow::Result<()> {
    let same = |p: &Path| p == dest || std::fs::canonicalize(p).ok().zip(std::fs::canonicalize(file).ok()).is_some_and(|(a, b)| a == b);
    for c in installed.components.iter().filter(|c| !same(&c.path)) {
        if c.family.name == f.name {
            anyhow::bail!("family '{}' is already installed from {} (remove it, or give this family another name)", f.name, c.path.display());
        }
        if let Some(a) = f.actions.iter().find(|a| c.family.actions.iter().any(|b| b.name == a.name)) {
            anyhow::bail!("action '{}' is already declared by family '{}' ({})", a.name, c.family.name, c.path.display());
        }
    }
    Ok(())
}

/// What `berth install` did.
#[derive(Debug, serde::Serialize)]
pub struct Installed {
    pub report: Report,
    pub path: PathBuf,
    /// A file of the same family was there before.
    pub replaced: bool,
    /// The compiled component sits in the compile cache: the first run compiles nothing.
    pub precompiled: bool,
}

/// Checks `file`, then copies it into `dir` as `<family>.wasm` (atomically: a temp file
/// renamed into place), precompiles it into the cache and refreshes the discovery index.
/// A family already installed is replaced only when `replace` says so.
pub async fn install(runtime: &Runtime, file: &Path, dir: &Path, replace: bool) -> anyhow::Result<Installed> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the actions directory {}", dir.display()))?;
    let installed = runtime.discover(dir).await?;
    let (report, bytes) = check(runtime, file, &installed, dir).await?;
    let dest = dir.join(format!("{}.wasm", report.family.name));
    let replaced = dest.exists();
    let same_file = std::fs::canonicalize(&dest).ok().zip(std::fs::canonicalize(file).ok()).is_some_and(|(a, b)| a == b);
    if replaced && !same_file && !replace {
        anyhow::bail!("family '{}' is already installed as {}; give --replace to replace it", report.family.name, dest.display());
    }
    if !same_file {
        cache::atomic_write(&dest, &[&bytes]).with_context(|| format!("cannot write {}", dest.display()))?;
    }
    // The compile in `check` wrote the cache entry; discovery now records the file in the
    // index, so the next process neither describes nor compiles it.
    let catalog = runtime.discover(dir).await?;
    if let Some((_, why)) = catalog.skipped.iter().find(|(p, _)| p == &dest) {
        anyhow::bail!("{} was written but discovery skipped it: {why}", dest.display());
    }
    let precompiled = runtime.cache().dir().is_some();
    Ok(Installed { report, path: dest, replaced, precompiled })
}
