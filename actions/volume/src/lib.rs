//! The `volume` family: the 6 Volume operations of the Engine API, on typed params.

use berth_sdk::engine::need_api;
use berth_sdk::params;
use berth_sdk::params::set_opt;
use berth_sdk::prelude::*;
use berth_sdk::typed::Filters;

params! {
    struct List {
        filters: Option<Filters> => "Filters: dangling, driver, label, name",
    }
}

params! {
    struct Create {
        name: Option<String> => "Name (generated when empty)",
        driver: String = "local" => "Volume driver",
        driver_opts: Option<Map<String, Value>> => "Driver options {\"k\": \"v\"}",
        labels: Option<Map<String, Value>> => "Labels {\"k\": \"v\"}",
        body: Option<Map<String, Value>> => "Full VolumeCreate body; structured params override it",
    }
}

params! {
    struct Named {
        name: String => "Volume name or ID",
    }
}

params! {
    struct Update {
        name: String => "Volume name or ID",
        version: i64 => "The volume's current version (Version.Index), for optimistic locking",
        spec: Map<String, Value> => "The new ClusterVolumeSpec",
    }
}

params! {
    struct Remove {
        name: String => "Volume name or ID",
        force: bool => "Remove even if the driver cannot",
    }
}

params! {
    struct Prune {
        filters: Option<Filters> => "Filters: label, all",
        all: Option<bool> => "Named volumes too, not only anonymous ones (API >= 1.42; older engines always prune all)",
    }
}

fn actions() -> Vec<Action> {
    vec![
        Action::new("volume.list", "List volumes")
            .read_only()
            .output(&["data.*.Name", "data.*.Driver", "data.*.Mountpoint", "data.*.Labels", "summary.total_objects"])
            .ops(&["VolumeList"])
            .typed(list),
        Action::new("volume.create", "Create a volume")
            .kind(Kind::Generic)
            .output(&["data.*.Name", "data.*.Mountpoint", "summary.name"])
            .ops(&["VolumeCreate"])
            .typed(create),
        Action::new("volume.inspect", "Inspect a volume")
            .read_only()
            .output(&["data.*.Name", "data.*.Driver", "data.*.Mountpoint", "data.*.Labels"])
            .ops(&["VolumeInspect"])
            .typed(inspect),
        Action::new("volume.update", "Update a cluster volume (swarm only, API >= 1.42)").kind(Kind::Generic).ops(&["VolumeUpdate"]).typed(update),
        Action::new("volume.remove", "Remove a volume").kind(Kind::Correct).output(&["data.*.name"]).ops(&["VolumeDelete"]).typed(remove),
        Action::new("volume.prune", "Delete unused volumes")
            .kind(Kind::Correct)
            .output(&["data.*.VolumesDeleted", "summary.total_objects", "summary.space_reclaimed"])
            .ops(&["VolumePrune"])
            .typed(prune),
    ]
}

berth_sdk::family!(name: "volume", actions: actions);

fn vpath(name: &str) -> String {
    format!("/volumes/{}", berth_sdk::seg(name))
}

fn list(p: List) -> Result<Output> {
    let v = get("/volumes").query_json("filters", Filters::as_query(&p.filters)).json_ok()?;
    Ok(Output::listed_json("volumes", &v["Volumes"]).summary("warnings", v["Warnings"].clone()))
}

fn create(p: Create) -> Result<Output> {
    let mut body = p.body.unwrap_or_default();
    set_opt(&mut body, "Name", p.name.map(|s| json!(s)));
    body.insert("Driver".into(), json!(p.driver));
    set_opt(&mut body, "DriverOpts", p.driver_opts.map(Value::Object));
    set_opt(&mut body, "Labels", p.labels.map(Value::Object));
    let v = post("/volumes/create").json(&Value::Object(body)).json_ok()?;
    let name = v["Name"].clone();
    Ok(Output::one(format!("Created volume {}", name.as_str().unwrap_or("?")), v).summary("name", name))
}

fn inspect(p: Named) -> Result<Output> {
    let v = get(vpath(&p.name)).json_ok()?;
    Ok(Output::new(format!("Volume {} ({}) at {}", p.name, v["Driver"].as_str().unwrap_or("?"), v["Mountpoint"].as_str().unwrap_or("?"))).item(v))
}

fn update(p: Update) -> Result<Output> {
    need_api(1, 42, "volume.update (cluster volumes)")?;
    put(vpath(&p.name)).query("version", p.version).json(&json!({"Spec": p.spec})).send_ok()?;
    Ok(Output::one(format!("Updated cluster volume {}", p.name), json!({"name": p.name})))
}

fn remove(p: Remove) -> Result<Output> {
    delete(vpath(&p.name)).query("force", p.force).send_ok()?;
    Ok(Output::one(format!("Removed volume {}", p.name), json!({"name": p.name})))
}

fn prune(p: Prune) -> Result<Output> {
    let mut filters = p.filters.map(|f| f.0).unwrap_or(json!({}));
    if let Some(all) = p.all {
        if need_api(1, 42, "").is_ok() {
            filters["all"] = json!([all.to_string()]);
        } else if !all {
            return Err(Error::bad_params("all=false needs API >= 1.42: older engines prune named and anonymous volumes alike"));
        }
    }
    let filters = (filters.as_object().is_some_and(|m| !m.is_empty())).then_some(filters);
    let v = post("/volumes/prune").query_json("filters", filters.as_ref()).json_ok()?;
    Ok(Output::pruned(v, "VolumesDeleted", "unused volumes"))
}
