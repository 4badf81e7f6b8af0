//! Request bodies read as the engine reads them.
//!
//! dockerd decodes JSON bodies with Go's `encoding/json`: a key matches a struct field whatever
//! its letter case (with Unicode's simple folding, so `ſ` is `s` and the Kelvin sign `K` is `k`),
//! a repeated key overwrites or merges into the same field, and keys it does not know are
//! ignored. A gate that reads exact-case keys and the engine then read two different requests.
//!
//! So a policed tenant's body is decoded here against the Engine API schema of its route
//! (`body-schemas.json`, generated from the v1.41 and v1.56 specs by `gen-body-schemas.py`),
//! and only an exact reading is accepted: a key that matches a field only by case folding, a
//! repeated key, a key the schema does not know and a value of the wrong type are refused,
//! naming the path of the field. The gate then checks the decoded document, and the engine
//! receives it re-encoded: no byte it reads went unchecked.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

const SCHEMAS: &str = include_str!("body-schemas.json");

/// What a place in a body may hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Str,
    Int,
    Num,
    Bool,
    Any,
    List(Box<Node>),
    /// Known fields, and the node of every other key when the object is a map.
    Object {
        fields: BTreeMap<String, Node>,
        rest: Option<Box<Node>>,
    },
}

impl Node {
    fn from_json(v: &Value) -> Node {
        match v {
            Value::String(s) => match s.as_str() {
                "s" => Node::Str,
                "i" => Node::Int,
                "n" => Node::Num,
                "b" => Node::Bool,
                _ => Node::Any,
            },
            Value::Object(o) if o.contains_key("a") => Node::List(Box::new(Node::from_json(&o["a"]))),
            Value::Object(o) => Node::Object {
                fields: o.get("o").and_then(Value::as_object).into_iter().flatten().map(|(k, v)| (k.clone(), Node::from_json(v))).collect(),
                rest: o.get("m").map(|m| Box::new(Node::from_json(m))),
            },
            _ => Node::Any,
        }
    }
}

/// The body schema of a route (`"POST /containers/create"`), if its body is JSON.
pub fn schema(method: &str, template: &str) -> Option<&'static Node> {
    static TABLE: OnceLock<HashMap<String, Node>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let raw: Map<String, Value> = serde_json::from_str(SCHEMAS).expect("body-schemas.json is JSON");
        raw.iter().map(|(k, v)| (k.clone(), Node::from_json(v))).collect()
    });
    table.get(&format!("{method} {template}"))
}

/// A list of anything and a map of anything: what [`Node::Any`] holds.
fn any_shape() -> &'static (Node, Node) {
    static SHAPES: OnceLock<(Node, Node)> = OnceLock::new();
    SHAPES.get_or_init(|| (Node::List(Box::new(Node::Any)), Node::Object { fields: BTreeMap::new(), rest: Some(Box::new(Node::Any)) }))
}

/// A JSON document with every key kept, repeats included, in order.
enum Doc {
    Object(Vec<(String, Doc)>),
    List(Vec<Doc>),
    Scalar(Value),
}

