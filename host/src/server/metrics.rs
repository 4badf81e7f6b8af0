//! Prometheus metrics: invocations, errors, denials, latency histograms and engine calls, by
//! tenant and action.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::spec::{ActionResult, FailureKind};

const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

/// Per label set: bucket counts, count, sum.
type Histogram = ([u64; BUCKETS.len()], u64, f64);

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(String, String), f64>>,
    histograms: Mutex<BTreeMap<String, Histogram>>,
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))).collect();
    if inner.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", inner.join(","))
    }
}

impl Metrics {
    pub fn count(&self, name: &str, l: &[(&str, &str)]) {
        self.add(name, l, 1.0);
    }

    pub fn add(&self, name: &str, l: &[(&str, &str)], v: f64) {
        *self.counters.lock().unwrap().entry((name.to_string(), labels(l))).or_default() += v;
    }

    pub fn observe(&self, tenant: &str, action: &str, r: &ActionResult, took: Duration, engine_calls: usize) {
        let l = [("tenant", tenant), ("action", action)];
        self.count("berth_invocations_total", &l);
        match r.error.as_ref().map(|e| e.kind) {
            Some(FailureKind::Denied) => self.count("berth_denials_total", &l),
            Some(FailureKind::Limit) => self.count("berth_limits_total", &l),
            Some(_) => self.count("berth_errors_total", &l),
            None => {}
        }
        self.add("berth_engine_calls_total", &l, engine_calls as f64);
        let secs = took.as_secs_f64();
        let mut h = self.histograms.lock().unwrap();
        let e = h.entry(labels(&l)).or_insert(([0; BUCKETS.len()], 0, 0.0));
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                e.0[i] += 1;
            }
        }
        e.1 += 1;
        e.2 += secs;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = self.counters.lock().unwrap();
        let mut last = "";
        for ((name, l), v) in counters.iter() {
            if name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            let _ = writeln!(out, "{name}{l} {v}");
        }
        let _ = writeln!(out, "# TYPE berth_invocation_seconds histogram");
        for (l, (buckets, count, sum)) in self.histograms.lock().unwrap().iter() {
            let inner = l.trim_start_matches('{').trim_end_matches('}');
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "berth_invocation_seconds_bucket{{{inner},le=\"{b}\"}} {}", buckets[i]);
            }
            let _ = writeln!(out, "berth_invocation_seconds_bucket{{{inner},le=\"+Inf\"}} {count}");
            let _ = writeln!(out, "berth_invocation_seconds_sum{l} {sum}");
            let _ = writeln!(out, "berth_invocation_seconds_count{l} {count}");
        }
        out
    }
}
