//! The wasm runtime: discovery of action components, compilation through the cache, one
//! `InstancePre` per component, and sandboxed invocation in a fresh `Store`.

pub mod artifacts;
mod bundle;
pub mod cache;
pub mod contract;
pub mod discovery;
pub mod fair;
mod guest_log;
pub mod host;
pub mod limits;
pub mod pool;
mod streams;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Map, Value};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store, UpdateDeadline};

pub use artifacts::Artifacts;
pub use cache::{Cache, Source};
pub use discovery::{describe_caps, Catalog, ComponentFile, Family, Scan};
pub use host::{CallRecord, HostContext, HostState, ProgressSink};

use crate::policy::Policy;
use crate::spec::{ActionResult, ActionSpec, FailureKind};

/// The current contract's binding at the top; older ones (see [`contract`]) beside it.
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "family",
        path: "../wit/since_v0.2.0",
        imports: { default: async },
        exports: { default: async },
        with: {
            "berth:connector/engine.body-stream": super::streams::StreamHandle,
            "berth:connector/engine.tar-writer": super::bundle::TarWriter,
        },
    });

    /// berth:connector 0.1: its unchanged `types` and `body-stream` are the current ones.
    pub mod v0_1 {
        wasmtime::component::bindgen!({
            world: "family",
            path: "../wit/since_v0.1.0",
            imports: { default: async },
            exports: { default: async },
            with: {
                "berth:connector/types": super::berth::connector::types,
                "berth:connector/engine.body-stream": super::super::streams::StreamHandle,
            },
        });
    }
}

use bindings::exports::berth::connector::actions as wit;
pub use contract::{Contract, FamilyPre};

/// Epoch tick: the CPU deadline's granularity.
pub const TICK: Duration = Duration::from_millis(10);

/// Ticks of the epoch ticker thread (the fair scheduler bumps the epoch too; only these are
/// CPU time).
pub(crate) static REAL_TICKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub use limits::{LimitSpec, Limits, MemoryLimiter};
pub use pool::{Allocation, PoolSpec};

#[derive(Clone, Default)]
pub struct RuntimeConfig {
    /// Compile cache directory; `None` disables caching.
    pub cache_dir: Option<PathBuf>,
    /// The pooling instance allocator (server mode, benchmarks) and what it holds. Keep a
    /// semaphore of at most `instances` permits in front of invocations, so an exhausted pool
    /// waits instead of failing. `None`: on demand.
    pub pool: Option<PoolSpec>,
    /// Map cached components straight from disk instead of copying them: fastest start, for
    /// short-lived CLI processes.
    pub map_cache_files: bool,
    /// Told around each compile (the CLI's progress on stderr).
    pub compile_progress: Option<Arc<dyn cache::CompileProgress>>,
}

/// One engine, one linker, many components.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Cache,
    allocation: Allocation,
    prepared: Mutex<HashMap<String, Arc<Prepared>>>,
    /// Components whose describe() failed, by path: skipped until the file changes.
    quarantine: Mutex<HashMap<PathBuf, (cache::Fingerprint, String)>>,
}

/// A component ready to instantiate: its `InstancePre` and what it declares.
pub struct Prepared {
    pub pre: FamilyPre,
    pub sha256: String,
    pub source: Source,
}

/// The result of one invocation, with what the host saw.
#[derive(Debug)]
pub struct Outcome {
    pub result: ActionResult,
    pub calls: Vec<CallRecord>,
    pub duration: Duration,
    pub written: Vec<artifacts::Written>,
}

/// What a [`Runtime`] is built on that depends on nothing but the allocator: the wasmtime
/// engine (and its epoch ticker) and one linker for every supported contract. The CLI builds
/// these (~0.8 ms) on a thread of its own while it parses its arguments.
pub struct EngineParts {
    engine: Engine,
    linker: Linker<HostState>,
    allocation: Allocation,
}

