//! The `config` family: the 5 Config operations of the Engine API.

use berth_sdk::swarm::{object_actions, Config};

berth_sdk::family!(name: "config", actions: object_actions::<Config>);
