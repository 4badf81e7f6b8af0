//! Fair share of guest CPU between tenants (server mode).
//!
//! Guest code runs only while its invocation holds one of a few CPU slots (one fewer than the
//! cores, so that one core is always free for HTTP, host calls and hand-overs). A slot is
//! released while the guest waits for the engine. When an invocation wants a slot and none is
//! free, it queues, and the engine's epoch is bumped at once: every running guest reaches its
//! deadline, sees someone waiting and yields its slot. The queue serves first the tenant that
//! has used the least CPU lately (usage decays with a 10 s half-life), so a tenant that floods
//! with CPU-bound invocations cannot delay another tenant's short ones by more than a hand-over.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

const HALF_LIFE: Duration = Duration::from_secs(10);
/// A guest's slice when others of equal standing wait.
const SLICE: Duration = Duration::from_millis(10);

/// One tenant's recent CPU use.
#[derive(Debug)]
pub struct TenantCpu {
    pub name: String,
    /// Decayed nanoseconds and when they were last decayed.
    usage: Mutex<(f64, Instant)>,
}

impl TenantCpu {
    pub fn new(name: &str) -> Arc<Self> {
        Arc::new(TenantCpu { name: name.to_string(), usage: Mutex::new((0.0, Instant::now())) })
    }

    fn decayed(&self) -> f64 {
        let mut u = self.usage.lock().unwrap();
        let now = Instant::now();
        let dt = now.duration_since(u.1).as_secs_f64();
        u.0 *= 0.5f64.powf(dt / HALF_LIFE.as_secs_f64());
        u.1 = now;
        u.0
    }

    fn charge(&self, d: Duration) {
        self.decayed();
        self.usage.lock().unwrap().0 += d.as_nanos() as f64;
    }
}

struct State {
    free: usize,
    /// (tenant usage when queued, arrival) → who waits, and for which tenant.
    waiting: BTreeMap<(u64, u64), (oneshot::Sender<()>, Arc<TenantCpu>)>,
    /// The tenants of the slots held now (one entry per slot).
    holders: Vec<Arc<TenantCpu>>,
    seq: u64,
}

/// The CPU slots and their queue.
pub struct CpuScheduler {
    state: Mutex<State>,
    engine: wasmtime::Engine,
    /// Hand-overs that had to wait, for metrics and tests.
    pub preemptions: AtomicU64,
}

impl CpuScheduler {
    /// `slots` guests run at once; `engine`'s epoch is bumped to preempt them.
    pub fn new(slots: usize, engine: wasmtime::Engine) -> Arc<Self> {
        Arc::new(CpuScheduler {
            state: Mutex::new(State { free: slots.max(1), waiting: BTreeMap::new(), holders: Vec::new(), seq: 0 }),
            engine,
            preemptions: AtomicU64::new(0),
        })
    }

    /// One fewer slot than the cores (at least one).
    pub fn default_slots() -> usize {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).saturating_sub(1).max(1)
    }

    /// Whether someone waits for a slot.
    pub fn contended(&self) -> bool {
        !self.state.lock().unwrap().waiting.is_empty()
    }

    /// Whether a running guest of `tenant` holding `held` should give its slot up now:
    /// another tenant with less recent CPU waits, or anyone waits and the guest has had a
    /// full slice. (Invocations of one tenant take turns by slices only: preempting each
    /// other sooner would only add hand-overs.)
    pub fn should_yield(&self, tenant: &Arc<TenantCpu>, held: &Held) -> bool {
        let (first, other) = match self.state.lock().unwrap().waiting.first_key_value() {
            Some((k, (_, who))) => (k.0, !Arc::ptr_eq(who, tenant)),
            None => return false,
        };
        let slice_over = held.0.lock().unwrap().as_ref().is_none_or(|p| p.since.elapsed() >= SLICE);
        slice_over || (other && first < tenant.decayed() as u64)
    }

    /// Waits for a slot, in order of the tenants' recent CPU use.
    pub async fn acquire(self: &Arc<Self>, tenant: &Arc<TenantCpu>) -> CpuPermit {
        let queued = {
            let mut s = self.state.lock().unwrap();
            if s.free > 0 && s.waiting.is_empty() {
                s.free -= 1;
                s.holders.push(tenant.clone());
                None
            } else {
                let (tx, rx) = oneshot::channel();
                s.seq += 1;
                let key = (tenant.decayed() as u64, s.seq);
                s.waiting.insert(key, (tx, tenant.clone()));
                // Another tenant's guest holds a slot: make every running guest reach its
                // deadline now, so that one yields if this tenant has used less CPU. Behind
                // its own tenant's guests only, it waits for a release or a slice's end.
                let preempt = s.holders.iter().any(|h| !Arc::ptr_eq(h, tenant));
                Some((Waiter { sched: self, tenant, key, rx: Some(rx) }, preempt))
            }
        };
        if let Some((mut waiter, preempt)) = queued {
            if preempt {
                self.preemptions.fetch_add(1, Ordering::Relaxed);
                self.engine.increment_epoch();
            }
            // The sender is only dropped after handing over the slot.
            let _ = waiter.rx.as_mut().expect("receiver").await;
            waiter.rx = None;
        }
        CpuPermit { sched: self.clone(), tenant: tenant.clone(), since: Instant::now() }
    }

    fn release(&self, tenant: &Arc<TenantCpu>) {
        let mut s = self.state.lock().unwrap();
        if let Some(i) = s.holders.iter().position(|h| Arc::ptr_eq(h, tenant)) {
            s.holders.swap_remove(i);
        }
        // Hand the slot to the first waiter still listening (cancelled invocations drop theirs).
        while let Some((_, (tx, who))) = s.waiting.pop_first() {
            if tx.send(()).is_ok() {
                s.holders.push(who);
                return;
            }
        }
        s.free += 1;
    }
}

