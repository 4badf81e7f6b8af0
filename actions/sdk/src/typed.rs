//! Typed params: one struct per action gives both its `ParamSpec`s and its parsing.
//!
//! ```ignore
//! berth_sdk::params! {
//!     pub struct Remove {
//!         name: String => "Volume name or ID",
//!         force: bool = false => "Remove even if the driver cannot",
//!         filters: Option<Value> => "Filters",
//!     }
//! }
//! Action::new("volume.remove", "Remove a volume").typed(remove)
//! fn remove(p: Remove) -> Result<Output> { … p.name … p.force … }
//! ```
//!
//! A plain type is required (`String`, `i64`, …) unless it has a default (`= value`) or is a
//! `bool` (false when absent); `Option<…>` is optional. The host validates the types and fills
//! in defaults before the guest runs; parsing here only reads them.

use crate::{Error, Map, Param, Params, Result, Value};

/// A params struct (made by [`crate::params!`]).
pub trait Typed: Sized {
    fn specs() -> Vec<Param>;
    fn parse(p: &Params) -> Result<Self>;
}

/// A type a param can have: its spec and how it is read.
pub trait FromParam: Sized {
    /// The spec for a param of this type (required or not).
    fn spec(name: &str) -> Param;
    /// Reads it; `default` when absent.
    fn read(p: &Params, name: &str, default: Option<Self>) -> Result<Self>;
}

fn missing(name: &str, what: &str) -> Error {
    Error::bad_params(format!("parameter '{name}' ({what}) is required"))
}

fn wrong(name: &str, what: &str) -> Error {
    Error::bad_params(format!("parameter '{name}' must be {what}"))
}

macro_rules! plain {
    ($t:ty, $ctor:ident, $what:literal, $get:expr) => {
        impl FromParam for $t {
            fn spec(name: &str) -> Param {
                Param::$ctor(name).required()
            }
            fn read(p: &Params, name: &str, default: Option<Self>) -> Result<Self> {
                match p.get(name) {
                    None => default.ok_or_else(|| missing(name, $what)),
                    Some(v) => ($get)(v).ok_or_else(|| wrong(name, $what)),
                }
            }
        }
        impl FromParam for Option<$t> {
            fn spec(name: &str) -> Param {
                Param::$ctor(name)
            }
            fn read(p: &Params, name: &str, default: Option<Self>) -> Result<Self> {
                match p.get(name) {
                    None => Ok(default.flatten()),
                    Some(v) => ($get)(v).map(Some).ok_or_else(|| wrong(name, $what)),
                }
            }
        }
    };
}

// An empty string counts as absent (SOAR forms send "" for a field left blank), as
// `Params::str` takes it.
impl FromParam for String {
    fn spec(name: &str) -> Param {
        Param::string(name).required()
    }
    fn read(p: &Params, name: &str, default: Option<Self>) -> Result<Self> {
        match p.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::String(_)) | None => default.ok_or_else(|| missing(name, "a string")),
            Some(_) => Err(wrong(name, "a string")),
        }
    }
}

impl FromParam for Option<String> {
    fn spec(name: &str) -> Param {
        Param::string(name)
    }
    fn read(p: &Params, name: &str, default: Option<Self>) -> Result<Self> {
        match p.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(Value::String(_)) | None => Ok(default.flatten()),
            Some(_) => Err(wrong(name, "a string")),
        }
    }
}
plain!(i64, int, "an integer", |v: &Value| v.as_i64());
plain!(f64, number, "a number", |v: &Value| v.as_f64());
plain!(Map<String, Value>, object, "an object", |v: &Value| v.as_object().cloned());
plain!(Vec<Value>, array, "a list", |v: &Value| v.as_array().cloned());
plain!(Value, any, "a value", |v: &Value| Some(v.clone()));

impl FromParam for bool {
    fn spec(name: &str) -> Param {
        Param::bool(name).default(false)
    }
    fn read(p: &Params, name: &str, default: Option<Self>) -> Result<Self> {
        match p.get(name) {
            None => Ok(default.unwrap_or(false)),
            Some(v) => v.as_bool().ok_or_else(|| wrong(name, "true or false")),
        }
    }
}

impl FromParam for Option<bool> {
    fn spec(name: &str) -> Param {
        Param::bool(name)
    }
    fn read(p: &Params, name: &str, default: Option<Self>) -> Result<Self> {
        match p.get(name) {
            None => Ok(default.flatten()),
            Some(v) => v.as_bool().map(Some).ok_or_else(|| wrong(name, "true or false")),
        }
    }
}

/// Docker `filters` (an object or its JSON text), in the engine's form: every value a list
/// of strings. Absent or empty is `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filters(pub Value);

impl FromParam for Option<Filters> {
    fn spec(name: &str) -> Param {
        Param::any(name)
    }
    fn read(p: &Params, name: &str, _: Option<Self>) -> Result<Self> {
        Ok(crate::params::filters_value(p.get(name), name)?.map(Filters))
    }
}

