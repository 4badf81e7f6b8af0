//! berth guest SDK: what an action family needs so that it is mostly declarations.
//!
//! ```ignore
//! use berth_sdk::prelude::*;
//!
//! fn actions() -> Vec<Action> {
//!     vec![Action::new("demo.ping", "Ping the engine")
//!         .read_only()
//!         .output(&["action_result.data.*.ok"])
//!         .run(|_p| Ok(Output::one("pong", json!({"ok": true}))))]
//! }
//! berth_sdk::family!(name: "demo", actions: actions);
//! ```

pub mod bindings {
    wit_bindgen::generate!({
        world: "family",
        path: "../../wit/since_v0.2.0",
        pub_export_macro: true,
        export_macro_name: "export_family",
        default_bindings_module: "berth_sdk::bindings",
    });
}

/// The `berth:connector` contract this SDK builds for, as [`family!`] writes it into the
/// component's `berth:contract` custom section (the host links the matching binding).
pub const CONTRACT: [u8; 5] = *b"0.2.0";

/// The SDK reference (`REFERENCE.md`): every example in it is compiled as a doctest.
#[doc = include_str!("../REFERENCE.md")]
pub mod reference {}

pub mod commit;
pub mod engine;
pub mod logs;
pub mod soar;
mod spec;
pub mod stream;
pub mod swarm;
pub mod typed;

pub use engine::{delete, get, head, post, put, seg, Request, Response, Stdin};
pub use serde_json::{self, json, Map, Value};
pub use spec::{Action, Param};

use bindings::exports::berth::connector::actions as wit;
pub use wit::{Kind, ValueType};

/// A structured action error; maps 1:1 onto the WIT `action-error`.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    BadParams(String),
    Engine { status: u16, message: String },
    Denied(String),
    Internal(String),
}

impl Error {
    pub fn bad_params(msg: impl Into<String>) -> Self {
        Error::BadParams(msg.into())
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::BadParams(m) | Error::Denied(m) | Error::Internal(m) => f.write_str(m),
            Error::Engine { status, message } => write!(f, "engine returned {status}: {message}"),
        }
    }
}

impl From<Error> for wit::ActionError {
    fn from(e: Error) -> Self {
        match e {
            Error::BadParams(m) => wit::ActionError::BadParams(m),
            Error::Engine { status, message } => wit::ActionError::Engine(wit::EngineFailure { status, message }),
            Error::Denied(m) => wit::ActionError::Denied(m),
            Error::Internal(m) => wit::ActionError::Internal(m),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What an action returns: the SOAR `action_result` body minus what the host adds.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub message: String,
    pub data: Vec<Value>,
    pub summary: Map<String, Value>,
}

impl Output {
    pub fn new(message: impl Into<String>) -> Self {
        Output { message: message.into(), ..Default::default() }
    }
    /// One data item.
    pub fn one(message: impl Into<String>, item: Value) -> Self {
        Output::new(message).item(item)
    }
    pub fn item(mut self, item: Value) -> Self {
        self.data.push(item);
        self
    }
    pub fn summary(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.summary.insert(key.to_string(), value.into());
        self
    }

    /// A list as the data, with `total_objects`: "`n` `what`".
    pub fn listed(what: &str, items: Vec<Value>) -> Self {
        let n = items.len();
        let what = if n == 1 { singular(what) } else { what.to_string() };
        let mut out = Output::new(format!("{n} {what}")).summary("total_objects", n);
        out.data = items;
        out
    }

    /// [`Output::listed`] for a JSON array (anything else is an empty list).
    pub fn listed_json(what: &str, v: &Value) -> Self {
        Output::listed(what, v.as_array().cloned().unwrap_or_default())
    }

    /// The output of a prune: `v[key]` lists what went (`what` names it), `SpaceReclaimed`
    /// what it freed when the engine reports it.
    pub fn pruned(v: Value, key: &str, what: &str) -> Self {
        let n = v[key].as_array().map(|a| a.len()).unwrap_or(0);
        let space = v["SpaceReclaimed"].clone();
        let message = match space.as_u64() {
            Some(bytes) => format!("Deleted {n} {what}, reclaimed {bytes} bytes"),
            None => format!("Deleted {n} {what}"),
        };
        let out = Output::one(message, v).summary("total_objects", n);
        if space.is_null() {
            out
        } else {
            out.summary("space_reclaimed", space)
        }
    }
}

/// Validated params as the host passed them (defaults filled in).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Map<String, Value>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
    }
    pub fn req_str(&self, name: &str) -> Result<&str> {
        self.str(name).ok_or_else(|| Error::bad_params(format!("parameter '{name}' (string) is required")))
    }
    pub fn i64(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_i64)
    }
    pub fn f64(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(Value::as_f64)
    }
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(Value::as_bool)
    }
    pub fn flag(&self, name: &str) -> bool {
        self.bool(name).unwrap_or(false)
    }
}

