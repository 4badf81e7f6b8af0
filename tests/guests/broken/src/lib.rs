//! A family whose `describe()` traps: discovery must quarantine it until its file changes.

use berth_sdk::prelude::*;

fn actions() -> Vec<Action> {
    panic!("deliberately broken describe()")
}

berth_sdk::family!(name: "broken", actions: actions);