impl Filters {
    /// For `Request::query_json`.
    pub fn as_query(f: &Option<Filters>) -> Option<&Value> {
        f.as_ref().map(|f| &f.0)
    }
}

/// A point in time (unix seconds, RFC 3339, or a duration ago such as `10m`), in the
/// engine's `seconds[.nanos]` form.
#[derive(Debug, Clone, PartialEq)]
pub struct Timestamp(pub String);

impl FromParam for Option<Timestamp> {
    fn spec(name: &str) -> Param {
        Param::string(name)
    }
    fn read(p: &Params, name: &str, _: Option<Self>) -> Result<Self> {
        Ok(p.timestamp(name)?.map(Timestamp))
    }
}

impl Timestamp {
    /// For `Request::query_opt`.
    pub fn as_query(t: &Option<Timestamp>) -> Option<&str> {
        t.as_ref().map(|t| t.0.as_str())
    }
}

/// Declares a params struct: `name: Type [= default] => "description"`, with `#[secret]`
/// before a field for secret params.
#[macro_export]
macro_rules! params {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $( $(#[$secret:ident])? $field:ident : $ty:ty $(= $default:expr)? => $doc:literal ),* $(,)? }) => {
        $(#[$m])*
        $vis struct $name { $( pub $field: $ty, )* }
        impl $crate::typed::Typed for $name {
            fn specs() -> ::std::vec::Vec<$crate::Param> {
                ::std::vec![ $( {
                    let p = <$ty as $crate::typed::FromParam>::spec(stringify!($field).trim_start_matches("r#")).describe($doc);
                    $( let p = $crate::typed::with_default(p, $default); )?
                    $( let p = $crate::params!(@secret $secret p); )?
                    p
                } ),* ]
            }
            #[allow(unused_variables)]
            fn parse(p: &$crate::Params) -> $crate::Result<Self> {
                Ok(Self { $( $field: {
                    #[allow(unused_mut, unused_assignments)]
                    let mut d: ::std::option::Option<$ty> = ::std::option::Option::None;
                    $( d = ::std::option::Option::Some(::std::convert::Into::into($default)); )?
                    <$ty as $crate::typed::FromParam>::read(p, stringify!($field).trim_start_matches("r#"), d)?
                }, )* })
            }
        }
    };
    (@secret secret $p:ident) => { $p.secret() };
}

/// A default makes a param optional and shows in its spec.
pub fn with_default(mut p: Param, default: impl Into<Value>) -> Param {
    p.0.required = false;
    p.default(default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    crate::params! {
        struct Example {
            name: String => "the name",
            force: bool => "force it",
            limit: i64 = 10 => "at most",
            filters: Option<Value> => "filters",
            #[secret] password: Option<String> => "a secret",
        }
    }

    #[test]
    fn one_struct_gives_specs_and_parsing() {
        let specs = Example::specs();
        let names: Vec<&str> = specs.iter().map(|p| p.0.name.as_str()).collect();
        assert_eq!(names, ["name", "force", "limit", "filters", "password"]);
        assert!(specs[0].0.required && !specs[1].0.required && !specs[2].0.required && !specs[3].0.required);
        assert_eq!(specs[2].0.default.as_deref(), Some("10"));
        assert!(specs[4].0.secret);
        let Value::Object(m) = json!({"name": "x", "filters": {"a": ["b"]}}) else { unreachable!() };
        let e = Example::parse(&Params(m)).unwrap();
        assert_eq!((e.name.as_str(), e.force, e.limit), ("x", false, 10));
        assert_eq!(e.filters, Some(json!({"a": ["b"]})));
        assert_eq!(e.password, None);
        let Value::Object(m) = json!({"force": true}) else { unreachable!() };
        let err = Example::parse(&Params(m)).err().unwrap();
        assert_eq!(err, Error::bad_params("parameter 'name' (a string) is required"));
        // "" is absent: a required string is missing, an optional one None.
        let Value::Object(m) = json!({"name": "", "password": ""}) else { unreachable!() };
        assert_eq!(Example::parse(&Params(m)).err().unwrap(), Error::bad_params("parameter 'name' (a string) is required"));
        let Value::Object(m) = json!({"name": "x", "password": ""}) else { unreachable!() };
        assert_eq!(Example::parse(&Params(m)).unwrap().password, None);
    }
}

crate::params! {
    /// For actions that take no params.
    pub struct NoParams {}
}

/// Two params structs as one: shared params (a service's shape, say) composed with an
/// action's own. The specs are `A`'s then `B`'s.
pub struct With<A, B>(pub A, pub B);

impl<A: Typed, B: Typed> Typed for With<A, B> {
    fn specs() -> Vec<Param> {
        let mut s = A::specs();
        s.extend(B::specs());
        s
    }
    fn parse(p: &Params) -> Result<Self> {
        Ok(With(A::parse(p)?, B::parse(p)?))
    }
}