impl EngineParts {
    /// The engine and linker: with the instance pool `pool` (sized for the host, see
    /// [`pool`]), or allocating on demand.
    pub fn new(pool: Option<PoolSpec>) -> anyhow::Result<Self> {
        let (engine, allocation) = pool::build(pool, |c| Engine::new(c).map_err(|e| anyhow::anyhow!("{e}")))?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow::anyhow!("{e}"))?;
        // One binding per supported contract, side by side in one linker.
        bindings::Family::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s).map_err(|e| anyhow::anyhow!("{e}"))?;
        bindings::v0_1::Family::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s).map_err(|e| anyhow::anyhow!("{e}"))?;
        start_epoch_ticker(&engine);
        Ok(EngineParts { engine, linker, allocation })
    }
}

impl Runtime {
    pub fn new(cfg: RuntimeConfig) -> anyhow::Result<Self> {
        Ok(Self::with_parts(EngineParts::new(cfg.pool)?, cfg))
    }

    /// A runtime on parts built beforehand ([`EngineParts::new`] with `cfg`'s pooling).
    pub fn with_parts(parts: EngineParts, cfg: RuntimeConfig) -> Self {
        let EngineParts { engine, linker, allocation } = parts;
        let mut cache = Cache::new(cfg.cache_dir, &engine, cfg.map_cache_files);
        cache.progress = cfg.compile_progress;
        Runtime { engine, linker, cache, allocation, prepared: Mutex::new(HashMap::new()), quarantine: Mutex::new(HashMap::new()) }
    }

