//! Sandbox caps for one invocation: one set of defaults and one validator, used by the CLI's
//! flags, the tenants config and `--policy` runs alike.

use std::time::Duration;

use wasmtime::{ResourceLimiter, StoreLimits};

/// Sandbox caps for one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory, bytes.
    pub memory_bytes: usize,
    /// Guest CPU time (epoch ticks while guest code runs).
    pub cpu: Duration,
    /// Wall-clock time, host calls included.
    pub wall: Duration,
    /// Engine calls per invocation.
    pub engine_calls: u32,
    /// Response bytes handed to the guest per invocation.
    pub response_bytes: u64,
    /// Largest single (non-streamed) response body.
    pub body_bytes: u64,
}

/// The defaults, everywhere.
pub const DEFAULT_MEMORY_MB: u64 = 128;
pub const DEFAULT_CPU_SECS: f64 = 10.0;
pub const DEFAULT_TIMEOUT_SECS: f64 = 600.0;
pub const DEFAULT_ENGINE_CALLS: u32 = 256;
pub const DEFAULT_RESPONSE_BYTES: u64 = 256 << 20;
const BODY_BYTES: u64 = 64 << 20;

impl Default for Limits {
    fn default() -> Self {
        LimitSpec::default().validate().expect("the defaults are valid")
    }
}

/// Caps as a user gives them (flags or config keys); unset ones take the defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LimitSpec {
    pub memory_mb: Option<u64>,
    pub cpu_secs: Option<f64>,
    pub timeout_secs: Option<f64>,
    pub engine_calls: Option<u32>,
    pub response_bytes: Option<u64>,
}

/// A bad cap: the key (as the config names it) and what is wrong with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitError {
    pub key: &'static str,
    pub msg: String,
}

impl LimitSpec {
    pub fn validate(&self) -> Result<Limits, LimitError> {
        let secs = |key: &'static str, v: Option<f64>, d: f64| -> Result<Duration, LimitError> {
            let v = v.unwrap_or(d);
            if v.is_finite() && v > 0.0 && v <= 86_400.0 {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(LimitError { key, msg: format!("{v} is not between 0 and 86400 seconds") })
            }
        };
        let memory_mb = self.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
        if !(1..=4096).contains(&memory_mb) {
            return Err(LimitError { key: "memory_mb", msg: format!("{memory_mb} is not between 1 and 4096") });
        }
        let engine_calls = self.engine_calls.unwrap_or(DEFAULT_ENGINE_CALLS);
        if engine_calls == 0 {
            return Err(LimitError { key: "engine_calls", msg: "0 allows no engine call at all".into() });
        }
        let response_bytes = self.response_bytes.unwrap_or(DEFAULT_RESPONSE_BYTES);
        Ok(Limits {
            memory_bytes: (memory_mb << 20) as usize,
            cpu: secs("cpu_secs", self.cpu_secs, DEFAULT_CPU_SECS)?,
            wall: secs("timeout_secs", self.timeout_secs, DEFAULT_TIMEOUT_SECS)?,
            engine_calls,
            response_bytes,
            body_bytes: BODY_BYTES.min(response_bytes.max(1)),
        })
    }
}

/// Caps linear memory (and tables/instances) and remembers why growth was refused.
pub struct MemoryLimiter {
    inner: StoreLimits,
    cap: usize,
    pub exceeded: Option<String>,
    /// Linear memory granted so far, all memories together (bytes): what `berth check`
    /// reports as the component's footprint.
    pub granted: usize,
}

impl MemoryLimiter {
    pub(super) fn new(cap: usize) -> Self {
        let inner = wasmtime::StoreLimitsBuilder::new().memory_size(cap).instances(32).tables(64).memories(8).table_elements(1 << 20).build();
        MemoryLimiter { inner, cap, exceeded: None, granted: 0 }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.cap {
            let why = format!("memory limit of {} MiB exceeded (the component asked for {} MiB)", self.cap >> 20, desired.div_ceil(1 << 20));
            self.exceeded = Some(why.clone());
            return Err(wasmtime::Error::msg(why));
        }
        let ok = self.inner.memory_growing(current, desired, maximum)?;
        if ok {
            self.granted += desired.saturating_sub(current);
        }
        Ok(ok)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }
    fn tables(&self) -> usize {
        self.inner.tables()
    }
    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_set_of_defaults_and_checks() {
        let d = Limits::default();
        assert_eq!((d.memory_bytes, d.cpu, d.wall, d.engine_calls), (128 << 20, Duration::from_secs(10), Duration::from_secs(600), 256));
        let e = LimitSpec { memory_mb: Some(0), ..Default::default() }.validate().unwrap_err();
        assert_eq!(e.key, "memory_mb");
        let e = LimitSpec { timeout_secs: Some(-1.0), ..Default::default() }.validate().unwrap_err();
        assert_eq!(e.key, "timeout_secs");
        let l = LimitSpec { response_bytes: Some(1000), ..Default::default() }.validate().unwrap();
        assert_eq!(l.body_bytes, 1000);
    }
}
