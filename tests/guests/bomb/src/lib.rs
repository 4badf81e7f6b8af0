//! A family whose `describe()` declares 100,000 actions with long summaries: discovery must
//! refuse it without growing the host.

use berth_sdk::prelude::*;

fn actions() -> Vec<Action> {
    let summary = "x".repeat(2000);
    (0..100_000).map(|i| Action::new(format!("bomb.a{i}"), &summary).read_only().run(|_| Ok(Output::new("boom")))).collect()
}

berth_sdk::family!(name: "bomb", actions: actions);