    /// How instances are allocated, and the address space the pool reserved.
    pub fn allocation(&self) -> &Allocation {
        &self.allocation
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// How many components this runtime has compiled or loaded.
    pub fn loaded(&self) -> usize {
        self.prepared.lock().unwrap().len()
    }

    /// The prepared component for a discovered file (loaded once, then shared).
    pub fn prepare(&self, file: &ComponentFile) -> anyhow::Result<Arc<Prepared>> {
        if let Some(p) = self.prepared.lock().unwrap().get(&file.sha256) {
            return Ok(p.clone());
        }
        self.prepare_file(file)
    }

    fn prepare_file(&self, file: &ComponentFile) -> anyhow::Result<Arc<Prepared>> {
        let path = file.path.clone();
        let (component, source) = self.cache.component(&self.engine, &file.sha256, &path.display().to_string(), || {
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
        })?;
        self.finish_prepare(&file.sha256, component, source)
    }

    /// The prepared component `sha` (named `name` in progress), compiled from `bytes` unless
    /// prepared or cached already.
    pub fn prepare_bytes(&self, sha: &str, name: &str, bytes: Option<Vec<u8>>) -> anyhow::Result<Arc<Prepared>> {
        if let Some(p) = self.prepared.lock().unwrap().get(sha) {
            return Ok(p.clone());
        }
        let (component, source) = self.cache.component(&self.engine, sha, name, || bytes.ok_or_else(|| anyhow::anyhow!("component bytes unavailable")))?;
        self.finish_prepare(sha, component, source)
    }

    fn finish_prepare(&self, sha: &str, component: wasmtime::component::Component, source: Source) -> anyhow::Result<Arc<Prepared>> {
        let contract = contract::of_component(&component, &self.engine)?;
        let pre = self.linker.instantiate_pre(&component).map_err(|e| anyhow::anyhow!("cannot link component: {e}"))?;
        let pre = FamilyPre::new(contract, pre)?;
        let p = Arc::new(Prepared { pre, sha256: sha.to_string(), source });
        self.prepared.lock().unwrap().insert(sha.to_string(), p.clone());
        Ok(p)
    }

    fn store(&self, ctx: HostContext, action: &str, policy: Policy, limits: Limits, artifacts: Artifacts) -> Store<HostState> {
        let mut store = Store::new(&self.engine, HostState::new(ctx, action, policy, limits, artifacts));
        store.limiter(|s| &mut s.memory);
        let cpu_ticks = (limits.cpu.as_millis() / TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut cx| {
            let s = cx.data_mut();
            let real = REAL_TICKS.load(std::sync::atomic::Ordering::Relaxed);
            if real != s.cpu.last_tick {
                s.cpu.last_tick = real;
                s.cpu.ticks += 1;
            }
            if s.cpu.ticks > cpu_ticks {
                let why = format!("CPU limit of {:?} exceeded", Duration::from_millis(cpu_ticks * TICK.as_millis() as u64));
                if s.record.violation.is_none() {
                    s.record.violation = Some(why.clone());
                    s.record.violation_is_limit = true;
                }
                return Err(wasmtime::Error::msg(why));
            }
            // Under the fair scheduler: give the slot up when a lighter tenant waits, or after
            // a full slice when anyone does.
            if let Some(cpu) = s.ctx.cpu.clone() {
                if cpu.sched.should_yield(&cpu.tenant, &s.cpu.held) {
                    let held = s.cpu.held.clone();
                    return Ok(UpdateDeadline::YieldCustom(
                        1,
                        Box::pin(async move {
                            drop(held.take());
                            let p = cpu.sched.acquire(&cpu.tenant).await;
                            held.set(Some(p));
                        }),
                    ));
                }
            }
            // Yield so the wall-clock timeout can fire even while the guest spins, and let the
            // runtime poll its I/O driver first: `yield_now` defers the guest until the driver
            // has been polled, where a plain wake would run it again at once and a worker busy
            // with spinning guests would see its sockets only every 61st task poll (tokio's
            // event interval: 0.6 s at this tick), starving accepts and engine answers.
            Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
        });
        store
    }

    /// Instantiates `prepared` in a fresh store and runs one action. `params` must already be
    /// validated against `spec` (see [`ActionSpec::validate`]).
    pub async fn invoke(
        &self,
        prepared: &Prepared,
        ctx: HostContext,
        spec: &ActionSpec,
        params: Map<String, Value>,
        artifacts: Artifacts,
        limits: Limits,
    ) -> Outcome {
        self.invoke_with(prepared, ctx, spec, params, artifacts, limits, Policy::for_action(spec.read_only)).await
    }

    /// [`Runtime::invoke`] under an explicit policy (a tenant's, in server mode).
    #[allow(clippy::too_many_arguments)]
    pub async fn invoke_with(
        &self,
        prepared: &Prepared,
        ctx: HostContext,
        spec: &ActionSpec,
        params: Map<String, Value>,
        artifacts: Artifacts,
        limits: Limits,
        policy: Policy,
    ) -> Outcome {
        let started = Instant::now();
        let echo = spec.redact(&params);
        let credentials = ctx.credentials.clone();
        let policy = policy.declared_operations(&spec.operations);
        let mut store = self.store(ctx, &spec.name, policy, limits, artifacts);
        let params_json = Value::Object(params).to_string();
        let cpu = store.data().ctx.cpu.clone();
        let run = tokio::time::timeout(limits.wall, async {
            if let Some(c) = &cpu {
                let p = c.sched.acquire(&c.tenant).await;
                store.data().cpu.held.set(Some(p));
            }
            prepared.pre.run(&mut store, &spec.name, &params_json).await
        })
        .await;
        let state = store.data_mut();
        drop(state.cpu.held.take());
        let stderr = state.out.stderr.contents();
        let stderr = String::from_utf8_lossy(&stderr);
        let result = match run {
            Err(_) => {
                let why = format!("wall-clock limit of {:?} exceeded", limits.wall);
                state.record.violation.get_or_insert(why.clone());
                ActionResult::failed(echo, FailureKind::Limit, None, why)
            }
            // A component that provoked a policy or sandbox violation fails the invocation as
            // denied (or limit, for a cap), whatever it returns: a well-behaved action never
            // triggers one.
            Ok(_) if state.memory.exceeded.is_some() => {
                let why = state.memory.exceeded.clone().unwrap_or_default();
                ActionResult::failed(echo, FailureKind::Limit, None, why)
            }
            Ok(_) if state.record.violation.is_some() => {
                let why = state.record.violation.clone().unwrap_or_default();
                let kind = if state.record.violation_is_limit { FailureKind::Limit } else { FailureKind::Denied };
                ActionResult::failed(echo, kind, None, why)
            }
            Ok(Err(trap)) => {
                let msg = format!("the {} component crashed: {}", spec.name, crash_message(&trap, stderr.as_bytes()));
                ActionResult::failed(echo, FailureKind::Internal, None, msg)
            }
            Ok(Ok(Err(e))) => match e {
                wit::ActionError::BadParams(m) => ActionResult::failed(echo, FailureKind::BadParams, None, m),
                wit::ActionError::Engine(f) => {
                    let status = (f.status != 0).then_some(f.status);
                    ActionResult::failed(echo, FailureKind::Engine, status, f.message)
                }
                wit::ActionError::Denied(m) => ActionResult::failed(echo, FailureKind::Denied, None, m),
                wit::ActionError::Internal(m) => ActionResult::failed(echo, FailureKind::Internal, None, m),
            },
            Ok(Ok(Ok(out))) => match (serde_json::from_str::<Value>(&out.data), serde_json::from_str::<Value>(&out.summary)) {
                (Ok(Value::Array(data)), Ok(Value::Object(mut summary))) => {
                    if !state.record.applied.is_empty() {
                        summary.insert("policy_applied".into(), Value::from(state.record.applied.clone()));
                    }
                    ActionResult::success(echo, out.message, data, summary)
                }
                _ => ActionResult::failed(echo, FailureKind::Internal, None, format!("the {} component returned malformed data or summary JSON", spec.name)),
            },
        };
        for (stream, text) in [("stdout", String::from_utf8_lossy(&state.out.stdout.contents()).into_owned()), ("stderr", stderr.into_owned())] {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                tracing::info!(target: "berth::guest", action = %spec.name, stream, "{line}");
            }
        }
        let result = scrub(result, &credentials.loaded_secrets());
        Outcome { result, calls: std::mem::take(&mut state.record.calls), duration: started.elapsed(), written: std::mem::take(&mut state.record.written) }
    }

