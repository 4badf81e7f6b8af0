//! Splunk SOAR Docker app compatibility: its container action names, parameter names and
//! output data paths, mapped onto the canonical actions.

use berth_sdk::prelude::*;
use berth_sdk::soar::{counted, with_message, wrap, wrap_each};

fn id() -> Param {
    Param::string("id").required().describe("ID or Name of the container")
}

fn request_body(required: bool) -> Param {
    let p = Param::any("request_body").describe("Configuration (JSON object)");
    if required {
        p.required()
    } else {
        p
    }
}

pub fn actions() -> Vec<Action> {
    vec![
        Action::new("list container", "Get a list of containers (Splunk SOAR)")
            .read_only()
            .param(Param::bool("all").default(false))
            .param(Param::int("limit"))
            .param(Param::bool("size").default(false))
            .param(Param::any("filters"))
            .output(&["data.*.containers.*.Id", "data.*.containers.*.Names", "data.*.containers.*.Ports.*.PublicPort", "summary.total_objects"])
            .run(|p| Ok(wrap("containers", crate::list(p)?))),
        Action::new("inspect container", "Get low-level information about a container (Splunk SOAR)")
            .read_only()
            .param(id())
            .param(Param::bool("size").default(false))
            .output(&["data.*.containerStats", "summary.total_objects"])
            .run(|p| Ok(wrap_each("containerStats", crate::inspect(p)?))),
        Action::new("get container filesystem changes", "Added, modified or deleted files (Splunk SOAR)")
            .read_only()
            .param(id())
            .output(&["data.*.filesystem.*.Path", "data.*.filesystem.*.Kind", "summary.total_objects"])
            .run(|p| Ok(wrap("filesystem", crate::changes(p)?))),
        Action::new("update container", "Change a container's configuration (Splunk SOAR)")
            .kind(Kind::Generic)
            .param(id())
            .param(request_body(true))
            .output(&["data.*.update_stats.message", "data.*.update_stats.Warnings", "summary.total_objects"])
            .run(|p| {
                let p = with_body(p, "request_body", "body")?;
                let out = crate::update(&p)?;
                Ok(with_message("update_stats", out))
            }),
        Action::new("restart container", "Restart a container (Splunk SOAR)")
            .kind(Kind::Generic)
            .param(id())
            .param(Param::int("delay").default(1).describe("Seconds to wait before killing the container"))
            .output(&["data", "summary.total_objects"])
            .run(|p| counted(crate::lifecycle(&renamed(p, &[("delay", "t")]), "restart")?)),
        Action::new("export container", "Export a container as a tarball into the `out` artifact (Splunk SOAR)")
            .read_only()
            .param(id())
            .output(&["data", "summary.total_objects"])
            .run(|p| counted(crate::export(p)?)),
        Action::new("stop container", "Stop a container (Splunk SOAR)")
            .kind(Kind::Generic)
            .param(id())
            .output(&["data", "summary.total_objects"])
            .run(|p| counted(crate::lifecycle(p, "stop")?)),
        Action::new("start container", "Start a container (Splunk SOAR)")
            .kind(Kind::Generic)
            .param(id())
            .param(Param::string("detachkeys"))
            .output(&["data", "summary.total_objects"])
            .run(|p| counted(crate::lifecycle(&renamed(p, &[("detachkeys", "detach_keys")]), "start")?)),
        Action::new("rename container", "Rename a container (Splunk SOAR)")
            .kind(Kind::Generic)
            .param(id())
            .param(Param::string("name").required())
            .output(&["data", "summary.total_objects"])
            .run(|p| counted(crate::rename(p)?)),
        Action::new("kill container", "Send a signal to a container, SIGKILL by default (Splunk SOAR)")
            .kind(Kind::Generic)
            .param(id())
            .param(Param::string("signal").default("SIGKILL"))
            .output(&["data", "summary.total_objects"])
            .run(|p| counted(crate::lifecycle(p, "kill")?)),
        Action::new("remove container", "Remove a container (Splunk SOAR)")
            .kind(Kind::Generic)
            .param(id())
            .param(Param::bool("volumes").default(false))
            .param(Param::bool("force").default(false))
            .param(Param::bool("link").default(false))
            .output(&["data", "summary.total_objects"])
            .run(|p| counted(crate::remove(&renamed(p, &[("volumes", "v")]))?)),
        Action::new("delete stopped containers", "Delete stopped containers (Splunk SOAR)")
            .kind(Kind::Generic)
            .param(Param::any("filters"))
            .output(&["data", "summary.total_objects"])
            .run(crate::prune),
        Action::new("create container", "Create a container from a configuration (Splunk SOAR)")
            .kind(Kind::Generic)
            .param(Param::string("name").required())
            .param(request_body(true))
            .output(&["data.*.create.message", "data.*.create.Warnings", "data.*.create.Id", "summary.total_objects"])
            .run(|p| {
                let p = with_body(p, "request_body", "body")?;
                // Name this alias's own params: it has no `image`.
                if !p.get("body").and_then(|b| b.get("Image")).is_some_and(Value::is_string) {
                    return Err(Error::bad_params("parameter 'request_body' must be a container config with an \"Image\", e.g. {\"Image\": \"busybox\", \"Cmd\": [\"sleep\", \"60\"]}"));
                }
                Ok(with_message("create", crate::create(&p)?))
            }),
        Action::new("take container snapshot", "Commit a container to an image (Splunk SOAR)")
            .kind(Kind::Generic)
            .param(Param::string("container").required().describe("ID or Name of the container to commit"))
            .param(Param::string("repo"))
            .param(Param::string("tag"))
            .param(Param::string("comment"))
            .param(Param::string("author"))
            .param(Param::bool("pause").default(true))
            .param(Param::any("changes").describe("Dockerfile instructions, one per line"))
            .param(request_body(false))
            .output(&["data.*.Id", "summary.total_objects"])
            .run(crate::exec::snapshot),
    ]
}

/// The params with some keys renamed to the canonical action's names.
fn renamed(p: &Params, map: &[(&str, &str)]) -> Params {
    let mut m = p.0.clone();
    for (from, to) in map {
        if let Some(v) = m.remove(*from) {
            m.insert(to.to_string(), v);
        }
    }
    Params(m)
}

/// `request_body` as a JSON object under the canonical `body` name.
fn with_body(p: &Params, from: &str, to: &str) -> Result<Params> {
    let mut m = p.0.clone();
    let v = match m.remove(from) {
        Some(Value::String(s)) => serde_json::from_str::<Value>(&s)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| Error::bad_params(format!("parameter '{from}' must be a JSON object")))?,
        Some(v @ Value::Object(_)) => v,
        Some(_) => return Err(Error::bad_params(format!("parameter '{from}' must be a JSON object"))),
        None => json!({}),
    };
    m.insert(to.to_string(), v);
    Ok(Params(m))
}
