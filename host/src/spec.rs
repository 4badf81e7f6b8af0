//! Host-side action specs (mirroring the WIT `actions` records), param validation, and the
//! SOAR `action_result` shape.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Investigate,
    Generic,
    Contain,
    Correct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    String,
    Integer,
    Number,
    Boolean,
    Object,
    Array,
    Any,
}

impl ValueType {
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Integer => "integer",
            ValueType::Number => "number",
            ValueType::Boolean => "boolean",
            ValueType::Object => "object",
            ValueType::Array => "array",
            ValueType::Any => "any",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub value_type: ValueType,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    pub description: String,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionSpec {
    pub name: String,
    pub summary: String,
    pub kind: Kind,
    pub read_only: bool,
    pub params: Vec<ParamSpec>,
    pub output: Vec<String>,
    /// Engine API operations (operationIds) the action declares it calls (contract 0.2);
    /// empty when it declares none, and then nothing is restricted by operation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyInfo {
    pub name: String,
    pub version: String,
    pub actions: Vec<ActionSpec>,
}

/// A param problem found before any engine call (CLI exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamError(pub String);

/// Where raw param values came from: `k=v` strings are coerced to the declared type; JSON
/// values must already have it (strings holding a number or boolean are accepted, as SOAR
/// platforms send them).
pub enum RawParams {
    Pairs(Vec<(String, String)>),
    Json(Map<String, Value>),
}

impl ActionSpec {
    /// Validates and types `raw`, fills defaults, and returns the params object for the guest.
    pub fn validate(&self, raw: RawParams) -> Result<Map<String, Value>, ParamError> {
        let mut out = Map::new();
        let entries: Vec<(String, Value)> = match raw {
            RawParams::Pairs(p) => p.into_iter().map(|(k, v)| (k, Value::String(v))).collect(),
            RawParams::Json(m) => m.into_iter().collect(),
        };
        for (name, value) in entries {
            let Some(spec) = self.params.iter().find(|p| p.name == name) else {
                let known: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                let close = near(&name, known.iter().copied());
                let known = if known.is_empty() { "it takes no parameters".to_string() } else { format!("known: {}", known.join(", ")) };
                let hint = if close.is_empty() { String::new() } else { format!("; did you mean {}?", close.join(", ")) };
                return Err(ParamError(format!("unknown parameter '{name}' for {} ({known}){hint}", self.name)));
            };
            if out.contains_key(&name) {
                return Err(ParamError(format!("parameter '{name}' given more than once")));
            }
            if value.is_null() {
                continue;
            }
            out.insert(name, coerce(spec, value)?);
        }
        for p in &self.params {
            if out.contains_key(&p.name) {
                continue;
            }
            if let Some(d) = &p.default {
                out.insert(p.name.clone(), d.clone());
            } else if p.required {
                return Err(ParamError(format!("missing required parameter '{}' ({}) for {}", p.name, p.value_type.name(), self.name)));
            }
        }
        Ok(out)
    }

    /// The params' JSON Schema.
    pub fn json_schema(&self) -> Value {
        let mut props = Map::new();
        for p in &self.params {
            let mut s = Map::new();
            if p.value_type != ValueType::Any {
                s.insert("type".into(), json!(p.value_type.name()));
            }
            if !p.description.is_empty() {
                s.insert("description".into(), json!(p.description));
            }
            if let Some(d) = &p.default {
                s.insert("default".into(), d.clone());
            }
            if p.secret {
                s.insert("writeOnly".into(), json!(true));
            }
            props.insert(p.name.clone(), Value::Object(s));
        }
        let required: Vec<&str> = self.params.iter().filter(|p| p.required).map(|p| p.name.as_str()).collect();
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.name,
            "description": self.summary,
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": false,
        })
    }

    /// The params as echoed in output and logs, secrets redacted.
    pub fn redact(&self, params: &Map<String, Value>) -> Map<String, Value> {
        let mut m = params.clone();
        for p in self.params.iter().filter(|p| p.secret) {
            if let Some(v) = m.get_mut(&p.name) {
                *v = json!("<redacted>");
            }
        }
        m
    }
}

/// A float that is a whole number within i64's range, as that integer.
fn integral(f: f64) -> Option<i64> {
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64)
}

