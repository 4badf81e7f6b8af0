//! The `plugin` family: the 11 Plugin operations of the Engine API.
//!
//! Pulls and upgrades grant a plugin the privileges it asks for only when the caller says
//! so (`grant_all`), after seeing them: a plugin runs with whatever it is granted.

use std::time::Instant;

use berth_sdk::logs::bounded;
use berth_sdk::params;
use berth_sdk::prelude::*;
use berth_sdk::stream::registry_of;
use berth_sdk::typed::Filters;

params! {
    struct List {
        filters: Option<Filters> => "Filters: capability, enable",
    }
}

params! {
    struct Remote {
        remote: String => "Plugin reference in a registry",
    }
}

params! {
    struct Pull {
        remote: String => "Plugin reference in a registry",
        name: Option<String> => "Local name (default: the remote reference)",
        grant_all: bool => "Grant every privilege the plugin asks for (see plugin.privileges first)",
        enable: bool => "Enable it once installed",
        timeout: i64 = 300 => "Seconds to wait for the registry",
    }
}

params! {
    struct Name {
        name: String => "Plugin name (name:tag) or ID",
    }
}

params! {
    struct Remove {
        name: String => "Plugin name (name:tag) or ID",
        force: bool => "Disable and remove even if in use",
    }
}

params! {
    struct Enable {
        name: String => "Plugin name (name:tag) or ID",
        timeout: i64 = 30 => "Seconds the plugin has to start",
    }
}

params! {
    struct Disable {
        name: String => "Plugin name (name:tag) or ID",
        force: bool => "Disable even if in use",
    }
}

params! {
    struct Upgrade {
        name: String => "Plugin name (name:tag) or ID",
        remote: String => "Plugin reference to upgrade to",
        grant_all: bool => "Grant every privilege the plugin asks for (see plugin.privileges first)",
        timeout: i64 = 300 => "Seconds to wait for the registry",
    }
}

params! {
    struct Create {
        name: String => "Name (name:tag) of the new plugin",
    }
}

params! {
    struct Push {
        name: String => "Plugin name (name:tag) or ID",
        timeout: i64 = 300 => "Seconds to wait for the registry",
    }
}

params! {
    struct Set {
        name: String => "Plugin name (name:tag) or ID",
        settings: Value => "KEY=value (as docker plugin set takes it), {\"KEY\": \"value\"} or [\"KEY=value\"]",
    }
}

fn actions() -> Vec<Action> {
    vec![
        Action::new("plugin.list", "List installed plugins")
            .read_only()
            .output(&["data.*.Id", "data.*.Name", "data.*.Enabled", "data.*.Config.Interface.Types", "summary.total_objects"])
            .ops(&["PluginList"])
            .typed(list),
        Action::new("plugin.privileges", "The privileges a plugin in a registry asks for")
            .read_only()
            .output(&["data.*.Name", "data.*.Value", "summary.total_objects"])
            .ops(&["GetPluginPrivileges"])
            .typed(privileges),
        Action::new("plugin.pull", "Install a plugin from a registry")
            .kind(Kind::Generic)
            .output(&["data.*.name", "data.*.privileges", "data.*.enabled"])
            .ops(&["GetPluginPrivileges", "PluginPull", "PluginEnable"])
            .typed(pull),
        Action::new("plugin.inspect", "Inspect an installed plugin")
            .read_only()
            .output(&["data.*.Id", "data.*.Name", "data.*.Enabled", "data.*.Settings", "data.*.PluginReference"])
            .ops(&["PluginInspect"])
            .typed(inspect),
        Action::new("plugin.remove", "Remove a plugin").kind(Kind::Correct).output(&["data.*.name", "data.*.id"]).ops(&["PluginDelete"]).typed(remove),
        Action::new("plugin.enable", "Enable a plugin").kind(Kind::Generic).output(&["data.*.name", "data.*.enabled"]).ops(&["PluginEnable"]).typed(enable),
        Action::new("plugin.disable", "Disable a plugin").kind(Kind::Contain).output(&["data.*.name", "data.*.enabled"]).ops(&["PluginDisable"]).typed(disable),
        Action::new("plugin.upgrade", "Upgrade a disabled plugin from a registry")
            .kind(Kind::Generic)
            .output(&["data.*.name", "data.*.remote", "data.*.privileges"])
            .ops(&["GetPluginPrivileges", "PluginUpgrade"])
            .typed(upgrade),
        Action::new("plugin.create", "Create a plugin from the `in` artifact: a tar of config.json and rootfs/")
            .kind(Kind::Generic)
            .output(&["data.*.name", "summary.name"])
            .ops(&["PluginCreate"])
            .typed(create),
        Action::new("plugin.push", "Push a plugin to its registry")
            .kind(Kind::Generic)
            .output(&["data.*.name", "data.*.statuses"])
            .ops(&["PluginPush"])
            .typed(push),
        Action::new("plugin.set", "Change a plugin's settings (env, mounts' sources, devices, args)")
            .kind(Kind::Generic)
            .output(&["data.*.name", "data.*.settings"])
            .ops(&["PluginSet"])
            .typed(set),
    ]
}

berth_sdk::family!(name: "plugin", actions: actions);

fn ppath(name: &str, rest: &str) -> String {
    format!("/plugins/{}{rest}", berth_sdk::seg(name))
}

fn deadline(secs: i64) -> Result<Instant> {
    Ok(Instant::now() + bounded(secs, "timeout")?)
}

fn list(p: List) -> Result<Output> {
    let v = get("/plugins").query_json("filters", Filters::as_query(&p.filters)).json_ok()?;
    Ok(Output::listed_json("plugins", &v))
}

