//! The `network` family: the 7 Network operations of the Engine API.

use berth_sdk::params::set_opt;
use berth_sdk::prelude::*;

fn id() -> Param {
    Param::string("id").required().describe("Network ID or name")
}

fn actions() -> Vec<Action> {
    vec![
        Action::new("network.list", "List networks")
            .read_only()
            .param(Param::any("filters").describe("Filters: dangling, driver, id, label, name, scope, type"))
            .output(&["data.*.Id", "data.*.Name", "data.*.Driver", "data.*.Scope", "summary.total_objects"])
            .run(list),
        Action::new("network.inspect", "Inspect a network")
            .read_only()
            .param(id())
            .param(Param::bool("verbose").default(false).describe("Detailed swarm-scope information"))
            .param(Param::string("scope").describe("swarm, global or local"))
            .output(&["data.*.Id", "data.*.Name", "data.*.IPAM.Config", "data.*.Containers", "summary.containers"])
            .run(inspect),
        Action::new("network.create", "Create a network")
            .kind(Kind::Generic)
            .param(Param::string("name").required())
            .param(Param::string("driver").default("bridge"))
            .param(Param::bool("internal").describe("No external connectivity"))
            .param(Param::bool("attachable").describe("Manual container attachment (swarm)"))
            .param(Param::bool("ingress"))
            .param(Param::bool("enable_ipv6"))
            .param(Param::object("labels"))
            .param(Param::object("options").describe("Driver options {\"k\": \"v\"}"))
            .param(Param::string("subnet").describe("IPAM subnet, e.g. 172.28.0.0/16"))
            .param(Param::string("gateway").describe("IPAM gateway"))
            .param(Param::string("ip_range").describe("IPAM range for dynamic addresses"))
            .param(Param::string("ipam_driver"))
            .param(Param::object("body").describe("Full NetworkCreate body; structured params override it"))
            .output(&["data.*.Id", "data.*.Warning", "summary.id"])
            .run(create),
        Action::new("network.remove", "Remove a network")
            .kind(Kind::Correct)
            .param(id())
            .output(&["data.*.id"])
            .run(remove),
        Action::new("network.connect", "Connect a container to a network")
            .kind(Kind::Generic)
            .param(id())
            .param(Param::string("container").required().describe("Container ID or name"))
            .param(Param::array("aliases").describe("Network-scoped aliases"))
            .param(Param::string("ipv4_address").describe("Static IPv4 address"))
            .param(Param::string("ipv6_address").describe("Static IPv6 address"))
            .param(Param::array("links"))
            .param(Param::object("driver_opts"))
            .param(Param::object("body").describe("Full NetworkConnect body; structured params override it"))
            .output(&["data.*.network", "data.*.container"])
            .run(connect),
        Action::new("network.disconnect", "Disconnect a container from a network")
            .kind(Kind::Contain)
            .param(id())
            .param(Param::string("container").required().describe("Container ID or name"))
            .param(Param::bool("force").default(false))
            .output(&["data.*.network", "data.*.container"])
            .run(disconnect),
        Action::new("network.prune", "Delete unused networks")
            .kind(Kind::Correct)
            .param(Param::any("filters").describe("Filters: until, label"))
            .output(&["data.*.NetworksDeleted", "summary.total_objects"])
            .run(prune),
    ]
}

berth_sdk::family!(name: "network", actions: actions);

fn npath(id: &str, rest: &str) -> String {
    format!("/networks/{}{rest}", berth_sdk::seg(id))
}

fn list(p: &Params) -> Result<Output> {
    let v = get("/networks").query_json("filters", p.filters("filters")?.as_ref()).json_ok()?;
    Ok(Output::listed_json("networks", &v))
}

fn inspect(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    let v = get(npath(id, "")).query_opt("verbose", p.bool("verbose")).query_opt("scope", p.str("scope")).json_ok()?;
    let containers = v["Containers"].as_object().map(|m| m.len()).unwrap_or(0);
    Ok(Output::new(format!("Network {} ({}), {containers} containers", v["Name"].as_str().unwrap_or(id), v["Driver"].as_str().unwrap_or("?")))
        .summary("id", v["Id"].clone())
        .summary("containers", containers)
        .item(v))
}

