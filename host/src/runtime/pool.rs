//! The instance pool, sized for the host. The pooling allocator reserves the address space of
//! every slot up front: with wasmtime's defaults (4 GiB per linear memory plus guards), 256
//! instances took about 2 TiB, more than a host with a 39-bit address space has. Here each
//! memory's reservation is what an invocation may use (256 MiB unless the server config
//! says otherwise), the pool is tried before use, and a host that cannot reserve it gets
//! on-demand allocation instead, with a warning. The size reserved is reported at start.

use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Each linear memory's reservation by default, MiB: the most a guest may grow to.
pub const DEFAULT_MEMORY_MIB: u32 = 256;
/// The guard region after (and before) each linear memory.
const GUARD: u64 = 32 << 20;

/// What the pool holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSpec {
    /// Component instances at once.
    pub instances: u32,
    /// Each linear memory's reservation and maximum, MiB.
    pub memory_mib: u32,
}

impl PoolSpec {
    /// A wasip2 component is several core instances (the program, the WASI adapter, shims),
    /// each with its own memories and tables, and runs on a fiber stack.
    fn memories(&self) -> u32 {
        self.instances * 2
    }

    /// The address space the pool's memories take (tables and stacks are small beside it).
    pub fn reservation(&self) -> u64 {
        self.memories() as u64 * ((self.memory_mib as u64) << 20).saturating_add(2 * GUARD)
    }

    fn allocator(&self) -> PoolingAllocationConfig {
        let n = self.instances;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n);
        pool.total_core_instances(n * 8);
        pool.total_memories(self.memories());
        pool.total_tables(n * 8);
        pool.total_stacks(n);
        pool.max_memory_size((self.memory_mib as usize) << 20);
        // Return slots to the OS in batches: fewer madvise calls per invocation.
        pool.decommit_batch_size(32);
        // Reset a returning slot by rewriting only the pages the guest dirtied (Linux's
        // PAGEMAP_SCAN, 6.7+; a plain memset of the low pages before that) instead of handing
        // them back to the kernel: the next instance takes no page faults and the other cores
        // no TLB shoot-downs. A Rust family dirties ~1 MiB per call.
        pool.linear_memory_keep_resident(4 << 20);
        pool.table_keep_resident(64 << 10);
        pool.async_stack_keep_resident(128 << 10);
        pool.pagemap_scan(wasmtime::Enabled::Auto);
        pool
    }
}

/// How the engine allocates instances, as built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allocation {
    /// On demand, as asked (the CLI).
    OnDemand,
    /// The pool, and the address space the process grew by when it was made.
    Pooled { spec: PoolSpec, reserved: u64 },
    /// On demand because the pool could not be reserved: why.
    Fallback { spec: PoolSpec, why: String },
}

impl std::fmt::Display for Allocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        match self {
            Allocation::OnDemand => write!(f, "instances allocated on demand"),
            Allocation::Pooled { spec, reserved } => write!(
                f,
                "instance pool: {} instances, {} memories of {} MiB; {:.1} GiB of address space reserved",
                spec.instances,
                spec.memories(),
                spec.memory_mib,
                gib(*reserved)
            ),
            Allocation::Fallback { spec, why } => write!(
                f,
                "instances allocated on demand: a pool of {} instances needs {:.1} GiB of address space, which this host could not reserve ({why}); lower [server] max_concurrent or pool_memory_mib",
                spec.instances,
                gib(spec.reservation())
            ),
        }
    }
}

/// The memory settings every engine shares, pooled or not, so that the CLI and the server
/// compile the same code and share the compile cache: a reservation of `memory_mib` per
/// linear memory (the guest's bounds are checked in code below 4 GiB) and its guards.
pub(super) fn tune(c: &mut Config, memory_mib: u32) {
    c.memory_reservation((memory_mib as u64) << 20);
    c.memory_guard_size(GUARD);
}

/// Makes the engine with the pool if `spec` asks for one and the host can reserve it,
/// otherwise on demand; `make` builds an engine from a config.
pub(super) fn build<T>(spec: Option<PoolSpec>, mut make: impl FnMut(&Config) -> anyhow::Result<T>) -> anyhow::Result<(T, Allocation)> {
    let base = |memory_mib| {
        let mut c = Config::new();
        c.epoch_interruption(true);
        c.wasm_component_model(true);
        tune(&mut c, memory_mib);
        // `BERTH_PROFILER=perfmap`: name the compiled guest code for `perf` (/tmp/perf-PID.map).
        if std::env::var_os("BERTH_PROFILER").is_some_and(|v| v == "perfmap") {
            c.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        c
    };
    let Some(spec) = spec else { return Ok((make(&base(DEFAULT_MEMORY_MIB))?, Allocation::OnDemand)) };
    let mut c = base(spec.memory_mib);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(spec.allocator()));
    let before = vm_size();
    match make(&c) {
        Ok(engine) => {
            let reserved = vm_size().zip(before).map_or(spec.reservation(), |(a, b)| a.saturating_sub(b));
            Ok((engine, Allocation::Pooled { spec, reserved }))
        }
        Err(e) => {
            let fallback = Allocation::Fallback { spec, why: format!("{e:#}") };
            Ok((make(&base(spec.memory_mib))?, fallback))
        }
    }
}

/// This process's virtual size (`VmSize`), bytes.
pub fn vm_size() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = s.lines().find(|l| l.starts_with("VmSize:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib << 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_pool_fits_a_39_bit_host() {
        let spec = PoolSpec { instances: 256, memory_mib: DEFAULT_MEMORY_MIB };
        assert!(spec.reservation() <= 256 << 30, "{}", spec.reservation());
        assert_eq!(PoolSpec { instances: 8, memory_mib: 64 }.reservation(), 2 << 30);
    }

    #[test]
    fn a_pool_the_host_cannot_reserve_falls_back() {
        let spec = PoolSpec { instances: 4, memory_mib: 64 };
        let mut tries = 0;
        let (_, a) = build(Some(spec), |c| {
            tries += 1;
            if tries == 1 {
                anyhow::bail!("mmap failed: Cannot allocate memory")
            }
            wasmtime::Engine::new(c).map_err(|e| anyhow::anyhow!("{e}"))
        })
        .unwrap();
        assert!(matches!(&a, Allocation::Fallback { why, .. } if why.contains("mmap")), "{a:?}");
        assert!(a.to_string().contains("max_concurrent"), "{a}");
        let (_, a) = build(Some(spec), |c| wasmtime::Engine::new(c).map_err(|e| anyhow::anyhow!("{e}"))).unwrap();
        let Allocation::Pooled { reserved, .. } = a else { panic!("{a:?}") };
        assert!(reserved >= spec.reservation() / 2 && reserved < 64 << 30, "{reserved}");
    }
}
