//! Declarative action and parameter specs.

use crate::bindings::exports::berth::connector::actions::{ActionSpec, Kind, ParamSpec, ValueType};
use crate::{Output, Params, Result, Value};

pub type Handler = fn(&Params) -> Result<Output>;
/// A handler as stored: a plain one, or a typed one behind its parser.
pub type BoxedHandler = Box<dyn Fn(&Params) -> Result<Output>>;

/// One action: its spec plus the function that runs it.
pub struct Action {
    pub spec: ActionSpec,
    pub handler: Option<BoxedHandler>,
    /// A typed action's params (see [`Action::typed`]): built only when the family is
    /// described, not on every run (a run builds every action to find its own), and inserted
    /// where `typed` was called among the `param`s.
    typed_params: Option<(usize, fn() -> Vec<Param>)>,
}

impl Action {
    /// A new action; kind defaults to `investigate`, not read-only.
    pub fn new(name: &str, summary: &str) -> Self {
        Action {
            spec: ActionSpec {
                name: name.to_string(),
                summary: summary.to_string(),
                kind: Kind::Investigate,
                read_only: false,
                params: Vec::new(),
                output: Vec::new(),
                operations: Vec::new(),
            },
            handler: None,
            typed_params: None,
        }
    }

    /// The whole spec, typed params included (what `describe()` returns).
    pub fn into_spec(mut self) -> ActionSpec {
        if let Some((at, specs)) = self.typed_params.take() {
            let typed: Vec<ParamSpec> = specs().into_iter().map(|p| p.0).collect();
            self.spec.params.splice(at..at, typed);
        }
        self.spec
    }
    pub fn kind(mut self, kind: Kind) -> Self {
        self.spec.kind = kind;
        self
    }
    /// Declares the action read-only: the host then allows only GET and HEAD engine calls.
    pub fn read_only(mut self) -> Self {
        self.spec.read_only = true;
        self
    }
    pub fn param(mut self, p: Param) -> Self {
        self.spec.params.push(p.0);
        self
    }
    /// Output data paths, relative to `action_result.` (e.g. `data.*.Version`).
    pub fn output(mut self, paths: &[&str]) -> Self {
        self.spec.output.extend(paths.iter().map(|p| format!("action_result.{p}")));
        self
    }
    /// The Engine API operations (operationIds, e.g. `ContainerList`) the action calls. Once
    /// declared, the host refuses any other: a bug or a hijacked dependency cannot make a
    /// `list` action delete. The coverage table is checked against these declarations.
    pub fn ops(mut self, operations: &[&str]) -> Self {
        self.spec.operations.extend(operations.iter().map(|o| o.to_string()));
        self
    }
    pub fn run(mut self, handler: Handler) -> Self {
        self.handler = Some(Box::new(handler));
        self
    }
    /// Declares the params of `T` (a [`crate::params!`] struct) and runs `handler` on them,
    /// parsed: the declaration and the use are one struct and cannot drift.
    pub fn typed<T: crate::typed::Typed + 'static>(mut self, handler: fn(T) -> Result<Output>) -> Self {
        self.typed_params = Some((self.spec.params.len(), T::specs));
        self.handler = Some(Box::new(move |p: &Params| handler(T::parse(p)?)));
        self
    }
}

/// A parameter spec builder: `Param::int("limit").default(100).describe("...")`.
pub struct Param(pub ParamSpec);

impl Param {
    fn new(name: &str, value_type: ValueType) -> Self {
        Param(ParamSpec {
            name: name.to_string(),
            value_type,
            required: false,
            default: None,
            description: String::new(),
            secret: false,
        })
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
