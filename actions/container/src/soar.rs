//! Splunk SOAR Docker app compatibility: its container action names, parameter names and
//! output data paths, mapped onto the canonical actions.

use berth_sdk::commit::CommitOpts;
use berth_sdk::params;
use berth_sdk::prelude::*;
use berth_sdk::soar::{counted, summary_text, with_message, wrap, wrap_each};
use berth_sdk::typed::With;

use crate::{Create, Id, Lifecycle, Update};

params! {
    struct SoarUpdate {
        id: String => "ID or Name of the container",
        request_body: Value => "Configuration (JSON object)",
    }
}

params! {
    struct SoarRestart {
        id: String => "ID or Name of the container",
        delay: i64 = 1 => "Seconds to wait before killing the container",
    }
}

params! {
    struct SoarStart {
        id: String => "ID or Name of the container",
        detachkeys: Option<String> => "",
    }
}

params! {
    struct SoarKill {
        id: String => "ID or Name of the container",
        signal: String = "SIGKILL" => "",
    }
}

params! {
    struct SoarRemove {
        id: String => "ID or Name of the container",
        volumes: bool => "",
        force: bool => "",
        link: bool => "",
    }
}

params! {
    struct SoarCreate {
        name: String => "",
        request_body: Value => "Configuration (JSON object)",
    }
}

params! {
    struct SoarSnapshot {
        container: String => "ID or Name of the container to commit",
        request_body: Option<Value> => "Configuration (JSON object)",
    }
}