impl<'de> Deserialize<'de> for Doc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Doc, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Doc;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, b: bool) -> Result<Doc, E> {
                Ok(Doc::Scalar(Value::Bool(b)))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Doc, E> {
                Ok(Doc::Scalar(Value::from(n)))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Doc, E> {
                Ok(Doc::Scalar(Value::from(n)))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Doc, E> {
                serde_json::Number::from_f64(n).map(|n| Doc::Scalar(Value::Number(n))).ok_or_else(|| E::custom("a number out of range"))
            }
            fn visit_str<E>(self, s: &str) -> Result<Doc, E> {
                Ok(Doc::Scalar(Value::String(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Doc, E> {
                Ok(Doc::Scalar(Value::String(s)))
            }
            fn visit_unit<E>(self) -> Result<Doc, E> {
                Ok(Doc::Scalar(Value::Null))
            }
            fn visit_none<E>(self) -> Result<Doc, E> {
                Ok(Doc::Scalar(Value::Null))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Doc, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = a.next_element()? {
                    out.push(x);
                }
                Ok(Doc::List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Doc, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Doc>()? {
                    out.push((k, v));
                }
                Ok(Doc::Object(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A key as Go's `encoding/json` compares field names: Unicode simple case folding. Field
/// names are ASCII, and the only non-ASCII letters that fold onto ASCII ones are the Kelvin
/// sign (k) and the long s (s).
pub fn go_fold(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '\u{212A}' => 'k',
            '\u{017F}' => 's',
            c => c.to_lowercase().next().unwrap_or(c),
        })
        .collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a fractional number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn at(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Decodes `bytes` against `node` exactly, or names the first place where the engine's reading
/// could differ from this one.
pub fn decode(node: &Node, bytes: &[u8]) -> Result<Value, String> {
    let doc: Doc = serde_json::from_slice(bytes).map_err(|e| format!("the body is not JSON: {e}"))?;
    check(node, doc, "")
}

fn check(node: &Node, doc: Doc, path: &str) -> Result<Value, String> {
    let here = || {
        if path.is_empty() {
            "the body".to_string()
        } else {
            path.to_string()
        }
    };
    match (node, doc) {
        // Go leaves a field it reads null as it was.
        (_, Doc::Scalar(Value::Null)) => Ok(Value::Null),
        // A value of no fixed shape: any keys, still none repeated.
        (Node::Any, Doc::Scalar(v)) => Ok(v),
        (Node::Any, d @ Doc::List(_)) => check(&any_shape().0, d, path),
        (Node::Any, d @ Doc::Object(_)) => check(&any_shape().1, d, path),
        (Node::Str, Doc::Scalar(v @ Value::String(_))) | (Node::Bool, Doc::Scalar(v @ Value::Bool(_))) => Ok(v),
        (Node::Num, Doc::Scalar(v @ Value::Number(_))) => Ok(v),
        (Node::Int, Doc::Scalar(Value::Number(n))) if n.is_i64() || n.is_u64() => Ok(Value::Number(n)),
        (Node::List(item), Doc::List(items)) => {
            items.into_iter().enumerate().map(|(i, d)| check(item, d, &format!("{}[{i}]", here()))).collect::<Result<Vec<_>, _>>().map(Value::Array)
        }
        (Node::Object { fields, rest }, Doc::Object(entries)) => {
            let mut out = Map::new();
            for (key, d) in entries {
                let p = at(path, &key);
                if out.contains_key(&key) {
                    return Err(format!("{p}: the key is repeated (the engine would read both)"));
                }
                let sub = match (fields.get(&key), rest) {
                    (Some(n), _) => n,
                    (None, Some(r)) => r,
                    (None, None) => {
                        let folded = go_fold(&key);
                        return Err(match fields.keys().find(|f| go_fold(f) == folded) {
                            Some(f) => format!("{p}: not a field; the engine would read it as {} (field names must be spelled exactly)", at(path, f)),
                            None => format!("{p}: not a field the Engine API knows here"),
                        });
                    }
                };
                out.insert(key, check(sub, d, &p)?);
            }
            Ok(Value::Object(out))
        }
        (node, d) => {
            let want = match node {
                Node::Str => "a string",
                Node::Int => "an integer",
                Node::Num => "a number",
                Node::Bool => "a boolean",
                Node::List(_) => "a list",
                Node::Object { .. } => "an object",
                Node::Any => "JSON",
            };
            let got = match &d {
                Doc::Object(_) => "an object",
                Doc::List(_) => "a list",
                Doc::Scalar(v) => kind(v),
            };
            Err(format!("{}: must be {want}, not {got}", here()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(body: &str) -> Result<Value, String> {
        decode(schema("POST", "/containers/create").expect("schema"), body.as_bytes())
    }

    #[test]
    fn every_route_with_a_json_body_has_a_schema() {
        for (m, t) in [
            ("POST", "/containers/create"),
            ("POST", "/containers/{id}/update"),
            ("POST", "/containers/{id}/exec"),
            ("POST", "/exec/{id}/start"),
            ("POST", "/commit"),
            ("POST", "/auth"),
            ("POST", "/volumes/create"),
            ("POST", "/networks/create"),
            ("POST", "/networks/{id}/connect"),
            ("POST", "/networks/{id}/disconnect"),
            ("POST", "/services/create"),
            ("POST", "/services/{id}/update"),
            ("POST", "/secrets/create"),
            ("POST", "/secrets/{id}/update"),
            ("POST", "/configs/create"),
            ("POST", "/configs/{id}/update"),
            ("POST", "/swarm/init"),
            ("POST", "/swarm/join"),
            ("POST", "/swarm/update"),
            ("POST", "/swarm/unlock"),
            ("POST", "/nodes/{id}/update"),
            ("POST", "/plugins/pull"),
            ("POST", "/plugins/{name}/set"),
            ("POST", "/plugins/{name}/upgrade"),
        ] {
            assert!(schema(m, t).is_some(), "{m} {t}");
        }
        assert!(schema("POST", "/build").is_none(), "a build context is a stream");
    }

    #[test]
    fn exact_bodies_pass_and_are_kept() {
        let v = create(
            r#"{"Image":"x","Cmd":["sh"],"Labels":{"a":"b"},"HostConfig":{"Binds":["/a:/b"],"Memory":5,"NetworkMode":"none"},"ExposedPorts":{"80/tcp":{}}}"#,
        )
        .unwrap();
        assert_eq!(v["HostConfig"]["Binds"][0], "/a:/b");
        assert_eq!(v["Labels"]["a"], "b");
    }

    #[test]
    fn case_folds_are_refused_with_the_field_the_engine_would_read() {
        for (body, field) in [
            (r#"{"HostConfig":{"binds":["/:/host"]}}"#, "HostConfig.binds"),
            (r#"{"hostConfig":{}}"#, "hostConfig"),
            (r#"{"HostConfig":{"privileged":true}}"#, "HostConfig.privileged"),
            (r#"{"HostConfig":{"PRIVILEGED":true}}"#, "HostConfig.PRIVILEGED"),
            (r#"{"HostConfig":{"\u017Fecurityopt":[]}}"#, "HostConfig.\u{17f}ecurityopt"),
            (r#"{"HostConfig":{"Lin\u212As":[]}}"#, "HostConfig.Lin\u{212a}s"),
            (r#"{"image":"x"}"#, "image"),
        ] {
            let e = create(body).unwrap_err();
            assert!(e.starts_with(&format!("{field}: not a field; the engine would read it as")), "{body}: {e}");
        }
        assert!(create(r#"{"HostConfig":{"Lin\u212As":[]}}"#).unwrap_err().contains("HostConfig.Links"));
        assert!(create(r#"{"HostConfig":{"\u017FecurityOpt":[]}}"#).unwrap_err().contains("HostConfig.SecurityOpt"));
    }

    #[test]
    fn repeats_unknown_keys_and_wrong_types_are_refused() {
        let e = create(r#"{"HostConfig":{"Privileged":false},"HostConfig":{"Privileged":true}}"#).unwrap_err();
        assert!(e.starts_with("HostConfig: the key is repeated"), "{e}");
        let e = create(r#"{"Labels":{"a":"1","a":"2"}}"#).unwrap_err();
        assert!(e.starts_with("Labels.a: the key is repeated"), "{e}");
        let e = create(r#"{"HostConfig":{"Nope":1}}"#).unwrap_err();
        assert_eq!(e, "HostConfig.Nope: not a field the Engine API knows here");
        let e = create(r#"{"HostConfig":{"Memory":"0"}}"#).unwrap_err();
        assert_eq!(e, "HostConfig.Memory: must be an integer, not a string");
        let e = create(r#"{"HostConfig":{"Memory":5.5}}"#).unwrap_err();
        assert_eq!(e, "HostConfig.Memory: must be an integer, not a fractional number");
        let e = create(r#"{"HostConfig":{"Binds":[1]}}"#).unwrap_err();
        assert_eq!(e, "HostConfig.Binds[0]: must be a string, not an integer");
        let e = create(r#"[]"#).unwrap_err();
        assert_eq!(e, "the body: must be an object, not a list");
        assert!(create(r#"{"Image":"x"} trailing"#).unwrap_err().starts_with("the body is not JSON"));
    }

    #[test]
    fn values_of_no_fixed_shape_still_take_no_repeated_key() {
        let e = decode(&Node::Any, br#"{"a":[{"b":1,"b":2}]}"#).unwrap_err();
        assert!(e.starts_with("a[0].b: the key is repeated"), "{e}");
        assert_eq!(decode(&Node::Any, br#"{"a":[1,"x",null]}"#).unwrap(), serde_json::json!({"a": [1, "x", null]}));
    }

    #[test]
    fn maps_take_any_key_but_not_twice() {
        let v = create(r#"{"Labels":{"Berth.Tenant":"x","berth.tenant":"y"}}"#).unwrap();
        assert_eq!(v["Labels"].as_object().unwrap().len(), 2);
        let n = schema("POST", "/networks/{id}/connect").unwrap();
        assert!(decode(n, br#"{"Container":"a","container":"b"}"#).unwrap_err().contains("the engine would read it as Container"));
    }
}
