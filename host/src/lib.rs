//! berth: a Docker Engine connector built as a sandboxed WebAssembly plugin host.
//!
//! - [`engine`]: the transport to the Docker engine, version negotiation, timeouts.
//! - [`runtime`]: discovery, compilation cache, sandboxed invocation of action components.
//! - [`policy`]: the gate every engine request passes, and tenant policies.
//! - [`invoke`]: the one invocation pipeline of the CLI and the server.
//! - [`spec`]: action specs, param validation, the SOAR `action_result`.
//! - [`credentials`]: registry credentials, held by the host only.
//! - [`server`]: `berth serve`, tenants, audit, metrics.
//! - [`authoring`]: writing your own actions: `berth new`, `check`, `install`.
//! - [`cli`]: the `berth` command.

pub mod authoring;
pub mod cli;
pub mod credentials;
pub mod engine;
pub mod invoke;
pub mod policy;
pub mod runtime;
pub mod server;
pub mod spec;
