//! Declarative action and parameter specs.

use std::borrow::Cow;

use crate::bindings::exports::berth::connector::actions::{ActionSpec, Kind, ParamSpec, ValueType};
use crate::{Output, Params, Result, Value};

pub type Handler = fn(&Params) -> Result<Output>;
/// A handler as stored: a plain one, or a typed one behind its parser.
pub type BoxedHandler = Box<dyn Fn(&Params) -> Result<Output>>;

/// One action: its spec plus the function that runs it.
///
/// A run calls the family's action list in a fresh instance to find its own action: every
/// other action is then only its name (see [`only`]), and the one that runs keeps its
/// handler and no spec. Only `describe()` builds whole specs ([`ActionSpec`]).
pub struct Action {
    /// Not the action a run asked for: its builders record nothing.
    skip: bool,
    name: Cow<'static, str>,
    summary: Cow<'static, str>,
    kind: Kind,
    read_only: bool,
    params: Vec<ParamSpec>,
    /// Output paths, one per line, without the `action_result.` prefix.
    output: String,
    /// Engine operations, one per line.
    operations: String,
    pub handler: Option<BoxedHandler>,
    /// A typed action's params (see [`Action::typed`]): built only when the family is
    /// described, and inserted where `typed` was called among the `param`s.
    typed_params: Option<(usize, ParamsFn)>,
}

/// Builds a typed action's params when the family is described.
type ParamsFn = fn() -> Vec<Param>;

impl Action {
    /// A new action; kind defaults to `investigate`, not read-only.
    pub fn new(name: impl Text, summary: impl Text) -> Self {
        let name = name.into_text();
        let skip = ONLY.with(|o| o.borrow().as_deref().is_some_and(|only| only != name));
        Action {
            skip,
            name,
            summary: summary.into_text(),
            kind: Kind::Investigate,
            read_only: false,
            params: Vec::new(),
            output: String::new(),
            operations: String::new(),
            handler: None,
            typed_params: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole spec, typed params included (what `describe()` returns).
    pub fn into_spec(mut self) -> ActionSpec {
        if let Some((at, specs)) = self.typed_params.take() {
            let typed: Vec<ParamSpec> = specs().into_iter().map(|p| p.0).collect();
            self.params.splice(at..at, typed);
        }
        ActionSpec {
            name: self.name.into_owned(),
            summary: self.summary.into_owned(),
            kind: self.kind,
            read_only: self.read_only,
            params: self.params,
            output: self.output.lines().map(|p| format!("action_result.{p}")).collect(),
            operations: self.operations.lines().map(str::to_string).collect(),
        }
    }
    pub fn kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }
    /// Declares the action read-only: the host then allows only GET and HEAD engine calls.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }
    pub fn param(mut self, p: Param) -> Self {
        if self.skip {
            return self;
        }
        self.params.push(p.0);
        self
    }
    /// Output data paths, relative to `action_result.` (e.g. `data.*.Version`).
    pub fn output(mut self, paths: &[&str]) -> Self {
        if self.skip || ONLY.with(|o| o.borrow().is_some()) {
            return self; // a run needs no spec
        }
        push_lines(&mut self.output, paths);
        self
    }
    /// The Engine API operations (operationIds, e.g. `ContainerList`) the action calls. Once
    /// declared, the host refuses any other: a bug or a hijacked dependency cannot make a
    /// `list` action delete. The coverage table is checked against these declarations.
    pub fn ops(mut self, operations: &[&str]) -> Self {
        if self.skip || ONLY.with(|o| o.borrow().is_some()) {
            return self;
        }
        push_lines(&mut self.operations, operations);
        self
    }
    pub fn run(mut self, handler: Handler) -> Self {
        if self.skip {
            return self;
        }
        self.handler = Some(Box::new(handler));
        self
    }
    /// Declares the params of `T` (a [`crate::params!`] struct) and runs `handler` on them,
    /// parsed: the declaration and the use are one struct and cannot drift.
    pub fn typed<T: crate::typed::Typed + 'static>(mut self, handler: fn(T) -> Result<Output>) -> Self {
        if self.skip {
            return self;
        }
        self.typed_params = Some((self.params.len(), T::specs));
        self.handler = Some(Box::new(move |p: &Params| handler(T::parse(p)?)));
        self
    }
}

