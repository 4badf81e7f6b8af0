//! The `plugin` family: the 11 Plugin operations of the Engine API.
//!
//! Pulls and upgrades grant a plugin the privileges it asks for only when the caller says
//! so (`grant_all`), after seeing them: a plugin runs with whatever it is granted.

use std::time::Instant;

use berth_sdk::prelude::*;
use berth_sdk::stream::registry_of;

fn name() -> Param {
    Param::string("name").required().describe("Plugin name (name:tag) or ID")
}

fn grant() -> Param {
    Param::bool("grant_all").default(false).describe("Grant every privilege the plugin asks for (see plugin.privileges first)")
}

fn deadline_param() -> Param {
    Param::int("timeout").default(300).describe("Seconds to wait for the registry")
}

fn actions() -> Vec<Action> {
    vec![
        Action::new("plugin.list", "List installed plugins")
            .read_only()
            .param(Param::any("filters").describe("Filters: capability, enable"))
            .output(&["data.*.Id", "data.*.Name", "data.*.Enabled", "data.*.Config.Interface.Types", "summary.total_objects"])
            .run(list),
        Action::new("plugin.privileges", "The privileges a plugin in a registry asks for")
            .read_only()
            .param(Param::string("remote").required().describe("Plugin reference in a registry"))
            .output(&["data.*.Name", "data.*.Value", "summary.total_objects"])
            .run(privileges),
        Action::new("plugin.pull", "Install a plugin from a registry")
            .kind(Kind::Generic)
            .param(Param::string("remote").required().describe("Plugin reference in a registry"))
            .param(Param::string("name").describe("Local name (default: the remote reference)"))
            .param(grant())
            .param(Param::bool("enable").default(false).describe("Enable it once installed"))
            .param(deadline_param())
            .output(&["data.*.name", "data.*.privileges", "data.*.enabled"])
            .run(pull),
        Action::new("plugin.inspect", "Inspect an installed plugin")
            .read_only()
            .param(name())
            .output(&["data.*.Id", "data.*.Name", "data.*.Enabled", "data.*.Settings", "data.*.PluginReference"])
            .run(inspect),
        Action::new("plugin.remove", "Remove a plugin")
            .kind(Kind::Correct)
            .param(name())
            .param(Param::bool("force").default(false).describe("Disable and remove even if in use"))
            .output(&["data.*.name", "data.*.id"])
            .run(remove),
        Action::new("plugin.enable", "Enable a plugin")
            .kind(Kind::Generic)
            .param(name())
            .param(Param::int("timeout").default(30).describe("Seconds the plugin has to start"))
            .output(&["data.*.name", "data.*.enabled"])
            .run(enable),
        Action::new("plugin.disable", "Disable a plugin")
            .kind(Kind::Contain)
            .param(name())
            .param(Param::bool("force").default(false).describe("Disable even if in use"))
            .output(&["data.*.name", "data.*.enabled"])
            .run(disable),
        Action::new("plugin.upgrade", "Upgrade a disabled plugin from a registry")
            .kind(Kind::Generic)
            .param(name())
            .param(Param::string("remote").required().describe("Plugin reference to upgrade to"))
            .param(grant())
            .param(deadline_param())
            .output(&["data.*.name", "data.*.remote", "data.*.privileges"])
            .run(upgrade),
        Action::new("plugin.create", "Create a plugin from the `in` artifact: a tar of config.json and rootfs/")
            .kind(Kind::Generic)
            .param(Param::string("name").required().describe("Name (name:tag) of the new plugin"))
            .output(&["data.*.name", "summary.name"])
            .run(create),
        Action::new("plugin.push", "Push a plugin to its registry")
            .kind(Kind::Generic)
            .param(name())
            .param(deadline_param())
            .output(&["data.*.name", "data.*.statuses"])
            .run(push),
        Action::new("plugin.set", "Change a plugin's settings (env, mounts' sources, devices, args)")
            .kind(Kind::Generic)
            .param(name())
            .param(Param::any("settings").required().describe("{\"KEY\": \"value\"} or [\"KEY=value\"]"))
            .output(&["data.*.name", "data.*.settings"])
            .run(set),
    ]
}

berth_sdk::family!(name: "plugin", actions: actions);

fn ppath(name: &str, rest: &str) -> String {
    format!("/plugins/{}{rest}", berth_sdk::seg(name))
}

fn deadline(p: &Params) -> Result<Instant> {
    Ok(Instant::now() + berth_sdk::logs::bounded_seconds(p, "timeout", 300)?)
}

fn list(p: &Params) -> Result<Output> {
    let v = get("/plugins").query_json("filters", p.filters("filters")?.as_ref()).json_ok()?;
    Ok(Output::listed_json("plugins", &v))
}

fn privileges_of(remote: &str) -> Result<Value> {
    get("/plugins/privileges").query("remote", remote).registry(registry_of(remote)).json_ok()
}