fn privileges_of(remote: &str) -> Result<Value> {
    get("/plugins/privileges").query("remote", remote).registry(registry_of(remote)).json_ok()
}

fn privileges(p: Remote) -> Result<Output> {
    let v = privileges_of(&p.remote)?;
    Ok(Output::listed_json(&format!("privileges asked for by {}", p.remote), &v))
}

/// The privileges to grant: all of them when `grant_all`, none needed otherwise.
fn granted(grant_all: bool, remote: &str) -> Result<Value> {
    let privs = privileges_of(remote)?;
    let asked = privs.as_array().map(|a| a.len()).unwrap_or(0);
    if asked > 0 && !grant_all {
        let list: Vec<String> = privs.as_array().into_iter().flatten().map(|x| format!("{}={}", x["Name"].as_str().unwrap_or("?"), x["Value"])).collect();
        return Err(Error::Denied(format!("{remote} asks for privileges: {}; set grant_all=true to grant them", list.join(", "))));
    }
    Ok(privs)
}

fn pull(p: Pull) -> Result<Output> {
    let remote = p.remote.as_str();
    let deadline = deadline(p.timeout)?;
    let privs = granted(p.grant_all, remote)?;
    let progress = post("/plugins/pull")
        .query("remote", remote)
        .query_opt("name", p.name.as_deref())
        .registry(registry_of(remote))
        .json(&privs)
        .stream()?
        .progress("plugin pull", deadline)?;
    let name = p.name.clone().unwrap_or_else(|| remote.to_string());
    if p.enable {
        post(ppath(&name, "/enable")).query("timeout", 30).send_ok()?;
    }
    Ok(Output::one(
        format!("Installed plugin {name} from {remote} ({} progress messages)", progress.messages),
        json!({"name": name, "remote": remote, "privileges": privs, "enabled": p.enable}),
    ))
}

fn inspect(p: Name) -> Result<Output> {
    let name = p.name.as_str();
    let v = get(ppath(name, "/json")).json_ok()?;
    Ok(Output::new(format!(
        "Plugin {} ({}), {}",
        v["Name"].as_str().unwrap_or(name),
        v["Id"].as_str().unwrap_or("?"),
        if v["Enabled"] == true { "enabled" } else { "disabled" }
    ))
    .summary("enabled", v["Enabled"].clone())
    .item(v))
}

fn remove(p: Remove) -> Result<Output> {
    let name = p.name.as_str();
    // API 1.41 engines answer with an empty body; later ones with the removed plugin.
    let r = delete(ppath(name, "")).query("force", p.force).send_ok()?;
    let id = r.json().ok().map(|v| v["Id"].clone()).unwrap_or(Value::Null);
    Ok(Output::one(format!("Removed plugin {name}"), json!({"name": name, "id": id})))
}

fn enable(p: Enable) -> Result<Output> {
    if !(1..=600).contains(&p.timeout) {
        return Err(Error::bad_params("parameter 'timeout' must be between 1 and 600 seconds"));
    }
    post(ppath(&p.name, "/enable")).query("timeout", p.timeout).send_ok()?;
    Ok(Output::one(format!("Enabled plugin {}", p.name), json!({"name": p.name, "enabled": true})))
}

fn disable(p: Disable) -> Result<Output> {
    post(ppath(&p.name, "/disable")).query("force", p.force).send_ok()?;
    Ok(Output::one(format!("Disabled plugin {}", p.name), json!({"name": p.name, "enabled": false})))
}

fn upgrade(p: Upgrade) -> Result<Output> {
    let (name, remote) = (p.name.as_str(), p.remote.as_str());
    let deadline = deadline(p.timeout)?;
    let privs = granted(p.grant_all, remote)?;
    let progress =
        post(ppath(name, "/upgrade")).query("remote", remote).registry(registry_of(remote)).json(&privs).stream()?.progress("plugin upgrade", deadline)?;
    Ok(Output::one(
        format!("Upgraded plugin {name} to {remote} ({} progress messages)", progress.messages),
        json!({"name": name, "remote": remote, "privileges": privs}),
    ))
}

fn create(p: Create) -> Result<Output> {
    let name = p.name.as_str();
    post("/plugins/create").query("name", name).artifact("in", "application/x-tar").send_ok()?;
    Ok(Output::one(format!("Created plugin {name} (disabled; enable it with plugin.enable)"), json!({"name": name})).summary("name", name))
}

fn push(p: Push) -> Result<Output> {
    let name = p.name.as_str();
    let deadline = deadline(p.timeout)?;
    let progress = post(ppath(name, "/push")).registry(registry_of(name)).stream()?.progress("plugin push", deadline)?;
    Ok(Output::one(format!("Pushed plugin {name} ({} progress messages)", progress.messages), json!({"name": name, "statuses": progress.statuses})))
}

fn set(p: Set) -> Result<Output> {
    let name = p.name.as_str();
    let settings: Vec<String> = match &p.settings {
        Value::Object(m) => berth_sdk::params::key_values(m),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str().filter(|s| s.contains('=')).map(str::to_string).ok_or_else(|| Error::bad_params("parameter 'settings' must hold KEY=value strings"))
            })
            .collect::<Result<_>>()?,
        // `settings=KEY=value`, as `docker plugin set NAME KEY=value` takes it.
        Value::String(one) if one.contains('=') && !one.starts_with('=') => vec![one.clone()],
        _ => return Err(Error::bad_params("parameter 'settings' must be KEY=value, {\"KEY\": \"value\"} or [\"KEY=value\"]")),
    };
    post(ppath(name, "/set")).json(&json!(settings)).send_ok()?;
    Ok(Output::one(format!("Set {} settings of plugin {name}", settings.len()), json!({"name": name, "settings": settings})))
}
