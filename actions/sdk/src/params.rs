//! Parameter helpers shared by families: Docker filters and timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Error, Map, Params, Result, Value};

impl Params {
    /// Docker `filters`: accepts an object (`{"label": ["a=b"]}` or `{"label": "a=b"}`) or its JSON
    /// text, and returns the engine's form (every value a list of strings), or None when empty.
    pub fn filters(&self, name: &str) -> Result<Option<Value>> {
        filters_value(self.get(name), name)
    }
}

/// [`Params::filters`] on a value already read.
pub fn filters_value(v: Option<&Value>, name: &str) -> Result<Option<Value>> {
    {
        let raw = match v {
            None => return Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
            Some(Value::String(s)) => {
                serde_json::from_str::<Value>(s).map_err(|e| Error::bad_params(format!("parameter '{name}' must be a JSON object of filters ({e})")))?
            }
            Some(v) => v.clone(),
        };
        let Value::Object(obj) = raw else {
            return Err(Error::bad_params(format!("parameter '{name}' must be an object such as {{\"label\": [\"k=v\"]}}")));
        };
        let mut out = Map::new();
        for (k, v) in obj {
            let list = match v {
                Value::String(s) => vec![Value::String(s)],
                Value::Bool(b) => vec![Value::String(b.to_string())],
                Value::Number(n) => vec![Value::String(n.to_string())],
                Value::Array(a) => a
                    .into_iter()
                    .map(|x| match x {
                        Value::String(s) => Ok(Value::String(s)),
                        Value::Number(n) => Ok(Value::String(n.to_string())),
                        Value::Bool(b) => Ok(Value::String(b.to_string())),
                        _ => Err(Error::bad_params(format!("filter '{k}' in '{name}' must hold strings"))),
                    })
                    .collect::<Result<_>>()?,
                // The engine's older map form: {"label": {"a=b": true}}.
                Value::Object(m) => m.into_iter().filter(|(_, on)| on.as_bool() != Some(false)).map(|(s, _)| Value::String(s)).collect(),
                Value::Null => continue,
            };
            out.insert(k, Value::Array(list));
        }
        Ok(if out.is_empty() { None } else { Some(Value::Object(out)) })
    }
}

impl Params {
    /// A point in time as the engine's `seconds[.nanos]` form. Accepts unix seconds, RFC 3339
    /// (`2026-01-02T03:04:05Z`, optional fraction and offset) or a duration before now (`90s`,
    /// `10m`, `2h`, `1d`), as the docker CLI does.
    pub fn timestamp(&self, name: &str) -> Result<Option<String>> {
        let v = match self.get(name) {
            None => return Ok(None),
            Some(Value::Number(n)) => return Ok(Some(n.to_string())),
            Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(other) => return Err(Error::bad_params(format!("parameter '{name}' must be a timestamp, got {other}"))),
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        parse_time(&v, now)
            .map(Some)
            .ok_or_else(|| Error::bad_params(format!("parameter '{name}' must be unix seconds, RFC 3339 or a duration like 10m, got \"{v}\"")))
    }
}

/// Parses a time expression relative to `now` (unix seconds); see [`Params::timestamp`].
pub fn parse_time(s: &str, now: i64) -> Option<String> {
    if let Some(secs) = parse_seconds(s) {
        return Some(secs);
    }
    if let Some(d) = parse_duration(s) {
        return Some((now - d).to_string());
    }
    let secs = parse_rfc3339(s)?;
    // Keep the fraction, as the engine's `seconds.nanoseconds` form.
    match rfc3339_fraction(s) {
        Some(f) if f.bytes().any(|b| b != b'0') => Some(format!("{secs}.{f}")),
        _ => Some(secs.to_string()),
    }
}

/// The fractional seconds of an RFC 3339 time, as 9 digits.
fn rfc3339_fraction(s: &str) -> Option<String> {
    let r = s.get(19..)?.strip_prefix('.')?;
    let digits: String = r.chars().take_while(char::is_ascii_digit).take(9).collect();
    (!digits.is_empty()).then(|| format!("{digits:0<9}"))
}

fn parse_seconds(s: &str) -> Option<String> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let ok = !int.is_empty() && int.bytes().all(|b| b.is_ascii_digit()) && frac.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| s.to_string())
}

/// `90s`, `10m`, `2h`, `1d`, or combinations like `1h30m`, in seconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut num = String::new();
    let mut any = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return None,
        };
        any = true;
    }
    (any && num.is_empty()).then_some(total)
}

