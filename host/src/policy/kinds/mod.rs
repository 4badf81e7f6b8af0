//! The gate's checks, one module per kind of Engine API object; `Gate::check`
//! dispatches to them by route.

mod containers;
mod images;
mod networks;
mod swarm;