thread_local! {
    /// While a run builds its family's list: the action it runs.
    static ONLY: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Calls `actions` as a run does: only the action named `name` gets its handler; every other
/// is its name alone, and none gets a spec. What a family's `actions()` builds on every run.
pub fn only(name: &str, actions: fn() -> Vec<Action>) -> Vec<Action> {
    ONLY.with(|o| *o.borrow_mut() = Some(name.to_string()));
    let list = actions();
    ONLY.with(|o| *o.borrow_mut() = None);
    list
}

/// An action's name or summary: a literal is borrowed, a `String` taken (a `&String` copied).
pub trait Text {
    fn into_text(self) -> Cow<'static, str>;
}

impl Text for &'static str {
    fn into_text(self) -> Cow<'static, str> {
        Cow::Borrowed(self)
    }
}

impl Text for String {
    fn into_text(self) -> Cow<'static, str> {
        Cow::Owned(self)
    }
}

impl Text for &String {
    fn into_text(self) -> Cow<'static, str> {
        Cow::Owned(self.clone())
    }
}

/// Appends `items` to `lines`, one per line, in one allocation.
fn push_lines(lines: &mut String, items: &[&str]) {
    lines.reserve(items.iter().map(|i| i.len() + 1).sum());
    for i in items {
        if !lines.is_empty() {
            lines.push('\n');
        }
        lines.push_str(i);
    }
}

/// A parameter spec builder: `Param::int("limit").default(100).describe("...")`.
pub struct Param(pub ParamSpec);

impl Param {
    fn new(name: &str, value_type: ValueType) -> Self {
        Param(ParamSpec { name: name.to_string(), value_type, required: false, default: None, description: String::new(), secret: false })
    }
    pub fn string(name: &str) -> Self {
        Self::new(name, ValueType::Text)
    }
    pub fn int(name: &str) -> Self {
        Self::new(name, ValueType::Integer)
    }
    pub fn number(name: &str) -> Self {
        Self::new(name, ValueType::Number)
    }
    pub fn bool(name: &str) -> Self {
        Self::new(name, ValueType::Boolean)
    }
    pub fn object(name: &str) -> Self {
        Self::new(name, ValueType::Object)
    }
    pub fn array(name: &str) -> Self {
        Self::new(name, ValueType::Array)
    }
    pub fn any(name: &str) -> Self {
        Self::new(name, ValueType::Any)
    }
    pub fn required(mut self) -> Self {
        self.0.required = true;
        self
    }
    pub fn secret(mut self) -> Self {
        self.0.secret = true;
        self
    }
    pub fn default(mut self, v: impl Into<Value>) -> Self {
        self.0.default = Some(v.into().to_string());
        self
    }
    pub fn describe(mut self, d: &str) -> Self {
        self.0.description = d.to_string();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_expands_into_its_spec_only_when_described() {
        let owned = String::from("x.owned");
        let a = Action::new("x.one", "One")
            .read_only()
            .param(Param::int("limit").default(5))
            .output(&["data.*.Id", "summary.total"])
            .output(&["data.*.Name"])
            .ops(&["ContainerList"])
            .ops(&["ContainerInspect", "ContainerTop"]);
        assert_eq!(a.name(), "x.one");
        let s = a.into_spec();
        assert_eq!((s.name.as_str(), s.summary.as_str(), s.read_only), ("x.one", "One", true));
        assert_eq!(s.output, ["action_result.data.*.Id", "action_result.summary.total", "action_result.data.*.Name"]);
        assert_eq!(s.operations, ["ContainerList", "ContainerInspect", "ContainerTop"]);
        assert_eq!((s.params.len(), s.params[0].default.as_deref()), (1, Some("5")));
        let b = Action::new(&owned, format!("{owned} summary")).into_spec();
        assert_eq!((b.name.as_str(), b.summary.as_str()), ("x.owned", "x.owned summary"));
        assert!(b.output.is_empty() && b.operations.is_empty());
    }
}
