//! The versioned contract, as Zed versions its extension API: `wit/since_vX.Y.Z/` keeps each
//! released `berth:connector` contract, and this module keeps one binding per version the
//! host supports. A component records the version it was built for in a custom section
//! named [`SECTION`] (the SDKs write it); the host links it with the matching binding and
//! turns what it returns into the current types.
//!
//! The shared `types` interface and the `body-stream` resource are unchanged since 0.1, so
//! the 0.1 binding reuses the current Rust types for them; only `engine` and `log` (their
//! functions live under the 0.1 name) and the exported `actions` records need a bridge.

use wasmtime::component::{Component, InstancePre, Resource};
use wasmtime::{Engine, Store};

use super::bindings::{self, exports::berth::connector::actions as wit, v0_1};
use super::host::HostState;
use super::streams::StreamHandle;

/// The custom section naming the contract version, e.g. `0.2.0`.
pub const SECTION: &str = "berth:contract";

/// A contract version this host links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Contract {
    #[serde(rename = "0.1")]
    V0_1,
    #[serde(rename = "0.2")]
    V0_2,
}

/// Every contract this host supports, oldest first; the last is the current one.
pub const SUPPORTED: &[Contract] = &[Contract::V0_1, Contract::V0_2];

impl Contract {
    pub const CURRENT: Contract = Contract::V0_2;

    /// `0.2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1",
            Contract::V0_2 => "0.2",
        }
    }

    /// The contract of a `major.minor[.patch]` version string, or why it is not supported.
    pub fn parse(version: &str) -> anyhow::Result<Contract> {
        let mut parts = version.trim().split('.');
        let (major, minor) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let short = format!("{major}.{minor}");
        let valid = major.parse::<u32>().is_ok() && minor.parse::<u32>().is_ok() && parts.all(|p| p.parse::<u32>().is_ok());
        if !valid {
            anyhow::bail!("its contract version '{}' is not a version (expected e.g. 0.2.0)", version.escape_debug());
        }
        SUPPORTED
            .iter()
            .copied()
            .find(|c| c.as_str() == short)
            .ok_or_else(|| anyhow::anyhow!("built for berth:connector {short}; this host supports {}", supported_range()))
    }
}

impl std::fmt::Display for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `0.1–0.2`.
pub fn supported_range() -> String {
    format!("{}–{}", SUPPORTED[0], SUPPORTED[SUPPORTED.len() - 1])
}

/// What a component's bytes say about its contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// The `berth:contract` section's text, when there is one.
    pub section: Option<String>,
    /// The version of the `berth:connector/actions` interface the component exports.
    pub exported: Option<String>,
}