    /// Instantiates without calling anything: the per-invocation fixed cost (benchmarks).
    pub async fn instantiate_only(&self, prepared: &Prepared) -> anyhow::Result<()> {
        let mut store = self.store(HostContext::offline(), "bench", Policy::for_action(true), Limits::default(), Artifacts::default());
        prepared.pre.instantiate(&mut store).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }
}

/// Replaces any held secret that a component let through with `<redacted>`.
fn scrub(result: ActionResult, secrets: &[String]) -> ActionResult {
    if secrets.is_empty() {
        return result;
    }
    let mut text = serde_json::to_string(&result).expect("result serialises");
    let mut hit = false;
    for s in secrets {
        let quoted = serde_json::to_string(s).expect("string serialises");
        let inner = &quoted[1..quoted.len() - 1];
        if text.contains(inner) {
            text = text.replace(inner, "<redacted>");
            hit = true;
        }
    }
    if hit {
        tracing::warn!("a component returned a registry secret; it was redacted");
    }
    serde_json::from_str(&text).unwrap_or(result_fallback())
}

fn result_fallback() -> ActionResult {
    ActionResult::failed(Map::new(), FailureKind::Internal, None, "result could not be redacted".into())
}

/// A trap in a line: the trap itself, and the panic message the guest wrote to stderr.
fn crash_message(trap: &wasmtime::Error, stderr: &[u8]) -> String {
    let stderr = String::from_utf8_lossy(stderr);
    let mut msg = trap_message(trap);
    if let Some(panic) = stderr.lines().find(|l| l.contains("panicked at")) {
        msg.push_str(&format!("; it said: {}", panic.trim()));
        if let Some(next) = stderr.lines().skip_while(|l| !l.contains("panicked at")).nth(1) {
            msg.push_str(&format!(" {}", next.trim()));
        }
    }
    msg
}

fn trap_message(e: &wasmtime::Error) -> String {
    if let Some(t) = e.downcast_ref::<wasmtime::Trap>() {
        return t.to_string();
    }
    e.to_string()
}

fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("berth-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(TICK);
            match weak.upgrade() {
                Some(e) => {
                    REAL_TICKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    e.increment_epoch()
                }
                None => return,
            }
        })
        .expect("spawn epoch ticker");
}