fn coerce(spec: &ParamSpec, value: Value) -> Result<Value, ParamError> {
    let bad = |got: &Value| {
        ParamError(format!(
            "parameter '{}' must be {} {}, got {}",
            spec.name,
            if spec.value_type == ValueType::Integer || spec.value_type == ValueType::Array || spec.value_type == ValueType::Object { "an" } else { "a" },
            spec.value_type.name(),
            short(got)
        ))
    };
    match (spec.value_type, value) {
        (ValueType::Any, Value::String(s)) => Ok(serde_json::from_str::<Value>(&s).ok().filter(|v| v.is_object() || v.is_array()).unwrap_or(Value::String(s))),
        (ValueType::Any, v) => Ok(v),
        (ValueType::String, Value::String(s)) => Ok(Value::String(s)),
        (ValueType::String, v @ (Value::Number(_) | Value::Bool(_))) => Ok(Value::String(v.to_string())),
        (ValueType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Value::Number(n)),
        // Platforms send numbers as floats (`5.0`): an integral one is that integer.
        (ValueType::Integer, Value::Number(n)) => n.as_f64().and_then(integral).map(Value::from).ok_or_else(|| bad(&Value::Number(n))),
        (ValueType::Integer, Value::String(s)) => {
            let t = s.trim();
            t.parse::<i64>().ok().or_else(|| t.parse::<f64>().ok().and_then(integral)).map(Value::from).ok_or_else(|| bad(&Value::String(s)))
        }
        (ValueType::Number, Value::Number(n)) => Ok(Value::Number(n)),
        (ValueType::Number, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| bad(&Value::String(s))),
        (ValueType::Boolean, Value::Bool(b)) => Ok(Value::Bool(b)),
        (ValueType::Boolean, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Bool(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Bool(false)),
            _ => Err(bad(&Value::String(s))),
        },
        (ValueType::Object, v @ Value::Object(_)) => Ok(v),
        (ValueType::Array, v @ Value::Array(_)) => Ok(v),
        (ValueType::Object | ValueType::Array, Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(v @ Value::Object(_)) if spec.value_type == ValueType::Object => Ok(v),
            Ok(v @ Value::Array(_)) if spec.value_type == ValueType::Array => Ok(v),
            // A bare word for an array param is a one-element list: `type=image`.
            Err(_) if spec.value_type == ValueType::Array && !s.trim_start().starts_with(['[', '{']) => {
                Ok(Value::Array(s.split(',').map(|x| Value::String(x.trim().to_string())).collect()))
            }
            _ => Err(bad(&Value::String(s))),
        },
        (_, v) => Err(bad(&v)),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}…", &s[..s.char_indices().nth(57).map(|(i, _)| i).unwrap_or(s.len())])
    } else {
        s
    }
}

/// The SOAR `action_result`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActionResult {
    pub status: Status,
    pub message: String,
    pub parameter: Map<String, Value>,
    pub data: Vec<Value>,
    pub summary: Map<String, Value>,
    /// On failure: what kind of failure, for machines (`engine`, `bad_params`, `denied`, ...).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<ErrorInfo>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Success,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorInfo {
    pub kind: FailureKind,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<u16>,
}

/// Failure classes; each maps to one CLI exit code.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The engine said no, or could not be reached (exit 1).
    Engine,
    /// The component failed or crashed (exit 1).
    Internal,
    /// Params were wrong (exit 2).
    BadParams,
    /// Refused by policy: allowlist, read-only, pins, label scope, engine policy (exit 3).
    Denied,
    /// Stopped by a sandbox or tenant cap: wall clock, CPU, memory, engine calls, response or
    /// artifact bytes, request rate, queue (exit 4).
    Limit,
}

impl FailureKind {
    pub fn exit_code(self) -> i32 {
        match self {
            FailureKind::Engine | FailureKind::Internal => 1,
            FailureKind::BadParams => 2,
            FailureKind::Denied => 3,
            FailureKind::Limit => 4,
        }
    }
}

impl ActionResult {
    pub fn success(parameter: Map<String, Value>, message: String, data: Vec<Value>, summary: Map<String, Value>) -> Self {
        ActionResult { status: Status::Success, message, parameter, data, summary, error: None }
    }
    pub fn failed(parameter: Map<String, Value>, kind: FailureKind, status: Option<u16>, message: String) -> Self {
        ActionResult { status: Status::Failed, message, parameter, data: Vec::new(), summary: Map::new(), error: Some(ErrorInfo { kind, status }) }
    }
    pub fn exit_code(&self) -> i32 {
        self.error.as_ref().map(|e| e.kind.exit_code()).unwrap_or(0)
    }
}

