//! Helpers for SOAR-compatible aliases: reshaping canonical output into the data paths that
//! platform apps expect, with `total_objects` / `total_objects_successful` summaries.

use crate::{json, Output, Result, Value};

pub fn counted(mut out: Output) -> Result<Output> {
    let n = out.data.len().max(1);
    out.summary.insert("total_objects".into(), json!(n));
    out.summary.insert("total_objects_successful".into(), json!(n));
    Ok(out)
}

/// The Splunk SOAR Docker app's `summary.<key>`: a text for the analyst (the result's message),
/// as that app sets it.
pub fn summary_text(key: &str, mut out: Output) -> Output {
    out.summary.insert(key.into(), json!(out.message));
    out
}

/// `data: [x, y]` → `data: [{key: [x, y]}]`.
pub fn wrap(key: &str, mut out: Output) -> Output {
    let items = std::mem::take(&mut out.data);
    let n = items.len();
    out.data = vec![json!({ key: items })];
    out.summary.insert("total_objects".into(), json!(n));
    out.summary.insert("total_objects_successful".into(), json!(n));
    out
}

/// `data: [x]` → `data: [{key: x}]`.
pub fn wrap_each(key: &str, mut out: Output) -> Output {
    out.data = std::mem::take(&mut out.data).into_iter().map(|x| json!({ key: x })).collect();
    let n = out.data.len();
    out.summary.insert("total_objects".into(), json!(n));
    out.summary.insert("total_objects_successful".into(), json!(n));
    out
}

/// `data: [x]` → `data: [{key: x + {message}}]`.
pub fn with_message(key: &str, mut out: Output) -> Output {
    let message = out.message.clone();
    out.data = std::mem::take(&mut out.data)
        .into_iter()
        .map(|mut x| {
            if let Value::Object(m) = &mut x {
                m.insert("message".into(), json!(message));
            }
            json!({ key: x })
        })
        .collect();
    out.summary.insert("total_objects".into(), json!(1));
    out.summary.insert("total_objects_successful".into(), json!(1));
    out
}