/// RFC 3339 to whole unix seconds (see [`parse_time`] for the fraction).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        rest = &r[end..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        r if r.len() == 6 && (r.starts_with('+') || r.starts_with('-')) => {
            let sign = if r.starts_with('-') { -1 } else { 1 };
            sign * (r[1..3].parse::<i64>().ok()? * 3600 + r[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    Some(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000", 0).as_deref(), Some("1700000000"));
        assert_eq!(parse_time("1700000000.5", 0).as_deref(), Some("1700000000.5"));
        assert_eq!(parse_time("10m", 1000).as_deref(), Some("400"));
        assert_eq!(parse_time("1h30m", 10000).as_deref(), Some("4600"));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("2023-11-14T23:13:20.123+01:00"), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20.25Z", 0).as_deref(), Some("1700000000.250000000"));
        assert_eq!(parse_time("2023-11-14T22:13:20.000Z", 0).as_deref(), Some("1700000000"));
        assert_eq!(parse_time("yesterday", 0), None);
        assert_eq!(parse_time("10x", 0), None);
        assert_eq!(parse_time("", 0), None);
    }

    #[test]
    fn filters_normalised() {
        let mut m = Map::new();
        m.insert("f".into(), serde_json::json!({"type": "container", "label": ["a=b"], "x": {"k": true}}));
        let f = Params(m).filters("f").unwrap().unwrap();
        assert_eq!(f, serde_json::json!({"type": ["container"], "label": ["a=b"], "x": ["k"]}));
        let mut m = Map::new();
        m.insert("f".into(), Value::String("{nope".into()));
        assert!(matches!(Params(m).filters("f"), Err(Error::BadParams(_))));
    }
}

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::{alphabet, Engine};

const PAD_OPTIONAL: GeneralPurposeConfig = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, PAD_OPTIONAL);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, PAD_OPTIONAL);

/// Decodes standard or URL-safe base64 (padding optional), as the engine's stat headers use.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    STANDARD.decode(s).or_else(|_| URL_SAFE.decode(s)).ok()
}

/// Standard base64 with padding, as the engine takes secret and config data.
pub fn base64_encode(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[cfg(test)]
mod b64_tests {
    #[test]
    fn decodes() {
        assert_eq!(super::base64_decode("eyJuYW1lIjoieCJ9").unwrap(), br#"{"name":"x"}"#);
        assert_eq!(super::base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(super::base64_decode("aGk").unwrap(), b"hi");
        assert!(super::base64_decode("a*b").is_none());
        assert_eq!(super::base64_encode(b"hi"), "aGk=");
    }
}

impl Params {
    /// An object param (a full request `body`) as a map to build on; empty when absent.
    pub fn object_or_empty(&self, name: &str) -> Map<String, Value> {
        match self.get(name) {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        }
    }
}

/// Sets `key` when a value is given: structured params override a body's fields.
pub fn set_opt(obj: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        obj.insert(key.to_string(), v);
    }
}

/// A list of strings given as a JSON array or as text with one item per line (Dockerfile
/// `changes`); empty lines are dropped.
pub fn lines_or_list(v: Option<&Value>, name: &str) -> Result<Vec<String>> {
    match v.filter(|v| !v.is_null()) {
        Some(Value::Array(list)) => {
            list.iter().map(|c| c.as_str().map(str::to_string).ok_or_else(|| Error::bad_params(format!("parameter '{name}' must hold strings")))).collect()
        }
        Some(Value::String(s)) => Ok(s.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()),
        Some(_) => Err(Error::bad_params(format!("parameter '{name}' must be a list of strings or text, one per line"))),
        None => Ok(Vec::new()),
    }
}

/// `{"K": "V"}` as `["K=V"]`, a non-string value as its JSON text: environments, settings.
pub fn key_values(m: &Map<String, Value>) -> Vec<String> {
    m.iter().map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect()
}

/// A command given as a JSON array of strings, or as one string split as a shell would
/// (`sh -c 'echo a b'` is three words).
pub fn command_value(v: Option<&Value>, name: &str) -> Result<Option<Value>> {
    match v {
        None => Ok(None),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => Ok(Some(Value::Array(a.clone()))),
        Some(Value::String(s)) => {
            let words = shell_words::split(s).map_err(|e| Error::bad_params(format!("parameter '{name}' is not a well-quoted command line ({e}): {s}")))?;
            Ok(Some(Value::Array(words.into_iter().map(Value::String).collect())))
        }
        Some(_) => Err(Error::bad_params(format!("parameter '{name}' must be a list of strings or a string"))),
    }
}
