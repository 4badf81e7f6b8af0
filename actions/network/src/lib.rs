//! The `network` family: the 7 Network operations of the Engine API, on typed params.

use berth_sdk::params;
use berth_sdk::params::set_opt;
use berth_sdk::prelude::*;
use berth_sdk::typed::Filters;

params! {
    struct List {
        filters: Option<Filters> => "Filters: dangling, driver, id, label, name, scope, type",
    }
}

params! {
    struct Inspect {
        id: String => "Network ID or name",
        verbose: bool => "Detailed swarm-scope information",
        scope: Option<String> => "swarm, global or local",
    }
}

params! {
    struct Create {
        name: String => "Network name",
        driver: String = "bridge" => "Network driver",
        internal: Option<bool> => "No external connectivity",
        attachable: Option<bool> => "Manual container attachment (swarm)",
        ingress: Option<bool> => "The swarm routing-mesh network",
        enable_ipv6: Option<bool> => "IPv6",
        labels: Option<Map<String, Value>> => "Labels {\"k\": \"v\"}",
        options: Option<Map<String, Value>> => "Driver options {\"k\": \"v\"}",
        subnet: Option<String> => "IPAM subnet, e.g. 172.28.0.0/16",
        gateway: Option<String> => "IPAM gateway",
        ip_range: Option<String> => "IPAM range for dynamic addresses",
        ipam_driver: Option<String> => "IPAM driver",
        body: Option<Map<String, Value>> => "Full NetworkCreate body; structured params override it",
    }
}

params! {
    struct Id {
        id: String => "Network ID or name",
    }
}

params! {
    struct Connect {
        id: String => "Network ID or name",
        container: String => "Container ID or name",
        aliases: Option<Vec<Value>> => "Network-scoped aliases",
        ipv4_address: Option<String> => "Static IPv4 address",
        ipv6_address: Option<String> => "Static IPv6 address",
        links: Option<Vec<Value>> => "Legacy links",
        driver_opts: Option<Map<String, Value>> => "Endpoint driver options",
        body: Option<Map<String, Value>> => "Full NetworkConnect body; structured params override it",
    }
}

params! {
    struct Disconnect {
        id: String => "Network ID or name",
        container: String => "Container ID or name",
        force: bool => "Disconnect even if the container is not running",
    }
}

params! {
    struct Prune {
        filters: Option<Filters> => "Filters: until, label",
    }
}

fn actions() -> Vec<Action> {
    vec![
        Action::new("network.list", "List networks")
            .read_only()
            .output(&["data.*.Id", "data.*.Name", "data.*.Driver", "data.*.Scope", "summary.total_objects"])
            .ops(&["NetworkList"])
            .typed(list),
        Action::new("network.inspect", "Inspect a network")
            .read_only()
            .output(&["data.*.Id", "data.*.Name", "data.*.IPAM.Config", "data.*.Containers", "summary.containers"])
            .ops(&["NetworkInspect"])
            .typed(inspect),
        Action::new("network.create", "Create a network")
            .kind(Kind::Generic)
            .output(&["data.*.Id", "data.*.Warning", "summary.id"])
            .ops(&["NetworkCreate"])
            .typed(create),
        Action::new("network.remove", "Remove a network").kind(Kind::Correct).output(&["data.*.id"]).ops(&["NetworkDelete"]).typed(remove),
        Action::new("network.connect", "Connect a container to a network")
            .kind(Kind::Generic)
            .output(&["data.*.network", "data.*.container"])
            .ops(&["NetworkConnect"])
            .typed(connect),
        Action::new("network.disconnect", "Disconnect a container from a network")
            .kind(Kind::Contain)
            .output(&["data.*.network", "data.*.container"])
            .ops(&["NetworkDisconnect"])
            .typed(disconnect),
        Action::new("network.prune", "Delete unused networks")
            .kind(Kind::Correct)
            .output(&["data.*.NetworksDeleted", "summary.total_objects"])
            .ops(&["NetworkPrune"])
            .typed(prune),
    ]
}

berth_sdk::family!(name: "network", actions: actions);

fn npath(id: &str, rest: &str) -> String {
    format!("/networks/{}{rest}", berth_sdk::seg(id))
}