pub fn actions() -> Vec<Action> {
    vec![
        Action::new("list container", "Get a list of containers (Splunk SOAR)")
            .read_only()
            .output(&["data.*.containers.*.Id", "data.*.containers.*.Names", "data.*.containers.*.Ports.*.PublicPort", "summary.total_objects"])
            .ops(&["ContainerList"])
            .typed(|p: crate::List| Ok(wrap("containers", crate::list(p)?))),
        Action::new("inspect container", "Get low-level information about a container (Splunk SOAR)")
            .read_only()
            .output(&["data.*.containerStats", "summary.containerStats_data", "summary.total_objects"])
            .ops(&["ContainerInspect"])
            .typed(|p: crate::Inspect| Ok(summary_text("containerStats_data", wrap_each("containerStats", crate::inspect(p)?)))),
        Action::new("get container filesystem changes", "Added, modified or deleted files (Splunk SOAR)")
            .read_only()
            .output(&["data.*.filesystem.*.Path", "data.*.filesystem.*.Kind", "summary.filesystem_data", "summary.total_objects"])
            .ops(&["ContainerChanges"])
            .typed(|p: Id| Ok(summary_text("filesystem_data", wrap("filesystem", crate::changes(p)?)))),
        Action::new("update container", "Change a container's configuration (Splunk SOAR)")
            .kind(Kind::Generic)
            .output(&["data.*.update_stats.message", "data.*.update_stats.Warnings", "summary.update_data", "summary.total_objects"])
            .ops(&["ContainerUpdate"])
            .typed(|p: SoarUpdate| {
                let body = Some(object(p.request_body)?);
                Ok(summary_text("update_data", with_message("update_stats", crate::update(Update { id: p.id, body, ..Default::default() })?)))
            }),
        Action::new("restart container", "Restart a container (Splunk SOAR)")
            .kind(Kind::Generic)
            .output(&["data", "summary.restart_data", "summary.total_objects"])
            .ops(&["ContainerRestart"])
            .typed(|p: SoarRestart| {
                counted(summary_text("restart_data", crate::lifecycle(Lifecycle { id: p.id, t: Some(p.delay), ..Default::default() }, "restart")?))
            }),
        Action::new("export container", "Export a container as a tarball into the `out` artifact (Splunk SOAR)")
            .read_only()
            .output(&["data", "summary.export_data", "summary.total_objects"])
            .ops(&["ContainerExport"])
            .typed(|p: Id| {
                // The app's export_data is numeric: 1 for a container exported.
                let mut out = counted(crate::export(p)?)?;
                out.summary.insert("export_data".into(), json!(1));
                Ok(out)
            }),
        Action::new("stop container", "Stop a container (Splunk SOAR)")
            .kind(Kind::Generic)
            .output(&["data", "summary.stop_data", "summary.total_objects"])
            .ops(&["ContainerStop"])
            .typed(|p: Id| counted(summary_text("stop_data", crate::lifecycle(Lifecycle { id: p.id, ..Default::default() }, "stop")?))),
        Action::new("start container", "Start a container (Splunk SOAR)")
            .kind(Kind::Generic)
            .output(&["data", "summary.unpause_data", "summary.total_objects"])
            .ops(&["ContainerStart"])
            // The app names the start's summary unpause_data.
            .typed(|p: SoarStart| {
                counted(summary_text("unpause_data", crate::lifecycle(Lifecycle { id: p.id, detach_keys: p.detachkeys, ..Default::default() }, "start")?))
            }),
        Action::new("rename container", "Rename a container (Splunk SOAR)")
            .kind(Kind::Generic)
            .output(&["data", "summary.total_objects"])
            .ops(&["ContainerRename"])
            .typed(|p: crate::Rename| counted(crate::rename(p)?)),
        Action::new("kill container", "Send a signal to a container, SIGKILL by default (Splunk SOAR)")
            .kind(Kind::Generic)
            .output(&["data", "summary.total_objects"])
            .ops(&["ContainerKill"])
            .typed(|p: SoarKill| counted(crate::lifecycle(Lifecycle { id: p.id, signal: Some(p.signal), ..Default::default() }, "kill")?)),
        Action::new("remove container", "Remove a container (Splunk SOAR)")
            .kind(Kind::Generic)
            .output(&["data", "summary.total_objects"])
            .ops(&["ContainerDelete"])
            .typed(|p: SoarRemove| counted(crate::remove(crate::Remove { id: p.id, v: p.volumes, force: p.force, link: p.link })?)),
        Action::new("delete stopped containers", "Delete stopped containers (Splunk SOAR)")
            .kind(Kind::Generic)
            .output(&["data", "summary.total_objects"])
            .ops(&["ContainerPrune"])
            .typed(crate::prune),
        Action::new("create container", "Create a container from a configuration (Splunk SOAR)")
            .kind(Kind::Generic)
            .output(&["data.*.create.message", "data.*.create.Warnings", "data.*.create.Id", "summary.total_objects"])
            .ops(&["ContainerCreate"])
            .typed(|p: SoarCreate| {
                let body = object(p.request_body)?;
                // Name this alias's own params: it has no `image`.
                if !body.get("Image").is_some_and(Value::is_string) {
                    return Err(Error::bad_params(
                        "parameter 'request_body' must be a container config with an \"Image\", e.g. {\"Image\": \"busybox\", \"Cmd\": [\"sleep\", \"60\"]}",
                    ));
                }
                Ok(with_message("create", crate::create(Create { name: Some(p.name), body: Some(body), ..Default::default() })?))
            }),
        Action::new("take container snapshot", "Commit a container to an image (Splunk SOAR)")
            .kind(Kind::Generic)
            .output(&["data.*.Id", "summary.total_objects"])
            .ops(&["ImageCommit"])
            .typed(|With(p, opts): With<SoarSnapshot, CommitOpts>| berth_sdk::commit::commit(&p.container, opts, p.request_body.as_ref())),
    ]
}

/// `request_body` as a JSON object (the host already parsed JSON text given for it).
fn object(v: Value) -> Result<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        Value::String(s) => serde_json::from_str::<Value>(&s)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .ok_or_else(|| Error::bad_params("parameter 'request_body' must be a JSON object")),
        _ => Err(Error::bad_params("parameter 'request_body' must be a JSON object")),
    }
}
