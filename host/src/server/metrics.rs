//! Prometheus metrics (prometheus-client): invocations, errors, denials, caps hit, latency
//! histograms and engine calls, by tenant and action; refused tokens.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::spec::{ActionResult, FailureKind};

const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    tenant: String,
    action: String,
}

type Counters = Family<Labels, Counter>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EngineLabel {
    engine: String,
}

pub struct Metrics {
    registry: Registry,
    invocations: Counters,
    errors: Counters,
    denials: Counters,
    limits: Counters,
    engine_calls: Counters,
    latency: Family<Labels, Histogram>,
    unauthorized: Counter,
    engine_waited: Family<EngineLabel, Counter>,
    engine_busy: Family<EngineLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let counters = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counters::default();
            registry.register(name, help, c.clone());
            c
        };
        let invocations = counters(&mut registry, "berth_invocations", "Invocations, by tenant and action");
        let errors = counters(&mut registry, "berth_errors", "Invocations that failed (engine, params, crash)");
        let denials = counters(&mut registry, "berth_denials", "Invocations refused by policy");
        let limits = counters(&mut registry, "berth_limits", "Invocations stopped by a cap");
        let engine_calls = counters(&mut registry, "berth_engine_calls", "Engine calls made, the gate's own inspections included");
        let latency = Family::<Labels, Histogram>::new_with_constructor(|| Histogram::new(BUCKETS));
        registry.register("berth_invocation_seconds", "Invocation time", latency.clone());
        let unauthorized = Counter::default();
        registry.register("berth_unauthorized", "Requests with no or an unknown token", unauthorized.clone());
        let engine_waited = Family::<EngineLabel, Counter>::default();
        registry.register("berth_engine_throttled", "Engine requests that waited for the engine's rate or connection cap", engine_waited.clone());
        let engine_busy = Family::<EngineLabel, Counter>::default();
        registry.register("berth_engine_busy", "Engine requests refused after waiting too long for the engine's caps", engine_busy.clone());
        Metrics { registry, invocations, errors, denials, limits, engine_calls, latency, unauthorized, engine_waited, engine_busy }
    }
}

impl Metrics {
    pub fn unauthorized(&self) {
        self.unauthorized.inc();
    }

    pub fn observe(&self, tenant: &str, action: &str, r: &ActionResult, took: Duration, engine_calls: usize) {
        let l = Labels { tenant: tenant.to_string(), action: action.to_string() };
        self.invocations.get_or_create(&l).inc();
        match r.error.as_ref().map(|e| e.kind) {
            Some(FailureKind::Denied) => self.denials.get_or_create(&l).inc(),
            Some(FailureKind::Limit) => self.limits.get_or_create(&l).inc(),
            Some(_) => self.errors.get_or_create(&l).inc(),
            None => 0,
        };
        self.engine_calls.get_or_create(&l).inc_by(engine_calls as u64);
        self.latency.get_or_create(&l).observe(took.as_secs_f64());
    }

    /// The counters an engine's throttle feeds: (waited, refused).
    pub fn engine_counters(&self, engine: &str) -> (Counter, Counter) {
        let l = EngineLabel { engine: engine.to_string() };
        (self.engine_waited.get_or_create(&l).clone(), self.engine_busy.get_or_create(&l).clone())
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}