/// Reads the contract section and the exported `actions` interface version from a
/// component's bytes (the section may sit in the component or in a core module inside it).
pub fn read(bytes: &[u8]) -> anyhow::Result<Declared> {
    use wasmparser::{Parser, Payload};
    let mut section = None;
    let mut exported = None;
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| anyhow::anyhow!("not a wasm component: {e}"))? {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != wasmparser::Encoding::Component {
                    anyhow::bail!("a core wasm module, not a component (build it for wasm32-wasip2, or with componentize-py / componentize-js)");
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::CustomSection(c) if c.name() == SECTION && section.is_none() => {
                let text = std::str::from_utf8(c.data()).map_err(|_| anyhow::anyhow!("its {SECTION} section is not UTF-8"))?;
                section = Some(text.trim().to_string());
            }
            Payload::ComponentExportSection(exports) if depth == 1 => {
                for e in exports {
                    let e = e.map_err(|e| anyhow::anyhow!("bad export section: {e}"))?;
                    if let Some(v) = e.name.name.strip_prefix("berth:connector/actions@") {
                        exported = Some(v.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(Declared { section, exported })
}

/// The contract a component was built for: its section, checked against what it exports
/// (a component without the section is taken at its export's word).
pub fn of_bytes(bytes: &[u8]) -> anyhow::Result<Contract> {
    read(bytes)?.contract()
}

impl Declared {
    /// The contract these declarations name, or why they name none this host links.
    pub fn contract(&self) -> anyhow::Result<Contract> {
        let Some(exported) = &self.exported else {
            anyhow::bail!("not a berth family component: it exports no berth:connector/actions interface");
        };
        let contract = Contract::parse(self.section.as_deref().unwrap_or(exported))?;
        let by_export = Contract::parse(exported)?;
        if contract != by_export {
            anyhow::bail!("its {SECTION} section says {contract} but it exports berth:connector/actions@{exported}");
        }
        Ok(contract)
    }
}

/// The contract of a compiled component, from its exports (for cache hits, whose bytes are
/// not read; the section was checked when the file was first described).
pub fn of_component(component: &Component, engine: &Engine) -> anyhow::Result<Contract> {
    let ty = component.component_type();
    let exported = ty
        .exports(engine)
        .find_map(|(name, _)| name.strip_prefix("berth:connector/actions@").map(str::to_string))
        .ok_or_else(|| anyhow::anyhow!("not a berth family component: it exports no berth:connector/actions interface"))?;
    Contract::parse(&exported)
}

/// A linked component under the binding of its contract.
pub enum FamilyPre {
    V0_1(v0_1::FamilyPre<HostState>),
    V0_2(bindings::FamilyPre<HostState>),
}

impl FamilyPre {
    pub fn new(contract: Contract, pre: InstancePre<HostState>) -> anyhow::Result<Self> {
        let why = |e: wasmtime::Error| anyhow::anyhow!("not a berth:connector {contract} family component: {e}");
        Ok(match contract {
            Contract::V0_1 => FamilyPre::V0_1(v0_1::FamilyPre::new(pre).map_err(why)?),
            Contract::V0_2 => FamilyPre::V0_2(bindings::FamilyPre::new(pre).map_err(why)?),
        })
    }

    pub fn contract(&self) -> Contract {
        match self {
            FamilyPre::V0_1(_) => Contract::V0_1,
            FamilyPre::V0_2(_) => Contract::V0_2,
        }
    }

    /// Instantiates and calls `describe()`, in the current types.
    pub async fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<wit::FamilyInfo> {
        match self {
            FamilyPre::V0_1(pre) => {
                let inst = pre.instantiate_async(&mut *store).await?;
                Ok(from_v0_1::family(inst.berth_connector_actions().call_describe(store).await?))
            }
            FamilyPre::V0_2(pre) => {
                let inst = pre.instantiate_async(&mut *store).await?;
                inst.berth_connector_actions().call_describe(store).await
            }
        }
    }

    /// Instantiates and calls `run()`, in the current types.
    pub async fn run(&self, store: &mut Store<HostState>, action: &str, params: &str) -> wasmtime::Result<Result<wit::ActionOutput, wit::ActionError>> {
        match self {
            FamilyPre::V0_1(pre) => {
                let inst = pre.instantiate_async(&mut *store).await?;
                let r = inst.berth_connector_actions().call_run(store, action, params).await?;
                Ok(r.map(from_v0_1::output).map_err(from_v0_1::error))
            }
            FamilyPre::V0_2(pre) => {
                let inst = pre.instantiate_async(&mut *store).await?;
                inst.berth_connector_actions().call_run(store, action, params).await
            }
        }
    }

    /// Instantiates without calling anything (benchmarks).
    pub async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<()> {
        match self {
            FamilyPre::V0_1(pre) => pre.instantiate_async(store).await.map(drop),
            FamilyPre::V0_2(pre) => pre.instantiate_async(store).await.map(drop),
        }
    }
}

/// 0.1's exported records in the current types.
mod from_v0_1 {
    use super::v0_1::exports::berth::connector::actions as old;
    use super::wit;

    pub fn family(f: old::FamilyInfo) -> wit::FamilyInfo {
        wit::FamilyInfo { name: f.name, version: f.version, actions: f.actions.into_iter().map(action).collect() }
    }

    fn action(a: old::ActionSpec) -> wit::ActionSpec {
        wit::ActionSpec {
            name: a.name,
            summary: a.summary,
            kind: match a.kind {
                old::Kind::Investigate => wit::Kind::Investigate,
                old::Kind::Generic => wit::Kind::Generic,
                old::Kind::Contain => wit::Kind::Contain,
                old::Kind::Correct => wit::Kind::Correct,
            },
            read_only: a.read_only,
            params: a.params.into_iter().map(param).collect(),
            output: a.output,
            // 0.1 declares no operations.
            operations: Vec::new(),
        }
    }

    fn param(p: old::ParamSpec) -> wit::ParamSpec {
        wit::ParamSpec {
            name: p.name,
            value_type: match p.value_type {
                old::ValueType::Text => wit::ValueType::Text,
                old::ValueType::Integer => wit::ValueType::Integer,
                old::ValueType::Number => wit::ValueType::Number,
                old::ValueType::Boolean => wit::ValueType::Boolean,
                old::ValueType::Object => wit::ValueType::Object,
                old::ValueType::Array => wit::ValueType::Array,
                old::ValueType::Any => wit::ValueType::Any,
            },
            required: p.required,
            default: p.default,
            description: p.description,
            secret: p.secret,
        }
    }

    pub fn output(o: old::ActionOutput) -> wit::ActionOutput {
        wit::ActionOutput { message: o.message, data: o.data, summary: o.summary }
    }

    pub fn error(e: old::ActionError) -> wit::ActionError {
        match e {
            old::ActionError::BadParams(m) => wit::ActionError::BadParams(m),
            old::ActionError::Engine(f) => wit::ActionError::Engine(wit::EngineFailure { status: f.status, message: f.message }),
            old::ActionError::Denied(m) => wit::ActionError::Denied(m),
            old::ActionError::Internal(m) => wit::ActionError::Internal(m),
        }
    }
}

// The 0.1 imports: the same host functions under the 0.1 interface names.
use bindings::berth::connector::{engine as cur_engine, log as cur_log, types};

impl v0_1::berth::connector::engine::Host for HostState {
    async fn api_version(&mut self) -> Result<String, types::EngineError> {
        cur_engine::Host::api_version(self).await
    }
    async fn call(&mut self, req: types::Request) -> Result<types::Response, types::EngineError> {
        cur_engine::Host::call(self, req).await
    }
    async fn open(&mut self, req: types::Request) -> Result<(types::ResponseHead, Resource<StreamHandle>), types::EngineError> {
        cur_engine::Host::open(self, req).await
    }
    async fn call_to_artifact(&mut self, req: types::Request, artifact: String) -> Result<types::ArtifactResponse, types::EngineError> {
        cur_engine::Host::call_to_artifact(self, req, artifact).await
    }
    async fn upgrade(&mut self, req: types::Request, stdin: types::Body) -> Result<(types::ResponseHead, Resource<StreamHandle>), types::EngineError> {
        cur_engine::Host::upgrade(self, req, stdin).await
    }
}

impl v0_1::berth::connector::engine::HostBodyStream for HostState {
    async fn read(&mut self, stream: Resource<StreamHandle>, max_bytes: u32, timeout_ms: u32) -> Result<types::Chunk, types::EngineError> {
        cur_engine::HostBodyStream::read(self, stream, max_bytes, timeout_ms).await
    }
    async fn drop(&mut self, stream: Resource<StreamHandle>) -> wasmtime::Result<()> {
        cur_engine::HostBodyStream::drop(self, stream).await
    }
}

impl v0_1::berth::connector::log::Host for HostState {
    async fn log(&mut self, level: v0_1::berth::connector::log::Level, message: String) {
        use v0_1::berth::connector::log::Level as Old;
        let level = match level {
            Old::Trace => cur_log::Level::Trace,
            Old::Debug => cur_log::Level::Debug,
            Old::Info => cur_log::Level::Info,
            Old::Warn => cur_log::Level::Warn,
            Old::Error => cur_log::Level::Error,
        };
        cur_log::Host::log(self, level, message).await
    }
    async fn progress(&mut self, id: String, current: u64, total: Option<u64>, message: String) {
        cur_log::Host::progress(self, id, current, total, message).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_unsupported_ones_are_named() {
        assert_eq!(Contract::parse("0.1.0").unwrap(), Contract::V0_1);
        assert_eq!(Contract::parse("0.2.3").unwrap(), Contract::V0_2);
        assert_eq!(Contract::parse("0.2").unwrap(), Contract::V0_2);
        let e = Contract::parse("0.0.9").unwrap_err().to_string();
        assert_eq!(e, "built for berth:connector 0.0; this host supports 0.1–0.2");
        let e = Contract::parse("1.4.0").unwrap_err().to_string();
        assert!(e.contains("built for berth:connector 1.4"), "{e}");
        assert!(Contract::parse("latest").unwrap_err().to_string().contains("not a version"));
        assert!(Contract::parse("0.x").is_err());
    }

    #[test]
    fn a_core_module_is_not_a_component() {
        // (module) — the 8-byte header of an empty core module.
        let e = read(b"\0asm\x01\0\0\0").unwrap_err().to_string();
        assert!(e.contains("core wasm module"), "{e}");
        assert!(read(b"not wasm").is_err());
    }
}