fn list(p: List) -> Result<Output> {
    let v = get("/networks").query_json("filters", Filters::as_query(&p.filters)).json_ok()?;
    Ok(Output::listed_json("networks", &v))
}

fn inspect(p: Inspect) -> Result<Output> {
    let id = p.id.as_str();
    let v = get(npath(id, "")).query("verbose", p.verbose).query_opt("scope", p.scope.as_deref()).json_ok()?;
    let containers = v["Containers"].as_object().map(|m| m.len()).unwrap_or(0);
    Ok(Output::new(format!("Network {} ({}), {containers} containers", v["Name"].as_str().unwrap_or(id), v["Driver"].as_str().unwrap_or("?")))
        .summary("id", v["Id"].clone())
        .summary("containers", containers)
        .item(v))
}

fn create(p: Create) -> Result<Output> {
    let name = p.name.as_str();
    let mut body = p.body.clone().unwrap_or_default();
    body.insert("Name".into(), json!(name));
    body.insert("Driver".into(), json!(p.driver));
    set_opt(&mut body, "Internal", p.internal.map(Value::Bool));
    set_opt(&mut body, "Attachable", p.attachable.map(Value::Bool));
    set_opt(&mut body, "Ingress", p.ingress.map(Value::Bool));
    set_opt(&mut body, "EnableIPv6", p.enable_ipv6.map(Value::Bool));
    set_opt(&mut body, "Labels", p.labels.clone().map(Value::Object));
    set_opt(&mut body, "Options", p.options.clone().map(Value::Object));
    if p.subnet.is_some() || p.gateway.is_some() || p.ip_range.is_some() || p.ipam_driver.is_some() {
        if p.subnet.is_none() && (p.gateway.is_some() || p.ip_range.is_some()) {
            return Err(Error::bad_params("parameters 'gateway' and 'ip_range' need a 'subnet'"));
        }
        let mut pool = Map::new();
        set_opt(&mut pool, "Subnet", p.subnet.clone().map(Value::String));
        set_opt(&mut pool, "Gateway", p.gateway.clone().map(Value::String));
        set_opt(&mut pool, "IPRange", p.ip_range.clone().map(Value::String));
        let mut ipam = json!({"Driver": p.ipam_driver.as_deref().unwrap_or("default")});
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

fn remove(p: Id) -> Result<Output> {
    delete(npath(&p.id, "")).send_ok()?;
    Ok(Output::one(format!("Removed network {}", p.id), json!({"id": p.id})))
}

fn connect(p: Connect) -> Result<Output> {
    let (id, container) = (p.id.as_str(), p.container.as_str());
    let mut body = p.body.clone().unwrap_or_default();
    body.insert("Container".into(), json!(container));
    let mut endpoint = match body.remove("EndpointConfig") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    set_opt(&mut endpoint, "Aliases", p.aliases.clone().map(Value::Array));
    set_opt(&mut endpoint, "Links", p.links.clone().map(Value::Array));
    set_opt(&mut endpoint, "DriverOpts", p.driver_opts.clone().map(Value::Object));
    if p.ipv4_address.is_some() || p.ipv6_address.is_some() {
        let mut ipam = Map::new();
        set_opt(&mut ipam, "IPv4Address", p.ipv4_address.clone().map(Value::String));
        set_opt(&mut ipam, "IPv6Address", p.ipv6_address.clone().map(Value::String));
        endpoint.insert("IPAMConfig".into(), Value::Object(ipam));
    }
    if !endpoint.is_empty() {
        body.insert("EndpointConfig".into(), Value::Object(endpoint));
    }
    post(npath(id, "/connect")).json(&Value::Object(body)).send_ok()?;
    Ok(Output::one(format!("Connected {container} to {id}"), json!({"network": id, "container": container})))
}

fn disconnect(p: Disconnect) -> Result<Output> {
    let (id, container) = (p.id.as_str(), p.container.as_str());
    post(npath(id, "/disconnect")).json(&json!({"Container": container, "Force": p.force})).send_ok()?;
    Ok(Output::one(format!("Disconnected {container} from {id}"), json!({"network": id, "container": container})))
}

fn prune(p: Prune) -> Result<Output> {
    let v = post("/networks/prune").query_json("filters", Filters::as_query(&p.filters)).json_ok()?;
    Ok(Output::pruned(v, "NetworksDeleted", "unused networks"))
}