fn create(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    let mut body = p.object_or_empty("body");
    body.insert("Name".into(), json!(name));
    set_opt(&mut body, "Driver", p.str("driver").map(|s| json!(s)));
    set_opt(&mut body, "Internal", p.bool("internal").map(Value::Bool));
    set_opt(&mut body, "Attachable", p.bool("attachable").map(Value::Bool));
    set_opt(&mut body, "Ingress", p.bool("ingress").map(Value::Bool));
    set_opt(&mut body, "EnableIPv6", p.bool("enable_ipv6").map(Value::Bool));
    set_opt(&mut body, "Labels", p.get("labels").cloned());
    set_opt(&mut body, "Options", p.get("options").cloned());
    if p.str("subnet").is_some() || p.str("gateway").is_some() || p.str("ip_range").is_some() || p.str("ipam_driver").is_some() {
        if p.str("subnet").is_none() && (p.str("gateway").is_some() || p.str("ip_range").is_some()) {
            return Err(Error::bad_params("parameters 'gateway' and 'ip_range' need a 'subnet'"));
        }
        let mut pool = Map::new();
        set_opt(&mut pool, "Subnet", p.str("subnet").map(|s| json!(s)));
        set_opt(&mut pool, "Gateway", p.str("gateway").map(|s| json!(s)));
        set_opt(&mut pool, "IPRange", p.str("ip_range").map(|s| json!(s)));
        let mut ipam = json!({"Driver": p.str("ipam_driver").unwrap_or("default")});
        if !pool.is_empty() {
            ipam["Config"] = json!([pool]);
        }
        body.insert("IPAM".into(), ipam);
    }
    // Refuse a name that exists instead of silently creating a duplicate.
    body.entry("CheckDuplicate").or_insert(json!(true));
    let v = post("/networks/create").json(&Value::Object(body)).json_ok()?;
    let id = v["Id"].clone();
    Ok(Output::one(format!("Created network {name} ({})", id.as_str().unwrap_or("?")), v).summary("id", id))
}

fn remove(p: &Params) -> Result<Output> {
    let id = p.req_str("id")?;
    delete(npath(id, "")).send_ok()?;
    Ok(Output::one(format!("Removed network {id}"), json!({"id": id})))
}

fn connect(p: &Params) -> Result<Output> {
    let (id, container) = (p.req_str("id")?, p.req_str("container")?);
    let mut body = p.object_or_empty("body");
    body.insert("Container".into(), json!(container));
    let mut endpoint = match body.remove("EndpointConfig") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    set_opt(&mut endpoint, "Aliases", p.get("aliases").cloned());
    set_opt(&mut endpoint, "Links", p.get("links").cloned());
    set_opt(&mut endpoint, "DriverOpts", p.get("driver_opts").cloned());
    if p.str("ipv4_address").is_some() || p.str("ipv6_address").is_some() {
        let mut ipam = Map::new();
        set_opt(&mut ipam, "IPv4Address", p.str("ipv4_address").map(|s| json!(s)));
        set_opt(&mut ipam, "IPv6Address", p.str("ipv6_address").map(|s| json!(s)));
        endpoint.insert("IPAMConfig".into(), Value::Object(ipam));
    }
    if !endpoint.is_empty() {
        body.insert("EndpointConfig".into(), Value::Object(endpoint));
    }
    post(npath(id, "/connect")).json(&Value::Object(body)).send_ok()?;
    Ok(Output::one(format!("Connected {container} to {id}"), json!({"network": id, "container": container})))
}

fn disconnect(p: &Params) -> Result<Output> {
    let (id, container) = (p.req_str("id")?, p.req_str("container")?);
    post(npath(id, "/disconnect")).json(&json!({"Container": container, "Force": p.flag("force")})).send_ok()?;
    Ok(Output::one(format!("Disconnected {container} from {id}"), json!({"network": id, "container": container})))
}

fn prune(p: &Params) -> Result<Output> {
    let v = post("/networks/prune").query_json("filters", p.filters("filters")?.as_ref()).json_ok()?;
    Ok(Output::pruned(v, "NetworksDeleted", "unused networks"))
}