fn privileges(p: &Params) -> Result<Output> {
    let remote = p.req_str("remote")?;
    let v = privileges_of(remote)?;
    Ok(Output::listed_json(&format!("privileges asked for by {remote}"), &v))
}

/// The privileges to grant: all of them when `grant_all`, none needed otherwise.
fn granted(p: &Params, remote: &str) -> Result<Value> {
    let privs = privileges_of(remote)?;
    let asked = privs.as_array().map(|a| a.len()).unwrap_or(0);
    if asked > 0 && !p.flag("grant_all") {
        let list: Vec<String> = privs.as_array().into_iter().flatten().map(|x| format!("{}={}", x["Name"].as_str().unwrap_or("?"), x["Value"])).collect();
        return Err(Error::Denied(format!("{remote} asks for privileges: {}; set grant_all=true to grant them", list.join(", "))));
    }
    Ok(privs)
}

fn pull(p: &Params) -> Result<Output> {
    let remote = p.req_str("remote")?;
    let deadline = deadline(p)?;
    let privs = granted(p, remote)?;
    let progress = post("/plugins/pull")
        .query("remote", remote)
        .query_opt("name", p.str("name"))
        .registry(registry_of(remote))
        .json(&privs)
        .stream()?
        .progress("plugin pull", deadline)?;
    let name = p.str("name").unwrap_or(remote).to_string();
    if p.flag("enable") {
        post(ppath(&name, "/enable")).query("timeout", 30).send_ok()?;
    }
    Ok(Output::one(
        format!("Installed plugin {name} from {remote} ({} progress messages)", progress.messages),
        json!({"name": name, "remote": remote, "privileges": privs, "enabled": p.flag("enable")}),
    ))
}

fn inspect(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    let v = get(ppath(name, "/json")).json_ok()?;
    Ok(Output::new(format!("Plugin {} ({}), {}", v["Name"].as_str().unwrap_or(name), v["Id"].as_str().unwrap_or("?"), if v["Enabled"] == true { "enabled" } else { "disabled" }))
        .summary("enabled", v["Enabled"].clone())
        .item(v))
}

fn remove(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    // API 1.41 engines answer with an empty body; later ones with the removed plugin.
    let r = delete(ppath(name, "")).query("force", p.flag("force")).send_ok()?;
    let id = r.json().ok().map(|v| v["Id"].clone()).unwrap_or(Value::Null);
    Ok(Output::one(format!("Removed plugin {name}"), json!({"name": name, "id": id})))
}

fn enable(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    let t = p.i64("timeout").unwrap_or(30);
    if !(1..=600).contains(&t) {
        return Err(Error::bad_params("parameter 'timeout' must be between 1 and 600 seconds"));
    }
    post(ppath(name, "/enable")).query("timeout", t).send_ok()?;
    Ok(Output::one(format!("Enabled plugin {name}"), json!({"name": name, "enabled": true})))
}

fn disable(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    post(ppath(name, "/disable")).query("force", p.flag("force")).send_ok()?;
    Ok(Output::one(format!("Disabled plugin {name}"), json!({"name": name, "enabled": false})))
}

fn upgrade(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    let remote = p.req_str("remote")?;
    let deadline = deadline(p)?;
    let privs = granted(p, remote)?;
    let progress = post(ppath(name, "/upgrade"))
        .query("remote", remote)
        .registry(registry_of(remote))
        .json(&privs)
        .stream()?
        .progress("plugin upgrade", deadline)?;
    Ok(Output::one(
        format!("Upgraded plugin {name} to {remote} ({} progress messages)", progress.messages),
        json!({"name": name, "remote": remote, "privileges": privs}),
    ))
}

fn create(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    post("/plugins/create").query("name", name).artifact("in", "application/x-tar").send_ok()?;
    Ok(Output::one(format!("Created plugin {name} (disabled; enable it with plugin.enable)"), json!({"name": name})).summary("name", name))
}

fn push(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    let deadline = deadline(p)?;
    let progress = post(ppath(name, "/push")).registry(registry_of(name)).stream()?.progress("plugin push", deadline)?;
    Ok(Output::one(format!("Pushed plugin {name} ({} progress messages)", progress.messages), json!({"name": name, "statuses": progress.statuses})))
}

fn set(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    let settings: Vec<String> = match p.get("settings") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().filter(|s| s.contains('=')).map(str::to_string).ok_or_else(|| Error::bad_params("parameter 'settings' must hold KEY=value strings")))
            .collect::<Result<_>>()?,
        _ => return Err(Error::bad_params("parameter 'settings' must be {\"KEY\": \"value\"} or [\"KEY=value\"]")),
    };
    post(ppath(name, "/set")).json(&json!(settings)).send_ok()?;
    Ok(Output::one(format!("Set {} settings of plugin {name}", settings.len()), json!({"name": name, "settings": settings})))
}

