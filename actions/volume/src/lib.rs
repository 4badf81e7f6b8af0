//! The `volume` family: the 6 Volume operations of the Engine API.

use berth_sdk::engine::need_api;
use berth_sdk::params::set_opt;
use berth_sdk::prelude::*;

fn name() -> Param {
    Param::string("name").required().describe("Volume name or ID")
}

fn actions() -> Vec<Action> {
    vec![
        Action::new("volume.list", "List volumes")
            .read_only()
            .param(Param::any("filters").describe("Filters: dangling, driver, label, name"))
            .output(&["data.*.Name", "data.*.Driver", "data.*.Mountpoint", "data.*.Labels", "summary.total_objects"])
            .run(list),
        Action::new("volume.create", "Create a volume")
            .kind(Kind::Generic)
            .param(Param::string("name").describe("Name (generated when empty)"))
            .param(Param::string("driver").default("local"))
            .param(Param::object("driver_opts").describe("Driver options {\"k\": \"v\"}"))
            .param(Param::object("labels"))
            .param(Param::object("body").describe("Full VolumeCreate body; structured params override it"))
            .output(&["data.*.Name", "data.*.Mountpoint", "summary.name"])
            .run(create),
        Action::new("volume.inspect", "Inspect a volume")
            .read_only()
            .param(name())
            .output(&["data.*.Name", "data.*.Driver", "data.*.Mountpoint", "data.*.Labels"])
            .run(inspect),
        Action::new("volume.update", "Update a cluster volume (swarm only, API >= 1.42)")
            .kind(Kind::Generic)
            .param(name())
            .param(Param::int("version").required().describe("The volume's current version (Version.Index), for optimistic locking"))
            .param(Param::object("spec").required().describe("The new ClusterVolumeSpec"))
            .run(update),
        Action::new("volume.remove", "Remove a volume")
            .kind(Kind::Correct)
            .param(name())
            .param(Param::bool("force").default(false).describe("Remove even if the driver cannot"))
            .output(&["data.*.name"])
            .run(remove),
        Action::new("volume.prune", "Delete unused volumes")
            .kind(Kind::Correct)
            .param(Param::any("filters").describe("Filters: label, all"))
            .param(Param::bool("all").describe("Named volumes too, not only anonymous ones (API >= 1.42; older engines always prune all)"))
            .output(&["data.*.VolumesDeleted", "summary.total_objects", "summary.space_reclaimed"])
            .run(prune),
    ]
}

berth_sdk::family!(name: "volume", actions: actions);

fn vpath(name: &str) -> String {
    format!("/volumes/{}", berth_sdk::seg(name))
}

fn list(p: &Params) -> Result<Output> {
    let v = get("/volumes").query_json("filters", p.filters("filters")?.as_ref()).json_ok()?;
    Ok(Output::listed_json("volumes", &v["Volumes"]).summary("warnings", v["Warnings"].clone()))
}

fn create(p: &Params) -> Result<Output> {
    let mut body = p.object_or_empty("body");
    set_opt(&mut body, "Name", p.str("name").map(|s| json!(s)));
    set_opt(&mut body, "Driver", p.str("driver").map(|s| json!(s)));
    set_opt(&mut body, "DriverOpts", p.get("driver_opts").cloned());
    set_opt(&mut body, "Labels", p.get("labels").cloned());
    let v = post("/volumes/create").json(&Value::Object(body)).json_ok()?;
    let name = v["Name"].clone();
    Ok(Output::one(format!("Created volume {}", name.as_str().unwrap_or("?")), v).summary("name", name))
}

fn inspect(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    let v = get(vpath(name)).json_ok()?;
    Ok(Output::new(format!("Volume {name} ({}) at {}", v["Driver"].as_str().unwrap_or("?"), v["Mountpoint"].as_str().unwrap_or("?"))).item(v))
}

fn update(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    need_api(1, 42, "volume.update (cluster volumes)")?;
    let version = p.i64("version").ok_or_else(|| Error::bad_params("parameter 'version' (integer) is required"))?;
    let spec = p.get("spec").cloned().unwrap_or(json!({}));
    put(vpath(name)).query("version", version).json(&json!({"Spec": spec})).send_ok()?;
    Ok(Output::one(format!("Updated cluster volume {name}"), json!({"name": name})))
}

fn remove(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    delete(vpath(name)).query_opt("force", p.bool("force")).send_ok()?;
    Ok(Output::one(format!("Removed volume {name}"), json!({"name": name})))
}

fn prune(p: &Params) -> Result<Output> {
    let mut filters = p.filters("filters")?.unwrap_or(json!({}));
    if let Some(all) = p.bool("all") {
        if need_api(1, 42, "").is_ok() {
            filters["all"] = json!([all.to_string()]);
        } else if !all {
            return Err(Error::bad_params(
                "all=false needs API >= 1.42: older engines prune named and anonymous volumes alike",
            ));
        }
    }
    let filters = (filters.as_object().is_some_and(|m| !m.is_empty())).then_some(filters);
    let v = post("/volumes/prune").query_json("filters", filters.as_ref()).json_ok()?;
    Ok(Output::pruned(v, "VolumesDeleted", "unused volumes"))
}
