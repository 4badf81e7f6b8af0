//! The `{{name}}` family: berth actions in Rust (scaffolded by `berth new`).

use berth_sdk::params;
use berth_sdk::prelude::*;

params! {
    struct Summary {
        all: bool = false => "Count stopped containers too",
    }
}

fn actions() -> Vec<Action> {
    vec![Action::new("{{name}}.summary", "Engine version and the containers it runs")
        .read_only()
        .ops(&["SystemVersion", "ContainerList"])
        .output(&["data.*.version", "data.*.containers", "data.*.names", "summary.containers"])
        .typed(summary)]
}

berth_sdk::family!(name: "{{name}}", actions: actions);

fn summary(p: Summary) -> Result<Output> {
    let version = get("/version").json_ok()?;
    let list = get("/containers/json").query("all", p.all).json_ok()?;
    let names: Vec<Value> = list.as_array().into_iter().flatten().map(|c| c["Names"][0].clone()).collect();
    let n = names.len();
    Ok(Output::one(format!("engine {} runs {n} containers", version["Version"].as_str().unwrap_or("?")), json!({
        "version": version["Version"], "containers": n, "names": names,
    }))
    .summary("containers", n))
}
