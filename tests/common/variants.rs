//! Generators of the spellings under which the engine reads one dangerous field: Go's
//! `encoding/json` matches field names by case folding (Unicode: `ſ` is `s`, the Kelvin sign
//! is `k`) and merges a repeated object into the same field. Each variant is a raw JSON body.

use serde_json::{Map, Value};

/// Every spelling Go folds onto `key`, other than `key` itself: all lower, all upper, the
/// first letter flipped, and each `s` or `k` replaced by its non-ASCII fold, one at a time.
pub fn folds(key: &str) -> Vec<String> {
    let mut out = vec![key.to_lowercase(), key.to_uppercase()];
    let mut chars: Vec<char> = key.chars().collect();
    if let Some(c) = chars.first_mut() {
        *c = if c.is_uppercase() { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() };
    }
    out.push(chars.into_iter().collect());
    for (i, c) in key.char_indices() {
        let fold = match c.to_ascii_lowercase() {
            's' => '\u{17F}',
            'k' => '\u{212A}',
            _ => continue,
        };
        out.push(format!("{}{fold}{}", &key[..i], &key[i + 1..]));
    }
    out.retain(|k| k != key);
    out.sort();
    out.dedup();
    out
}

/// `base` with `value` set at `path` (objects made as needed).
pub fn with(base: &Value, path: &[&str], value: &Value) -> Value {
    let mut doc = base.clone();
    let mut at = &mut doc;
    for k in &path[..path.len() - 1] {
        let obj = at.as_object_mut().expect("an object on the path");
        at = obj.entry(k.to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
    at[path[path.len() - 1]] = value.clone();
    doc
}

/// Raw bodies that set `value` at `path` in `base` without spelling the path as the schema
/// does: each key of the path replaced by each of its folds; each object of the path
/// repeated (the first as in `base`, the second carrying the value, which the engine merges);
/// the last key repeated (the engine keeps the last value).
pub fn spellings(base: &Value, path: &[&str], value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for level in 0..path.len() {
        for f in folds(path[level]) {
            let mut p: Vec<&str> = path.to_vec();
            p[level] = &f;
            out.push(with(base, &p, value).to_string());
        }
        out.push(repeated(base, path, value, level));
    }
    out
}

/// `base` serialised with the key `path[level]` written twice in its object: first as `base`
/// has it, then holding the rest of the path and `value`.
fn repeated(base: &Value, path: &[&str], value: &Value, level: usize) -> String {
    fn write(v: &Value, here: &[&str], path: &[&str], value: &Value, level: usize) -> String {
        let Value::Object(m) = v else {
            return v.to_string();
        };
        let mut parts: Vec<String> = Vec::new();
        for (k, child) in m {
            let deeper = here.len() < level && Some(k.as_str()) == path.get(here.len()).copied();
            let mut h = here.to_vec();
            h.push(k.as_str());
            let child = if deeper { write(child, &h, path, value, level) } else { child.to_string() };
            parts.push(format!("{}:{child}", Value::String(k.clone())));
        }
        if here.len() == level {
            if !m.contains_key(path[level]) {
                // The first occurrence: an empty object, or a harmless value for the last key.
                let first = if level + 1 < path.len() { "{}".to_string() } else { "null".to_string() };
                parts.push(format!("{}:{first}", Value::String(path[level].into())));
            }
            let second = with(&Value::Object(Map::new()), &path[level..], value);
            parts.push(format!("{}:{}", Value::String(path[level].into()), second[path[level]]));
        }
        format!("{{{}}}", parts.join(","))
    }
    write(base, &[], path, value, level)
}