/// Guest logging, routed to the host's tracing.
pub mod log {
    use crate::bindings::berth::connector::log as wit;
    pub use crate::bindings::berth::connector::log::Level;

    pub fn info(msg: &str) {
        wit::log(Level::Info, msg)
    }
    pub fn debug(msg: &str) {
        wit::log(Level::Debug, msg)
    }
    pub fn warn(msg: &str) {
        wit::log(Level::Warn, msg)
    }
    pub fn progress(id: &str, current: u64, total: Option<u64>, msg: &str) {
        wit::progress(id, current, total, msg)
    }
}

/// Runs `action` from `actions`; used by [`family!`].
/// "containers" → "container", "history entries" → "history entry", "containers running x"
/// → "container running x": the first word that ends in `s`, made singular.
pub fn singular(what: &str) -> String {
    let mut done = false;
    let words: Vec<String> = what
        .split(' ')
        .map(|w| {
            if done || !w.ends_with('s') {
                return w.to_string();
            }
            done = true;
            if let Some(stem) = w.strip_suffix("ies") {
                format!("{stem}y")
            } else if ["sses", "xes", "ches", "shes"].iter().any(|e| w.ends_with(e)) {
                w[..w.len() - 2].to_string()
            } else {
                w[..w.len() - 1].to_string()
            }
        })
        .collect();
    words.join(" ")
}

#[doc(hidden)]
pub fn __run(actions: fn() -> Vec<Action>, action: &str, params: &str) -> Result<wit::ActionOutput, wit::ActionError> {
    let act = spec::only(action, actions)
        .into_iter()
        .find(|a| a.name() == action)
        .ok_or_else(|| wit::ActionError::BadParams(format!("unknown action '{action}'")))?;
    let params = match serde_json::from_str::<Value>(params) {
        Ok(Value::Object(m)) => Params(m),
        _ => return Err(wit::ActionError::BadParams("params must be a JSON object".into())),
    };
    let handler = act.handler.ok_or_else(|| wit::ActionError::Internal(format!("action '{action}' has no handler")))?;
    let out = handler(&params).map_err(wit::ActionError::from)?;
    Ok(wit::ActionOutput { message: out.message, data: Value::Array(out.data).to_string(), summary: Value::Object(out.summary).to_string() })
}

#[doc(hidden)]
pub fn __describe(name: &str, version: &str, actions: Vec<Action>) -> wit::FamilyInfo {
    wit::FamilyInfo { name: name.to_string(), version: version.to_string(), actions: actions.into_iter().map(Action::into_spec).collect() }
}

/// Declares and exports a family: `family!(name: "system", actions: my_actions_fn);`
#[macro_export]
macro_rules! family {
    (name: $name:expr, actions: $actions:path $(,)?) => {
        struct __BerthFamily;
        impl $crate::bindings::exports::berth::connector::actions::Guest for __BerthFamily {
            fn describe() -> $crate::bindings::exports::berth::connector::actions::FamilyInfo {
                $crate::__describe($name, env!("CARGO_PKG_VERSION"), $actions())
            }
            fn run(
                action: String,
                params: String,
            ) -> Result<
                $crate::bindings::exports::berth::connector::actions::ActionOutput,
                $crate::bindings::exports::berth::connector::actions::ActionError,
            > {
                $crate::__run($actions, &action, &params)
            }
        }
        $crate::bindings::export_family!(__BerthFamily with_types_in $crate::bindings);

        /// The contract version this family was built for (read by the host).
        #[link_section = "berth:contract"]
        #[used]
        static __BERTH_CONTRACT: [u8; 5] = $crate::CONTRACT;
    };
}

pub mod prelude {
    pub use crate::{delete, get, head, json, log, post, put, seg, Action, Error, Kind, Map, Output, Param, Params, Request, Result, Value};
}

pub mod params;

#[cfg(test)]
mod tests {
    #[test]
    fn one_item_is_named_in_the_singular() {
        for (many, one) in [
            ("containers", "container"),
            ("history entries", "history entry"),
            ("matches", "match"),
            ("processes", "process"),
            ("filesystem changes in abc", "filesystem change in abc"),
            ("privileges asked for by x/y:1", "privilege asked for by x/y:1"),
            ("containers running app:1", "container running app:1"),
            ("containers at risk", "container at risk"),
        ] {
            assert_eq!(super::singular(many), one);
        }
        assert_eq!(super::Output::listed("containers", vec![serde_json::json!({})]).message, "1 container");
        assert_eq!(super::Output::listed("containers", vec![]).message, "0 containers");
    }
}