/// The names among `names` that `want` was probably meant to be: the same words whatever the
/// separators (`-`, `_`, `.`, space), case or order (`added-caps`, `caps_added` → `added_caps`),
/// one containing the other, or a few typos away. Best first, at most five.
pub fn near<'a>(want: &str, names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    fn words(s: &str) -> Vec<String> {
        let mut w: Vec<String> =
            s.split(|c: char| c == '-' || c == '_' || c == '.' || c.is_whitespace()).filter(|w| !w.is_empty()).map(str::to_ascii_lowercase).collect();
        w.sort();
        w
    }
    let flat = |s: &str| s.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect::<String>();
    let (ww, wf) = (words(want), flat(want));
    let mut scored: Vec<(usize, &str)> = names
        .filter_map(|n| {
            let nf = flat(n);
            let score = if words(n) == ww || nf == wf {
                0
            } else if wf.len() >= 3 && (nf.contains(&wf) || wf.contains(&nf)) {
                1
            } else {
                let d = strsim::damerau_levenshtein(&wf, &nf);
                if d <= 2.max(wf.len() / 4) {
                    1 + d
                } else {
                    return None;
                }
            };
            Some((score, n))
        })
        .collect();
    scored.sort();
    scored.into_iter().map(|(_, n)| n).take(5).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ActionSpec {
        let p = |name: &str, t, required, default: Option<Value>| ParamSpec {
            name: name.into(),
            value_type: t,
            required,
            default,
            description: String::new(),
            secret: name == "password",
        };
        ActionSpec {
            name: "x.y".into(),
            summary: String::new(),
            kind: Kind::Investigate,
            read_only: true,
            params: vec![
                p("id", ValueType::String, true, None),
                p("limit", ValueType::Integer, false, Some(json!(10))),
                p("all", ValueType::Boolean, false, None),
                p("filters", ValueType::Any, false, None),
                p("types", ValueType::Array, false, None),
                p("password", ValueType::String, false, None),
            ],
            output: vec![],
            operations: vec![],
        }
    }

    fn pairs(p: &[(&str, &str)]) -> RawParams {
        RawParams::Pairs(p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn coerces_pairs_and_fills_defaults() {
        let m = spec().validate(pairs(&[("id", "abc"), ("all", "yes"), ("filters", r#"{"a":["b"]}"#), ("types", "image,volume")])).unwrap();
        assert_eq!(Value::Object(m), json!({"id":"abc","all":true,"limit":10,"filters":{"a":["b"]},"types":["image","volume"]}));
    }

    #[test]
    fn errors_name_the_param_and_type() {
        let e = spec().validate(pairs(&[("id", "a"), ("limit", "ten")])).unwrap_err().0;
        assert!(e.contains("'limit'") && e.contains("integer") && e.contains("\"ten\""), "{e}");
        let e = spec().validate(pairs(&[("limit", "1")])).unwrap_err().0;
        assert!(e.contains("missing required parameter 'id' (string)"), "{e}");
        let e = spec().validate(pairs(&[("id", "a"), ("bogus", "1")])).unwrap_err().0;
        assert!(e.contains("unknown parameter 'bogus'") && e.contains("known: id, limit"), "{e}");
        // Numbers as platforms send them.
        let limit = |v: Value| spec().validate(RawParams::Json(json!({"id": "x", "limit": v}).as_object().unwrap().clone())).map(|m| m["limit"].clone());
        assert_eq!(limit(json!(5.0)).unwrap(), json!(5));
        assert_eq!(limit(json!("5.0")).unwrap(), json!(5));
        assert_eq!(limit(json!(" 7 ")).unwrap(), json!(7));
        assert_eq!(limit(json!(-3.0)).unwrap(), json!(-3));
        for bad in [json!(5.5), json!("5.5"), json!("five"), json!(1e30), json!(true)] {
            let e = limit(bad.clone()).unwrap_err().0;
            assert!(e.contains("parameter 'limit' must be an integer"), "{bad}: {e}");
        }
        assert_eq!(near("added-caps", ["added_caps", "cap_drop", "image"].into_iter()), ["added_caps"]);
        assert_eq!(near("caps_added", ["added_caps", "image"].into_iter()), ["added_caps"]);
        assert_eq!(near("rootcontainers", ["root_containers", "privileged"].into_iter()), ["root_containers"]);
        assert_eq!(near("container.lst", ["container.list", "container.logs", "image.list"].into_iter())[0], "container.list");
        assert!(near("zzz", ["container.list"].into_iter()).is_empty());
        let mut m = Map::new();
        m.insert("id".into(), json!("a"));
        m.insert("all".into(), json!(3));
        let e = spec().validate(RawParams::Json(m)).unwrap_err().0;
        assert!(e.contains("'all' must be a boolean, got 3"), "{e}");
    }

    #[test]
    fn secrets_redacted() {
        let s = spec();
        let m = s.validate(pairs(&[("id", "a"), ("password", "hunter2")])).unwrap();
        assert_eq!(s.redact(&m)["password"], json!("<redacted>"));
    }

    #[test]
    fn schema_lists_required() {
        let schema = spec().json_schema();
        assert_eq!(schema["required"], json!(["id"]));
        assert_eq!(schema["properties"]["limit"]["type"], json!("integer"));
        assert_eq!(schema["additionalProperties"], json!(false));
    }
}
