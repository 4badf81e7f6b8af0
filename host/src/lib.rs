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

//!
//! `engine`, `policy`, `spec` and `credentials` build without wasmtime (no default features);
//! the rest needs the `runtime` feature (on by default).

#[cfg(feature = "runtime")]
pub mod authoring;
#[cfg(feature = "runtime")]
pub mod cli;
pub mod credentials;
pub mod engine;
#[cfg(feature = "runtime")]
pub mod invoke;
pub mod policy;
#[cfg(feature = "runtime")]
pub mod runtime;
#[cfg(feature = "runtime")]
pub mod server;
pub mod spec;