/// A queued acquire. Dropped before it got its slot (the invocation was cancelled: its client
/// went away, a timeout fired), it leaves the queue, or, if a releaser handed it the slot in
/// the meantime, hands that slot on: a cancelled waiter never takes a slot with it.
struct Waiter<'a> {
    sched: &'a CpuScheduler,
    tenant: &'a Arc<TenantCpu>,
    key: (u64, u64),
    /// `None` once the slot was received and becomes a [`CpuPermit`].
    rx: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if self.rx.is_none() {
            return;
        }
        let queued = self.sched.state.lock().unwrap().waiting.remove(&self.key).is_some();
        if !queued {
            // Popped by a release, which sent us the slot while our receiver was alive.
            self.sched.release(self.tenant);
        }
    }
}

/// A held CPU slot; dropping it charges the tenant and hands the slot on.
pub struct CpuPermit {
    sched: Arc<CpuScheduler>,
    tenant: Arc<TenantCpu>,
    since: Instant,
}

impl Drop for CpuPermit {
    fn drop(&mut self) {
        self.tenant.charge(self.since.elapsed());
        self.sched.release(&self.tenant);
    }
}

/// What an invocation carries: the scheduler and its tenant.
#[derive(Clone)]
pub struct CpuShare {
    pub sched: Arc<CpuScheduler>,
    pub tenant: Arc<TenantCpu>,
}

/// The slot an invocation holds, shared with the epoch callback's yield future.
#[derive(Clone, Default)]
pub struct Held(Arc<Mutex<Option<CpuPermit>>>);

impl Held {
    pub fn set(&self, p: Option<CpuPermit>) {
        *self.0.lock().unwrap() = p;
    }
    pub fn take(&self) -> Option<CpuPermit> {
        self.0.lock().unwrap().take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_lighter_tenant_goes_first() {
        let engine = wasmtime::Engine::default();
        let s = CpuScheduler::new(1, engine);
        let heavy = TenantCpu::new("heavy");
        let light = TenantCpu::new("light");
        heavy.charge(Duration::from_secs(5));
        let held = s.acquire(&heavy).await;
        assert!(!s.contended());
        let (s1, h1) = (s.clone(), heavy.clone());
        let w_heavy = tokio::spawn(async move { (s1.acquire(&h1).await, "heavy") });
        tokio::task::yield_now().await;
        let (s2, l2) = (s.clone(), light.clone());
        let w_light = tokio::spawn(async move { (s2.acquire(&l2).await, "light") });
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(s.contended());
        drop(held);
        let (p, who) = w_light.await.unwrap();
        assert_eq!(who, "light", "the tenant with less recent CPU is served first");
        assert!(!w_heavy.is_finished());
        drop(p);
        let (_p, who) = w_heavy.await.unwrap();
        assert_eq!(who, "heavy");
    }

    #[tokio::test]
    async fn a_waiter_cancelled_after_the_hand_over_passes_the_slot_on() {
        let s = CpuScheduler::new(1, wasmtime::Engine::default());
        let t = TenantCpu::new("t");
        let held = s.acquire(&t).await;
        let (s1, t1) = (s.clone(), t.clone());
        let w = tokio::spawn(async move { s1.acquire(&t1).await });
        tokio::task::yield_now().await;
        assert!(s.contended());
        // The release hands the slot to the queued waiter; the waiter is cancelled before it
        // runs again (its client went away).
        drop(held);
        w.abort();
        assert!(matches!(w.await, Err(e) if e.is_cancelled()));
        let again = tokio::time::timeout(Duration::from_secs(2), s.acquire(&t)).await;
        assert!(again.is_ok(), "the slot went with the cancelled waiter");
        // A waiter cancelled while still queued leaves the queue.
        let (s2, t2) = (s.clone(), t.clone());
        let w = tokio::spawn(async move { s2.acquire(&t2).await });
        tokio::task::yield_now().await;
        assert!(s.contended());
        w.abort();
        let _ = w.await;
        assert!(!s.contended());
        drop(again);
        assert!(tokio::time::timeout(Duration::from_secs(2), s.acquire(&t)).await.is_ok());
    }

    #[test]
    fn usage_decays() {
        let t = TenantCpu::new("t");
        t.charge(Duration::from_secs(1));
        t.usage.lock().unwrap().1 -= HALF_LIFE;
        let d = t.decayed();
        assert!((d - 0.5e9).abs() < 1e7, "{d}");
    }
}
