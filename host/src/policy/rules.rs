//! `[tenant.engine_policy]`: what a tenant may put in request bodies. The default profile is
//! safe: no privileges, no host namespaces, no host paths, no devices, forced resource caps.
//! Every refusal names the field that caused it.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::Globs;

/// A tenant's engine policy. Unset keys take the safe default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnginePolicy {
    /// `HostConfig.Privileged`, exec `Privileged`.
    pub privileged: bool,
    /// Capabilities `CapAdd` may name (e.g. `["NET_ADMIN"]`); `ALL` only if listed.
    pub cap_add: Globs,
    /// `Devices`, `DeviceRequests`, `DeviceCgroupRules`.
    pub devices: bool,
    /// `host` Pid/Ipc/Network/UTS/Userns/Cgroupns modes.
    pub host_namespaces: bool,
    /// `SecurityOpt` values allowed besides `no-new-privileges`.
    pub security_opt: Globs,
    /// `Sysctls`.
    pub sysctls: bool,
    /// `Runtime` names allowed (besides the default).
    pub runtimes: Globs,
    /// `CgroupParent`, `Cgroup`.
    pub cgroup_parent: bool,
    /// Overrides of `MaskedPaths` / `ReadonlyPaths`.
    pub unmask_paths: bool,
    /// Host directories bind mounts may come from (the engine's socket never).
    pub host_paths: Vec<String>,
    /// Images a tenant may run although they carry no scope label (base images), as globs.
    pub images: Globs,
    /// The engine's shared default bridge network (containers of all tenants meet there).
    pub default_bridge: bool,
    /// Log drivers allowed (`LogConfig.Type`).
    pub log_drivers: Globs,
    /// Volume drivers allowed.
    pub volume_drivers: Globs,
    /// Any `DriverOpts` on volumes (otherwise only a tmpfs `local` volume).
    pub volume_driver_opts: bool,
    /// Network drivers allowed.
    pub network_drivers: Globs,
    /// Driver `Options`, IPAM drivers and `ConfigFrom` on networks.
    pub network_driver_opts: bool,
    /// Registries (globs) the tenant may pull from, push to and get credentials for.
    pub registries: Globs,
    /// `POST /build` (a Dockerfile can `FROM` any local image) and `remote` contexts.
    pub build: bool,
    /// `POST /images/load` (archives name their own tags, and carry no scope label).
    pub image_load: bool,
    /// Memory per container, MiB: injected when absent, capped when above. 0: no cap.
    pub memory_mb: u64,
    /// Pids per container: injected when absent, capped when above. 0: no cap.
    pub pids_limit: i64,
    /// CPUs per container: injected when absent, capped when above. 0: no cap.
    pub cpus: f64,
    /// Adds `no-new-privileges` to every container.
    pub no_new_privileges: bool,
    /// A label-scoped tenant's containers (all states), networks and volumes on one engine,
    /// and replicas of one service. 0: no cap.
    pub max_containers: u32,
    pub max_networks: u32,
    pub max_volumes: u32,
    pub max_replicas: u64,
    /// `max-size` forced on json-file/local logs, e.g. "10m". Empty: none.
    pub log_max_size: String,
    /// Set only by [`EnginePolicy::unrestricted`]: bind mounts are not checked at all.
    #[serde(skip)]
    pub open: bool,
}

impl Default for EnginePolicy {
    fn default() -> Self {
        EnginePolicy {
            privileged: false,
            cap_add: Globs::none(),
            devices: false,
            host_namespaces: false,
            security_opt: Globs::none(),
            sysctls: false,
            runtimes: Globs::none(),
            cgroup_parent: false,
            unmask_paths: false,
            host_paths: Vec::new(),
            images: Globs::none(),
            default_bridge: false,
            log_drivers: Globs::from(&["json-file", "local", "none"][..]),
            volume_drivers: Globs::from(&["local"][..]),
            volume_driver_opts: false,
            network_drivers: Globs::from(&["bridge"][..]),
            network_driver_opts: false,
            registries: Globs::none(),
            build: false,
            image_load: false,
            memory_mb: 512,
            pids_limit: 512,
            cpus: 1.0,
            no_new_privileges: true,
            log_max_size: "10m".into(),
            max_containers: 64,
            max_networks: 16,
            max_volumes: 32,
            max_replicas: 16,
            open: false,
        }
    }
}

impl EnginePolicy {
    /// Everything allowed, nothing forced: tenants without a label scope or an
    /// `[tenant.engine_policy]` table, and the CLI without `--policy`.
    pub fn unrestricted() -> Self {
        EnginePolicy {
            privileged: true,
            cap_add: Globs::any(),
            devices: true,
            host_namespaces: true,
            security_opt: Globs::any(),
            sysctls: true,
            runtimes: Globs::any(),
            cgroup_parent: true,
            unmask_paths: true,
            host_paths: vec!["/".into()],
            images: Globs::any(),
            default_bridge: true,
            log_drivers: Globs::any(),
            volume_drivers: Globs::any(),
            volume_driver_opts: true,
            network_drivers: Globs::any(),
            network_driver_opts: true,
            registries: Globs::any(),
            build: true,
            image_load: true,
            memory_mb: 0,
            pids_limit: 0,
            cpus: 0.0,
            no_new_privileges: false,
            log_max_size: String::new(),
            max_containers: 0,
            max_networks: 0,
            max_volumes: 0,
            max_replicas: 0,
            open: true,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        for p in &self.host_paths {
            let bare = p.strip_suffix(":ro").unwrap_or(p);
            if !bare.starts_with('/') || bare.split('/').any(|s| s == ".." || s == ".") {
                return Err(format!("host_paths: \"{p}\" must be an absolute path without . or .. (and an optional :ro)"));
            }
        }
        let listed: Vec<HostPath> = self.host_paths.iter().map(|p| HostPath::parse(p)).collect();
        for outer in listed.iter().filter(|o| !o.read_only) {
            if let Some(inner) = listed.iter().find(|i| i.path != outer.path && under(&i.path, &outer.path)) {
                return Err(format!(
                    "host_paths: \"{}\" lies inside \"{}\", which a container could write through to replace it with a symlink (list the outer one with :ro, or neither)",
                    inner.path, outer.path
                ));
            }
        }
        if !(self.cpus >= 0.0 && self.cpus.is_finite()) || self.pids_limit < 0 {
            return Err("cpus and pids_limit must be zero or positive".into());
        }
        if !self.log_max_size.is_empty() && parse_size(&self.log_max_size).is_none() {
            return Err(format!("log_max_size: \"{}\" is not a size like 10m", self.log_max_size));
        }
        Ok(())
    }

    /// Whether `CapAdd` may name `cap` (`net_admin`, `CAP_NET_ADMIN`: one capability).
    fn cap_allowed(&self, cap: &str) -> bool {
        let c = cap.to_ascii_uppercase();
        self.cap_add.is_match(c.strip_prefix("CAP_").unwrap_or(&c))
    }

    pub fn registry_allowed(&self, registry: &str) -> bool {
        self.registries.is_match(registry)
    }

    /// Whether `image` is a base image of the allowlist, however it is spelled: the globs are
    /// matched against the reference as the engine normalises it, in the docker CLI's form
    /// (`busybox:latest`) and in full (`docker.io/library/busybox:latest`).
    pub fn image_allowlisted(&self, image: &str) -> bool {
        match super::reference::Reference::parse(image) {
            Ok(r) => {
                let bare = (r.tag.is_none() && r.digest.is_none()).then(|| r.familiar_name());
                r.with_default_tag().spellings().iter().chain(bare.as_ref()).any(|s| self.images.is_match(s))
            }
            Err(_) => false,
        }
    }

    /// Whether `source` (a host path) may be bind-mounted (`read_only`: the bind is). Only a
    /// listed path itself may be, never a path below it: a tenant that can write into a
    /// bound directory could turn a directory inside it into a symlink between the check and
    /// the engine's mount. The engine's socket, and any directory holding it, never may.
    pub fn host_path_allowed(&self, source: &str, engine_socket: Option<&str>, read_only: bool) -> Result<(), String> {
        if self.open {
            return Ok(());
        }
        let clean = clean_path(source).ok_or_else(|| format!("'{source}' must be an absolute path without . or .."))?;
        // Symlinks resolve on the engine's host; where that is this host, check the target too.
        let real = std::fs::canonicalize(&clean).ok().map(|r| r.to_string_lossy().into_owned());
        let sockets = ["/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock"];
        for c in std::iter::once(&clean).chain(real.as_ref()) {
            for sock in sockets.iter().copied().chain(engine_socket) {
                if under(sock, c) {
                    return Err(format!("'{source}' exposes the engine's socket {sock}"));
                }
            }
        }
        let listed: Vec<HostPath> = self.host_paths.iter().map(|p| HostPath::parse(p)).collect();
        let Some(entry) = listed.iter().find(|h| h.path == clean) else {
            return Err(format!(
                "'{source}' is not one of the allowed host paths ({}); only a listed path itself may be bound",
                if listed.is_empty() { "none are allowed".to_string() } else { self.host_paths.join(", ") }
            ));
        };
        if entry.read_only && !read_only {
            return Err(format!("'{source}' may only be bound read-only"));
        }
        if let Some(real) = real.filter(|r| *r != clean) {
            return Err(format!("'{source}' leads to {real} through a symlink"));
        }
        Ok(())
    }

    /// The binds of a container the engine holds (`HostConfig` of an inspect), checked again
    /// before it starts: what a path names on the host can change after the create.
    pub fn recheck_binds(&self, hc: &Value, engine_socket: Option<&str>) -> Result<(), String> {
        for b in strings(hc.get("Binds"), "HostConfig.Binds")? {
            if let Some((src, read_only)) = bind_source(b) {
                if src.starts_with('/') {
                    self.host_path_allowed(src, engine_socket, read_only).map_err(|e| denied("HostConfig.Binds", e))?;
                }
            }
        }
        for m in hc.get("Mounts").and_then(Value::as_array).into_iter().flatten() {
            if m.get("Type").and_then(Value::as_str) == Some("bind") {
                let src = m.get("Source").and_then(Value::as_str).unwrap_or("");
                let ro = m.get("ReadOnly").and_then(Value::as_bool).unwrap_or(false);
                self.host_path_allowed(src, engine_socket, ro).map_err(|e| denied("HostConfig.Mounts", e))?;
            }
        }
        Ok(())
    }
}

/// An entry of `host_paths`: `/srv/red`, or `/srv/red:ro` (read-only binds only).
struct HostPath {
    path: String,
    read_only: bool,
}

impl HostPath {
    fn parse(entry: &str) -> HostPath {
        let (p, read_only) = match entry.strip_suffix(":ro") {
            Some(p) => (p, true),
            None => (entry, false),
        };
        HostPath { path: clean_path(p).unwrap_or_else(|| p.to_string()), read_only }
    }
}

/// `src:dst[:opts]` → (src, read-only); `None` for an anonymous volume (`/dst`).
fn bind_source(b: &str) -> Option<(&str, bool)> {
    let mut parts = b.splitn(3, ':');
    let src = parts.next().unwrap_or("");
    parts.next()?;
    let ro = parts.next().is_some_and(|o| o.split(',').any(|x| x == "ro"));
    Some((src, ro))
}

/// Replica counts a service `Mode` asks for: (field, count).
fn obj_mode(mode: Value) -> Vec<(&'static str, u64)> {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let mut out = vec![("Mode.Replicated.Replicas", n(&mode["Replicated"]["Replicas"]))];
    out.push(("Mode.ReplicatedJob.MaxConcurrent", n(&mode["ReplicatedJob"]["MaxConcurrent"])));
    out.push(("Mode.ReplicatedJob.TotalCompletions", n(&mode["ReplicatedJob"]["TotalCompletions"])));
    out
}

/// `path` equals `dir` or lies below it (component-wise).
fn under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    dir.is_empty() || path == dir || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

fn clean_path(p: &str) -> Option<String> {
    if !p.starts_with('/') {
        return None;
    }
    let mut parts = Vec::new();
    for s in p.split('/') {
        match s {
            "" | "." => {}
            ".." => return None,
            s => parts.push(s),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// `10m`, `1g`, `512k`, `100` → bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.trim_end_matches('b');
    let (num, mul) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}

/// Objects a body refers to, which the gate must find in the tenant's scope.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct References {
    /// (field, container name or id)
    pub containers: Vec<(String, String)>,
    /// (field, volume name)
    pub volumes: Vec<(String, String)>,
    /// (field, network name or id)
    pub networks: Vec<(String, String)>,
    /// (field, image reference)
    pub images: Vec<(String, String)>,
    /// (field, secret id or name): services only
    pub secrets: Vec<(String, String)>,
    /// (field, config id or name): services only
    pub configs: Vec<(String, String)>,
    /// Safe defaults the gate applied where the request was silent: "field: value (why)".
    pub applied: Vec<String>,
}

fn denied(field: &str, why: impl std::fmt::Display) -> String {
    format!("{field}: {why}")
}

fn nonempty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(_)) => true,
    }
}

fn strings<'a>(v: Option<&'a Value>, field: &str) -> Result<Vec<&'a str>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(|x| x.as_str().ok_or_else(|| denied(field, "must be a list of strings"))).collect(),
        Some(_) => Err(denied(field, "must be a list of strings")),
    }
}

/// The `HostConfig` modes that can name the host's namespace (or another container's).
const NAMESPACE_MODES: [&str; 5] = ["PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode"];

/// `no-new-privileges`, `no-new-privileges:true` or `no-new-privileges=true`.
fn is_no_new_privileges(opt: &str) -> bool {
    matches!(opt.replace('=', ":").as_str(), "no-new-privileges" | "no-new-privileges:true")
}

/// `container:<x>` → `x`.
fn container_ref(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:")
}

impl EnginePolicy {
    /// Checks and rewrites a `POST /containers/create` body. Returns what it references.
    pub fn container_create(&self, body: &mut Value, engine_socket: Option<&str>) -> Result<References, String> {
        let obj = body.as_object_mut().ok_or("the container config must be a JSON object")?;
        let mut refs = References::default();
        if let Some(img) = obj.get("Image").and_then(Value::as_str) {
            refs.images.push(("Image".into(), img.to_string()));
        }
        // One network joined by name and no NetworkMode: the engine's reading (and the docker
        // CLI's `--network`) is that network, not the default bridge.
        let joined: Vec<String> = obj
            .get("NetworkingConfig")
            .and_then(|n| n.get("EndpointsConfig"))
            .and_then(Value::as_object)
            .map(|e| e.keys().cloned().collect())
            .unwrap_or_default();
        let hc = obj.entry("HostConfig").or_insert_with(|| json!({}));
        if hc.is_null() {
            *hc = json!({});
        }
        let hc = hc.as_object_mut().ok_or("HostConfig must be a JSON object")?;
        if let [only] = joined.as_slice() {
            if hc.get("NetworkMode").and_then(Value::as_str).is_none_or(str::is_empty) {
                hc.insert("NetworkMode".into(), json!(only));
            }
        }
        self.host_config(hc, "HostConfig", &mut refs, engine_socket, true)?;
        // Networks joined at create time.
        if let Some(eps) = obj.get("NetworkingConfig").and_then(|n| n.get("EndpointsConfig")).and_then(Value::as_object) {
            for name in eps.keys() {
                self.network_name("NetworkingConfig.EndpointsConfig", name, &mut refs)?;
            }
        }
        Ok(refs)
    }

    /// Caps `max-size` in a log driver's options, `driver[key]` (a container's
    /// `LogConfig.Config`, a service's `LogDriver.Options`), at `log_max_size`.
    fn cap_log_size(&self, driver: &mut Value, key: &str) {
        let cap = parse_size(&self.log_max_size).unwrap_or(u64::MAX);
        let given = driver.get(key).and_then(|o| o.get("max-size")).and_then(Value::as_str).and_then(parse_size);
        if given.is_none_or(|g| g > cap) {
            if !driver.get(key).is_some_and(Value::is_object) {
                driver[key] = json!({});
            }
            driver[key]["max-size"] = json!(self.log_max_size);
        }
    }

    fn network_name(&self, field: &str, name: &str, refs: &mut References) -> Result<(), String> {
        match name {
            "none" => Ok(()),
            "" | "default" | "bridge" if self.default_bridge => Ok(()),
            "" | "default" | "bridge" => Err(denied(field, "the shared default bridge is not allowed (use a network of your own, or none)")),
            "host" if self.host_namespaces => Ok(()),
            "host" => Err(denied(field, "the host network namespace is not allowed")),
            n => {
                if let Some(c) = container_ref(n) {
                    refs.containers.push((field.into(), c.to_string()));
                } else {
                    refs.networks.push((field.into(), n.to_string()));
                }
                Ok(())
            }
        }
    }

    fn mode(&self, hc: &Map<String, Value>, key: &str, refs: &mut References) -> Result<(), String> {
        let field = format!("HostConfig.{key}");
        let Some(v) = hc.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()) else { return Ok(()) };
        if v == "host" && !self.host_namespaces {
            return Err(denied(&field, "the host namespace is not allowed"));
        }
        if let Some(c) = container_ref(v) {
            refs.containers.push((field, c.to_string()));
        }
        Ok(())
    }

    /// The `HostConfig` of a create (`create` true) or the resources of an update, field by
    /// field: privileges, namespaces and the network, mounts, logging, then the forced caps and
    /// defaults.
    fn host_config(&self, hc: &mut Map<String, Value>, at: &str, refs: &mut References, engine_socket: Option<&str>, create: bool) -> Result<(), String> {
        let has_nnp = self.privileges(hc, at)?;
        self.namespaces(hc, at, refs, create)?;
        self.mounts(hc, at, refs, engine_socket)?;
        self.log_driver(hc, at)?;
        self.force_resources(hc, at, create)?;
        if create {
            self.force_defaults(hc, has_nnp);
        }
        Ok(())
    }

    /// Privileges, capabilities, devices, security options, sysctls, runtimes, cgroups, masked
    /// paths and the OOM killer; whether no-new-privileges is already asked for.
    fn privileges(&self, hc: &Map<String, Value>, at: &str) -> Result<bool, String> {
        let f = |k: &str| format!("{at}.{k}");
        if hc.get("Privileged").and_then(Value::as_bool) == Some(true) && !self.privileged {
            return Err(denied(&f("Privileged"), "privileged containers are not allowed"));
        }
        for cap in strings(hc.get("CapAdd"), &f("CapAdd"))? {
            if !self.cap_allowed(cap) {
                return Err(denied(&f("CapAdd"), format!("capability {cap} is not allowed")));
            }
        }
        if nonempty(hc.get("Capabilities")) && !self.cap_add.patterns().iter().any(|a| a == "*") {
            return Err(denied(&f("Capabilities"), "setting the full capability set is not allowed"));
        }
        for k in ["Devices", "DeviceRequests", "DeviceCgroupRules"] {
            if nonempty(hc.get(k)) && !self.devices {
                return Err(denied(&f(k), "host devices are not allowed"));
            }
        }
        let mut has_nnp = false;
        for opt in strings(hc.get("SecurityOpt"), &f("SecurityOpt"))? {
            if is_no_new_privileges(opt) {
                has_nnp = true;
                continue;
            }
            if !self.security_opt.is_match(opt) {
                return Err(denied(&f("SecurityOpt"), format!("'{opt}' is not allowed")));
            }
        }
        if nonempty(hc.get("Sysctls")) && !self.sysctls {
            return Err(denied(&f("Sysctls"), "sysctls are not allowed"));
        }
        if let Some(rt) = hc.get("Runtime").and_then(Value::as_str).filter(|r| !r.is_empty() && *r != "runc") {
            if !self.runtimes.is_match(rt) {
                return Err(denied(&f("Runtime"), format!("runtime '{rt}' is not allowed")));
            }
        }
        for k in ["CgroupParent", "Cgroup"] {
            if nonempty(hc.get(k)) && !self.cgroup_parent {
                return Err(denied(&f(k), "choosing the cgroup is not allowed"));
            }
        }
        for k in ["MaskedPaths", "ReadonlyPaths"] {
            if hc.get(k).is_some_and(|v| !v.is_null()) && !self.unmask_paths {
                return Err(denied(&f(k), "overriding the masked and read-only paths is not allowed"));
            }
        }
        if hc.get("OomKillDisable").and_then(Value::as_bool) == Some(true) && self.memory_mb > 0 {
            return Err(denied(&f("OomKillDisable"), "disabling the OOM killer is not allowed"));
        }
        Ok(has_nnp)
    }

    /// Namespace modes (and the containers they join), the cgroup namespace and the network.
    fn namespaces(&self, hc: &mut Map<String, Value>, at: &str, refs: &mut References, create: bool) -> Result<(), String> {
        let f = |k: &str| format!("{at}.{k}");
        for k in NAMESPACE_MODES {
            self.mode(hc, k, refs)?;
        }
        // The engine's own default may be the host's cgroup namespace (cgroup v1).
        if create && !self.host_namespaces && hc.get("CgroupnsMode").and_then(Value::as_str).is_none_or(str::is_empty) {
            hc.insert("CgroupnsMode".into(), json!("private"));
        }
        match hc.get("NetworkMode").and_then(Value::as_str).filter(|n| !n.is_empty()).map(str::to_string) {
            Some(nm) => self.network_name(&f("NetworkMode"), &nm, refs)?,
            // A create that names no network gets the safe one, not a refusal.
            None if create && !self.default_bridge => {
                hc.insert("NetworkMode".into(), json!("none"));
                refs.applied.push(format!("{}: none (the shared default bridge is not allowed; give a network of your own to join one)", f("NetworkMode")));
            }
            None => {}
        }
        Ok(())
    }

    /// Bind mounts of host paths, volumes and their drivers, and the containers whose volumes
    /// or links a create takes.
    fn mounts(&self, hc: &Map<String, Value>, at: &str, refs: &mut References, engine_socket: Option<&str>) -> Result<(), String> {
        let f = |k: &str| format!("{at}.{k}");
        if let Some(d) = hc.get("VolumeDriver").and_then(Value::as_str).filter(|d| !d.is_empty()) {
            if !self.volume_drivers.is_match(d) {
                return Err(denied(&f("VolumeDriver"), format!("volume driver '{d}' is not allowed")));
            }
        }
        for b in strings(hc.get("Binds"), &f("Binds"))? {
            let Some((src, read_only)) = bind_source(b) else { continue }; // "/path": an anonymous volume
            if src.starts_with('/') {
                self.host_path_allowed(src, engine_socket, read_only).map_err(|e| denied(&f("Binds"), e))?;
            } else {
                refs.volumes.push((f("Binds"), src.to_string()));
            }
        }
        if let Some(mounts) = hc.get("Mounts").filter(|m| !m.is_null()) {
            let mounts = mounts.as_array().ok_or_else(|| denied(&f("Mounts"), "must be a list"))?;
            for m in mounts {
                let ty = m.get("Type").and_then(Value::as_str).unwrap_or("volume");
                let src = m.get("Source").and_then(Value::as_str).unwrap_or("");
                match ty {
                    "bind" => {
                        let ro = m.get("ReadOnly").and_then(Value::as_bool).unwrap_or(false);
                        self.host_path_allowed(src, engine_socket, ro).map_err(|e| denied(&f("Mounts"), e))?
                    }
                    "volume" => {
                        if !src.is_empty() {
                            refs.volumes.push((f("Mounts"), src.to_string()));
                        }
                        if let Some(dc) = m.get("VolumeOptions").and_then(|o| o.get("DriverConfig")).filter(|d| !d.is_null()) {
                            let driver = dc.get("Name").and_then(Value::as_str).unwrap_or("local");
                            self.volume_driver(&f("Mounts.VolumeOptions.DriverConfig"), driver, dc.get("Options"))?;
                        }
                    }
                    "tmpfs" => {}
                    other => return Err(denied(&f("Mounts"), format!("mount type '{other}' is not allowed"))),
                }
            }
        }
        for v in strings(hc.get("VolumesFrom"), &f("VolumesFrom"))? {
            let name = v.split(':').next().unwrap_or(v);
            refs.containers.push((f("VolumesFrom"), name.to_string()));
        }
        for l in strings(hc.get("Links"), &f("Links"))? {
            let name = l.split(':').next().unwrap_or(l).trim_start_matches('/');
            refs.containers.push((f("Links"), name.to_string()));
        }
        Ok(())
    }

    fn log_driver(&self, hc: &Map<String, Value>, at: &str) -> Result<(), String> {
        let f = |k: &str| format!("{at}.{k}");
        if let Some(lc) = hc.get("LogConfig").and_then(Value::as_object) {
            let ty = lc.get("Type").and_then(Value::as_str).unwrap_or("");
            if !ty.is_empty() && !self.log_drivers.is_match(ty) {
                return Err(denied(&f("LogConfig.Type"), format!("log driver '{ty}' is not allowed")));
            }
        }
        Ok(())
    }

    /// A create's defaults: no-new-privileges and the log size cap.
    fn force_defaults(&self, hc: &mut Map<String, Value>, has_nnp: bool) {
        if self.no_new_privileges && !has_nnp {
            let opts = hc.entry("SecurityOpt").or_insert_with(|| json!([]));
            if !opts.is_array() {
                *opts = json!([]);
            }
            opts.as_array_mut().expect("array").push(json!("no-new-privileges"));
        }
        if !self.log_max_size.is_empty() {
            let lc = hc.entry("LogConfig").or_insert_with(|| json!({}));
            if !lc.is_object() {
                *lc = json!({});
            }
            let ty = lc.get("Type").and_then(Value::as_str).unwrap_or("").to_string();
            if ty.is_empty() || ty == "json-file" || ty == "local" {
                self.cap_log_size(lc, "Config");
            }
        }
    }

    /// Memory, pids and CPUs: injected when absent (creates), capped when above; and every
    /// other resource field that would lift, bypass or outweigh those caps, bounded as the
    /// engine applies it (a negative or zero value often means "unlimited" there).
    fn force_resources(&self, hc: &mut Map<String, Value>, at: &str, create: bool) -> Result<(), String> {
        let f = |k: &str| format!("{at}.{k}");
        let int = |hc: &Map<String, Value>, k: &str| hc.get(k).and_then(Value::as_i64);
        let capped = self.memory_mb > 0 || self.pids_limit > 0 || self.cpus > 0.0;
        if self.memory_mb > 0 {
            let cap = (self.memory_mb << 20) as i64;
            // -1 and other negatives mean unlimited; 0 on an update leaves the limit as it is.
            let given = int(hc, "Memory");
            if given.is_some_and(|g| g < 0 || g > cap) || (create && given.is_none_or(|g| g <= 0)) {
                hc.insert("Memory".into(), json!(cap));
            }
            let swap = int(hc, "MemorySwap").unwrap_or(0);
            if swap < 0 || swap > cap.saturating_mul(2) {
                hc.insert("MemorySwap".into(), json!(cap.saturating_mul(2)));
            }
            for k in ["MemoryReservation", "ShmSize"] {
                if let Some(v) = int(hc, k) {
                    if v < 0 || v > cap {
                        return Err(denied(&f(k), format!("{v} is outside 0..={cap} (this tenant's memory cap)")));
                    }
                }
            }
            for k in ["KernelMemory", "KernelMemoryTCP"] {
                if int(hc, k).is_some_and(|v| v != 0) {
                    return Err(denied(&f(k), "kernel memory limits are not allowed (the memory cap covers them)"));
                }
            }
        }
        if self.pids_limit > 0 {
            // null/absent leaves an update's limit unchanged; 0 and -1 mean unlimited.
            match hc.get("PidsLimit").and_then(Value::as_i64) {
                Some(p) if p > 0 && p <= self.pids_limit => {}
                None if !create => {}
                _ => {
                    hc.insert("PidsLimit".into(), json!(self.pids_limit));
                }
            }
        }
        if self.cpus > 0.0 {
            let cap = (self.cpus * 1e9) as i64;
            let nano = int(hc, "NanoCpus").unwrap_or(0);
            let quota = int(hc, "CpuQuota").unwrap_or(0);
            let period = int(hc, "CpuPeriod").unwrap_or(0);
            // The engine applies CpuQuota and CpuPeriod after NanoCpus: -1 lifts the cap.
            if quota < 0 || period < 0 {
                return Err(denied(&f(if quota < 0 { "CpuQuota" } else { "CpuPeriod" }), "a negative value removes the CPU cap"));
            }
            if period != 0 && !(1000..=1_000_000).contains(&period) {
                return Err(denied(&f("CpuPeriod"), format!("{period} is outside 1000..=1000000 µs")));
            }
            if period != 0 && quota == 0 {
                return Err(denied(&f("CpuPeriod"), "a CPU period needs a CpuQuota beside it (or give NanoCpus)"));
            }
            if quota > 0 {
                let p = if period > 0 { period } else { 100_000 };
                if quota as f64 / p as f64 > self.cpus {
                    return Err(format!("{at}.CpuQuota: {:.2} CPUs is above this tenant's cap of {}", quota as f64 / p as f64, self.cpus));
                }
                if nano != 0 {
                    return Err(denied(&f("NanoCpus"), "give either NanoCpus or CpuQuota, not both"));
                }
            } else if nano < 0 || nano > cap || (create && nano == 0) {
                hc.insert("NanoCpus".into(), json!(cap));
            }
            for k in ["CpuRealtimePeriod", "CpuRealtimeRuntime"] {
                if int(hc, k).is_some_and(|v| v != 0) {
                    return Err(denied(&f(k), "real-time CPU scheduling is not allowed"));
                }
            }
            // Relative weight against every other container on the engine: at most the default.
            if let Some(v) = int(hc, "CpuShares").filter(|v| *v != 0) {
                if !(2..=1024).contains(&v) {
                    return Err(denied(&f("CpuShares"), format!("{v} is outside 2..=1024 (1024 is the default weight)")));
                }
            }
        }
        if capped {
            for k in ["CpuCount", "CpuPercent", "IOMaximumBandwidth", "IOMaximumIOps"] {
                if int(hc, k).is_some_and(|v| v != 0) {
                    return Err(denied(&f(k), "Windows-only resource fields are not allowed"));
                }
            }
            if let Some(v) = int(hc, "BlkioWeight").filter(|v| *v != 0) {
                if !(10..=500).contains(&v) {
                    return Err(denied(&f("BlkioWeight"), format!("{v} is outside 10..=500 (500 is the default weight)")));
                }
            }
            for k in ["BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps"] {
                if nonempty(hc.get(k)) && !self.devices {
                    return Err(denied(&f(k), "per-device I/O settings name host devices, which are not allowed"));
                }
            }
            // Below zero, the container's processes outlive the host's under memory pressure.
            if let Some(v) = int(hc, "OomScoreAdj").filter(|v| *v != 0) {
                if !(0..=1000).contains(&v) {
                    return Err(denied(&f("OomScoreAdj"), format!("{v} is outside 0..=1000")));
                }
            }
            if nonempty(hc.get("StorageOpt")) {
                return Err(denied(&f("StorageOpt"), "storage driver options are not allowed"));
            }
            if nonempty(hc.get("Annotations")) {
                return Err(denied(&f("Annotations"), "OCI runtime annotations are not allowed"));
            }
            self.ulimits(hc, &f("Ulimits"))?;
        }
        Ok(())
    }

    /// Ulimits a tenant may set: only those that bound its own processes, within bounds.
    fn ulimits(&self, hc: &Map<String, Value>, field: &str) -> Result<(), String> {
        const ALLOWED: [(&str, i64); 8] = [
            ("nofile", 1 << 20),
            ("nproc", 1 << 20),
            ("core", 0),
            ("stack", 64 << 20),
            ("fsize", i64::MAX),
            ("cpu", i64::MAX),
            ("locks", 1 << 20),
            ("sigpending", 1 << 16),
        ];
        for u in hc.get("Ulimits").and_then(Value::as_array).into_iter().flatten() {
            let name = u.get("Name").and_then(Value::as_str).unwrap_or("");
            let Some((_, max)) = ALLOWED.iter().find(|(n, _)| *n == name) else {
                return Err(denied(field, format!("ulimit '{name}' is not allowed (allowed: nofile, nproc, core, stack, fsize, cpu, locks, sigpending)")));
            };
            for k in ["Soft", "Hard"] {
                let v = u.get(k).and_then(Value::as_i64).unwrap_or(0);
                if v < 0 || v > *max {
                    return Err(denied(field, format!("{name} {k} {v} is outside 0..={max}")));
                }
            }
        }
        Ok(())
    }

    /// `POST /containers/{id}/update`: the same checks on the resources it changes.
    /// A ServiceSpec (service create and update): its container spec passes the rules of a
    /// container create, mapped field by field; its task resources get the forced caps; its
    /// networks, secrets, configs, volumes and image are returned as references.
    pub fn service_spec(&self, spec: &mut Value, engine_socket: Option<&str>) -> Result<References, String> {
        let spec_mode = spec.get("Mode").cloned().unwrap_or(Value::Null);
        let obj = spec.as_object_mut().ok_or("the service spec must be a JSON object")?;
        let mut refs = References::default();
        for n in obj.get("Networks").and_then(Value::as_array).into_iter().flatten() {
            let target = n.get("Target").and_then(Value::as_str).unwrap_or("");
            self.network_name("Networks", target, &mut refs)?;
        }
        let tt = obj.entry("TaskTemplate").or_insert_with(|| json!({}));
        if tt.is_null() {
            *tt = json!({});
        }
        let tt = tt.as_object_mut().ok_or("TaskTemplate must be a JSON object")?;
        if self.max_replicas > 0 {
            let mode = obj_mode(spec_mode);
            for (field, n) in mode {
                if n > self.max_replicas {
                    return Err(denied(field, format!("{n} replicas is above this tenant's cap of {}", self.max_replicas)));
                }
            }
        }
        let runtime = tt.get("Runtime").and_then(Value::as_str).unwrap_or("");
        if !(runtime.is_empty() || runtime == "container" || self.privileged) {
            return Err(denied("TaskTemplate.Runtime", format!("'{runtime}' tasks are not allowed (plugin tasks install engine plugins)")));
        }
        for k in ["PluginSpec", "NetworkAttachmentSpec"] {
            if nonempty(tt.get(k)) && !self.privileged {
                return Err(denied(&format!("TaskTemplate.{k}"), "only container tasks are allowed"));
            }
        }
        for n in tt.get("Networks").and_then(Value::as_array).into_iter().flatten() {
            let target = n.get("Target").and_then(Value::as_str).unwrap_or("");
            self.network_name("TaskTemplate.Networks", target, &mut refs)?;
        }
        if let Some(ld) = tt.get("LogDriver").filter(|l| !l.is_null()) {
            let name = ld.get("Name").and_then(Value::as_str).unwrap_or("");
            if !name.is_empty() && !self.log_drivers.is_match(name) {
                return Err(denied("TaskTemplate.LogDriver.Name", format!("log driver '{name}' is not allowed")));
            }
        }
        if !self.log_max_size.is_empty() {
            let ld = tt.entry("LogDriver").or_insert_with(|| json!({"Name": "json-file"}));
            if !ld.is_object() {
                *ld = json!({"Name": "json-file"});
            }
            let name = ld.get("Name").and_then(Value::as_str).unwrap_or("").to_string();
            if name.is_empty() || name == "json-file" || name == "local" {
                if name.is_empty() {
                    ld["Name"] = json!("json-file");
                }
                self.cap_log_size(ld, "Options");
            }
        }
        self.task_resources(tt)?;
        let cs = tt.entry("ContainerSpec").or_insert_with(|| json!({}));
        if cs.is_null() {
            *cs = json!({});
        }
        let cs = cs.as_object_mut().ok_or("TaskTemplate.ContainerSpec must be a JSON object")?;
        self.container_spec(cs, &mut refs, engine_socket)?;
        Ok(refs)
    }

    /// A task's resource limits: the same caps as a container's.
    fn task_resources(&self, tt: &mut Map<String, Value>) -> Result<(), String> {
        let res = tt.entry("Resources").or_insert_with(|| json!({}));
        if !res.is_object() {
            *res = json!({});
        }
        let limits = res.as_object_mut().expect("object").entry("Limits").or_insert_with(|| json!({}));
        if !limits.is_object() {
            *limits = json!({});
        }
        let limits = limits.as_object_mut().expect("object");
        let mut hc = Map::new();
        for (from, to) in [("MemoryBytes", "Memory"), ("NanoCPUs", "NanoCpus"), ("Pids", "PidsLimit")] {
            if let Some(v) = limits.get(from) {
                hc.insert(to.into(), v.clone());
            }
        }
        self.force_resources(&mut hc, "TaskTemplate.Resources.Limits", true)?;
        for (from, to) in [("MemoryBytes", "Memory"), ("NanoCPUs", "NanoCpus"), ("Pids", "PidsLimit")] {
            if let Some(v) = hc.get(to) {
                limits.insert(from.into(), v.clone());
            }
        }
        Ok(())
    }

    /// A service's container spec, read as the `HostConfig` its task's container will get,
    /// plus its image, privileges, secrets and configs.
    fn container_spec(&self, cs: &mut Map<String, Value>, refs: &mut References, engine_socket: Option<&str>) -> Result<(), String> {
        let at = "TaskTemplate.ContainerSpec";
        if let Some(img) = cs.get("Image").and_then(Value::as_str) {
            // A digest pinned by the CLI (`image:tag@sha256:…`) is what the engine runs: the
            // image checked is the one at the digest.
            refs.images.push((format!("{at}.Image"), img.to_string()));
        }
        // The container spec, seen as the HostConfig the task's container will get.
        let mut hc = Map::new();
        for (from, to) in [("CapabilityAdd", "CapAdd"), ("Sysctls", "Sysctls"), ("Mounts", "Mounts")] {
            if let Some(v) = cs.get(from).filter(|v| !v.is_null()) {
                hc.insert(to.into(), v.clone());
            }
        }
        if let Some(p) = cs.get("Privileges").filter(|p| !p.is_null()) {
            let mut opts = Vec::new();
            if nonempty(p.get("SELinuxContext")) {
                opts.push("label:custom".to_string());
            }
            match p.get("Seccomp").and_then(|s| s.get("Mode")).and_then(Value::as_str) {
                Some("unconfined") => opts.push("seccomp:unconfined".into()),
                Some("custom") => opts.push("seccomp:custom".into()),
                _ => {}
            }
            if p.get("AppArmor").and_then(|s| s.get("Mode")).and_then(Value::as_str) == Some("disabled") {
                opts.push("apparmor:unconfined".into());
            }
            if nonempty(p.get("CredentialSpec")) {
                opts.push("credentialspec:custom".into());
            }
            for o in opts {
                if !self.security_opt.is_match(&o) {
                    return Err(denied(&format!("{at}.Privileges"), format!("'{o}' is not allowed")));
                }
            }
        }
        self.host_config(&mut hc, at, refs, engine_socket, false)?;
        for (field, list, id_key, name_key) in
            [("Secrets", &mut refs.secrets, "SecretID", "SecretName"), ("Configs", &mut refs.configs, "ConfigID", "ConfigName")]
        {
            for r in cs.get(field).and_then(Value::as_array).into_iter().flatten() {
                let id = r.get(id_key).or_else(|| r.get(name_key)).and_then(Value::as_str).unwrap_or("");
                if id.is_empty() {
                    return Err(denied(&format!("{at}.{field}"), format!("each reference needs a {id_key}")));
                }
                list.push((format!("{at}.{field}"), id.to_string()));
            }
        }
        Ok(())
    }

    pub fn container_update(&self, body: &mut Value) -> Result<(), String> {
        let obj = body.as_object_mut().ok_or("the update must be a JSON object")?;
        let mut refs = References::default();
        self.host_config(obj, "update", &mut refs, None, false)
    }

    /// The second line of defence: a container as the engine stored it (an inspect), checked
    /// against the policy independently of how its create was read. Any difference is named.
    pub fn verify_container(&self, stored: &Value, engine_socket: Option<&str>) -> Result<(), String> {
        if self.open {
            return Ok(());
        }
        let hc = &stored["HostConfig"];
        let s = |k: &str| hc[k].as_str().unwrap_or("");
        let i = |k: &str| hc[k].as_i64().unwrap_or(0);
        let stored_as = |k: &str, why: &str| Err(format!("HostConfig.{k} as stored by the engine: {why}"));
        if hc["Privileged"].as_bool() == Some(true) && !self.privileged {
            return stored_as("Privileged", "a privileged container");
        }
        for cap in hc["CapAdd"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !self.cap_allowed(cap) {
                return stored_as("CapAdd", &format!("capability {cap}"));
            }
        }
        for k in NAMESPACE_MODES.into_iter().chain(["NetworkMode"]) {
            if s(k) == "host" && !self.host_namespaces {
                return stored_as(k, "the host namespace");
            }
        }
        if matches!(s("NetworkMode"), "default" | "bridge") && !self.default_bridge {
            return stored_as("NetworkMode", "the shared default bridge");
        }
        for k in ["Devices", "DeviceRequests", "DeviceCgroupRules"] {
            if nonempty(hc.get(k)) && !self.devices {
                return stored_as(k, "host devices");
            }
        }
        self.recheck_binds(hc, engine_socket).map_err(|e| e.replacen(": ", " as stored by the engine: ", 1))?;
        if self.memory_mb > 0 && !(1..=(self.memory_mb << 20) as i64).contains(&i("Memory")) {
            return stored_as("Memory", &format!("{} is not within this tenant's cap of {} MiB", i("Memory"), self.memory_mb));
        }
        if self.pids_limit > 0 && !(1..=self.pids_limit).contains(&i("PidsLimit")) {
            return stored_as("PidsLimit", &format!("{} is not within this tenant's cap of {}", i("PidsLimit"), self.pids_limit));
        }
        if self.cpus > 0.0 {
            let (nano, quota, period) = (i("NanoCpus"), i("CpuQuota"), i("CpuPeriod"));
            let p = if period > 0 { period } else { 100_000 };
            let ok = quota >= 0
                && period >= 0
                && i("CpuRealtimeRuntime") == 0
                && if quota > 0 { quota as f64 / p as f64 <= self.cpus } else { nano > 0 && nano <= (self.cpus * 1e9) as i64 };
            if !ok {
                return stored_as("NanoCpus", &format!("NanoCpus {nano}, CpuQuota {quota}, CpuPeriod {period} lift this tenant's cap of {} CPUs", self.cpus));
            }
        }
        if self.no_new_privileges && !hc["SecurityOpt"].as_array().into_iter().flatten().filter_map(Value::as_str).any(is_no_new_privileges) {
            return stored_as("SecurityOpt", "no-new-privileges is missing");
        }
        Ok(())
    }

    /// `POST /containers/{id}/exec`.
    pub fn exec_create(&self, body: &Value) -> Result<(), String> {
        if body.get("Privileged").and_then(Value::as_bool) == Some(true) && !self.privileged {
            return Err(denied("Privileged", "privileged exec is not allowed"));
        }
        Ok(())
    }

    fn volume_driver(&self, field: &str, driver: &str, opts: Option<&Value>) -> Result<(), String> {
        if !self.volume_drivers.is_match(driver) {
            return Err(denied(field, format!("volume driver '{driver}' is not allowed")));
        }
        let Some(opts) = opts.and_then(Value::as_object).filter(|o| !o.is_empty()) else { return Ok(()) };
        if self.volume_driver_opts {
            return Ok(());
        }
        // A `local` tmpfs volume is the one shape with options that touches nothing on the host.
        let s = |k: &str| opts.get(k).and_then(Value::as_str).unwrap_or("");
        let tmpfs = driver == "local"
            && s("type") == "tmpfs"
            && s("device") == "tmpfs"
            && opts.keys().all(|k| ["type", "device", "o"].contains(&k.as_str()))
            && s("o").split(',').all(|o| {
                let k = o.split('=').next().unwrap_or("");
                ["size", "mode", "uid", "gid", "nr_inodes", ""].contains(&k)
            });
        if tmpfs {
            Ok(())
        } else {
            Err(denied(&format!("{field}.Options"), "driver options are not allowed (a local volume may bind a host path or device); only a tmpfs volume is"))
        }
    }

    /// `POST /volumes/create`.
    pub fn volume_create(&self, body: &Value) -> Result<(), String> {
        let driver = body.get("Driver").and_then(Value::as_str).filter(|d| !d.is_empty()).unwrap_or("local");
        if nonempty(body.get("ClusterVolumeSpec")) {
            return Err(denied("ClusterVolumeSpec", "cluster volumes are not allowed"));
        }
        self.volume_driver("Driver", driver, body.get("DriverOpts"))
    }

    /// `POST /networks/create`.
    pub fn network_create(&self, body: &Value) -> Result<(), String> {
        let driver = body.get("Driver").and_then(Value::as_str).filter(|d| !d.is_empty()).unwrap_or("bridge");
        if !self.network_drivers.is_match(driver) {
            return Err(denied("Driver", format!("network driver '{driver}' is not allowed")));
        }
        if self.network_driver_opts {
            return Ok(());
        }
        if nonempty(body.get("Options")) {
            return Err(denied("Options", "network driver options are not allowed"));
        }
        if nonempty(body.get("ConfigFrom")) {
            return Err(denied("ConfigFrom", "networks built from another network's config are not allowed"));
        }
        if body.get("Ingress").and_then(Value::as_bool) == Some(true) {
            return Err(denied("Ingress", "ingress networks are not allowed"));
        }
        let ipam = body.get("IPAM").and_then(|i| i.get("Driver")).and_then(Value::as_str).unwrap_or("default");
        if !ipam.is_empty() && ipam != "default" {
            return Err(denied("IPAM.Driver", format!("IPAM driver '{ipam}' is not allowed")));
        }
        if nonempty(body.get("IPAM").and_then(|i| i.get("Options"))) {
            return Err(denied("IPAM.Options", "IPAM options are not allowed"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(p: &EnginePolicy, body: Value) -> Result<(Value, References), String> {
        let mut b = body;
        let r = p.container_create(&mut b, Some("/tmp/e/docker.sock"))?;
        Ok((b, r))
    }

    #[test]
    fn host_access_is_refused_by_default() {
        let p = EnginePolicy::default();
        for (body, field) in [
            (json!({"HostConfig": {"Binds": ["/:/host"], "NetworkMode": "none"}}), "HostConfig.Binds"),
            (json!({"HostConfig": {"Mounts": [{"Type": "bind", "Source": "/etc", "Target": "/x"}], "NetworkMode": "none"}}), "HostConfig.Mounts"),
            (json!({"HostConfig": {"Privileged": true}}), "HostConfig.Privileged"),
            (json!({"HostConfig": {"CapAdd": ["SYS_ADMIN"]}}), "HostConfig.CapAdd"),
            (json!({"HostConfig": {"PidMode": "host"}}), "HostConfig.PidMode"),
            (json!({"HostConfig": {"NetworkMode": "host"}}), "HostConfig.NetworkMode"),
            (json!({"HostConfig": {"IpcMode": "host"}}), "HostConfig.IpcMode"),
            (json!({"HostConfig": {"UsernsMode": "host"}}), "HostConfig.UsernsMode"),
            (json!({"HostConfig": {"UTSMode": "host"}}), "HostConfig.UTSMode"),
            (json!({"HostConfig": {"CgroupnsMode": "host"}}), "HostConfig.CgroupnsMode"),
            (json!({"HostConfig": {"SecurityOpt": ["seccomp=unconfined"]}}), "HostConfig.SecurityOpt"),
            (json!({"HostConfig": {"SecurityOpt": ["apparmor:unconfined"]}}), "HostConfig.SecurityOpt"),
            (json!({"HostConfig": {"Devices": [{"PathOnHost": "/dev/sda"}]}}), "HostConfig.Devices"),
            (json!({"HostConfig": {"DeviceRequests": [{"Count": -1}]}}), "HostConfig.DeviceRequests"),
            (json!({"HostConfig": {"DeviceCgroupRules": ["a *:* rwm"]}}), "HostConfig.DeviceCgroupRules"),
            (json!({"HostConfig": {"Sysctls": {"kernel.x": "1"}}}), "HostConfig.Sysctls"),
            (json!({"HostConfig": {"Runtime": "evil"}}), "HostConfig.Runtime"),
            (json!({"HostConfig": {"CgroupParent": "/"}}), "HostConfig.CgroupParent"),
            (json!({"HostConfig": {"MaskedPaths": []}}), "HostConfig.MaskedPaths"),
            (json!({"HostConfig": {"ReadonlyPaths": []}}), "HostConfig.ReadonlyPaths"),
            (
                json!({"HostConfig": {"NetworkMode": "none", "Mounts": [{"Type": "volume", "Target": "/x", "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": {"type": "none", "o": "bind", "device": "/etc"}}}}]}}),
                "HostConfig.Mounts.VolumeOptions.DriverConfig.Options",
            ),
            (json!({"HostConfig": {"NetworkMode": "bridge"}}), "HostConfig.NetworkMode"),
            (json!({"HostConfig": {"NetworkMode": "none", "LogConfig": {"Type": "syslog"}}}), "HostConfig.LogConfig.Type"),
        ] {
            let mut body = body;
            if field != "HostConfig.NetworkMode" && body["HostConfig"].get("NetworkMode").is_none() {
                body["HostConfig"]["NetworkMode"] = json!("none");
            }
            let e = create(&p, body.clone()).unwrap_err();
            assert!(e.starts_with(field), "{body}: {e}");
        }
        assert!(p.exec_create(&json!({"Privileged": true})).unwrap_err().starts_with("Privileged"));
        assert!(p.volume_create(&json!({"Driver": "local", "DriverOpts": {"type": "none", "o": "bind", "device": "/etc"}})).is_err());
        assert!(p.volume_create(&json!({"Driver": "local", "DriverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=10m"}})).is_ok());
        assert!(p.volume_create(&json!({"Driver": "evil"})).is_err());
        assert!(p.network_create(&json!({"Driver": "macvlan", "Options": {"parent": "eth0"}})).is_err());
        assert!(p.network_create(&json!({"Options": {"com.docker.network.bridge.name": "docker0"}})).is_err());
        assert!(p.network_create(&json!({"Driver": "bridge", "Internal": true})).is_ok());
    }

    #[test]
    fn the_engine_socket_is_never_mounted() {
        let mut p = EnginePolicy { host_paths: vec!["/".into()], ..Default::default() };
        for src in ["/var/run/docker.sock", "/var/run", "/", "/tmp/e", "/tmp/e/docker.sock", "/tmp//e/./docker.sock"] {
            let e = create(&p, json!({"HostConfig": {"Binds": [format!("{src}:/x")], "NetworkMode": "none"}})).unwrap_err();
            assert!(e.contains("socket"), "{src}: {e}");
        }
        p.host_paths = vec!["/srv/red".into(), "/srv/ro:ro".into()];
        let bind = |b: &str| create(&p, json!({"HostConfig": {"Binds": [b], "NetworkMode": "none"}}));
        assert!(bind("/srv/red:/x").is_ok());
        assert!(bind("/srv//red/:/x").is_ok());
        assert!(bind("/srv/red/a:/x").unwrap_err().contains("only a listed path itself"), "a path below a listed one could be swapped for a symlink");
        assert!(bind("/srv/redder:/x").is_err());
        assert!(bind("/srv/red/../blue:/x").is_err());
        assert!(bind("/srv/ro:/x:ro").is_ok());
        assert!(bind("/srv/ro:/x:rw").unwrap_err().contains("read-only"));
        assert!(create(&p, json!({"HostConfig": {"NetworkMode": "none", "Mounts": [{"Type": "bind", "Source": "/srv/ro", "Target": "/x"}]}}))
            .unwrap_err()
            .contains("read-only"));
        assert!(create(
            &p,
            json!({"HostConfig": {"NetworkMode": "none", "Mounts": [{"Type": "bind", "Source": "/srv/ro", "Target": "/x", "ReadOnly": true}]}})
        )
        .is_ok());
    }

    #[test]
    fn nested_host_paths_are_refused_unless_the_outer_is_read_only() {
        let p = |paths: &[&str]| EnginePolicy { host_paths: paths.iter().map(|s| s.to_string()).collect(), ..Default::default() }.validate();
        assert!(p(&["/srv/a", "/srv/a/b"]).unwrap_err().contains("lies inside"));
        assert!(p(&["/srv/a:ro", "/srv/a/b"]).is_ok());
        assert!(p(&["/srv/a", "/srv/ab"]).is_ok());
        assert!(p(&["srv"]).is_err());
    }

    #[test]
    fn a_symlink_in_a_host_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/etc", &link).unwrap();
        let p = EnginePolicy { host_paths: vec![real.display().to_string(), link.display().to_string()], ..Default::default() };
        assert!(p.host_path_allowed(&real.display().to_string(), None, false).is_ok());
        assert!(p.host_path_allowed(&link.display().to_string(), None, false).unwrap_err().contains("through a symlink"));
        let stored = json!({"Binds": [format!("{}:/x", link.display())]});
        assert!(p.recheck_binds(&stored, None).unwrap_err().contains("through a symlink"));
    }

    #[test]
    fn network_silence_gets_none_and_a_single_joined_network_is_the_mode() {
        let p = EnginePolicy::default();
        let (b, r) = create(&p, json!({"HostConfig": {}})).unwrap();
        assert_eq!(b["HostConfig"]["NetworkMode"], "none");
        assert!(r.applied[0].starts_with("HostConfig.NetworkMode: none"));
        let (b, r) = create(&p, json!({"NetworkingConfig": {"EndpointsConfig": {"mine": {}}}})).unwrap();
        assert_eq!(b["HostConfig"]["NetworkMode"], "mine");
        assert!(r.applied.is_empty() && r.networks.iter().any(|(_, n)| n == "mine"));
    }

    #[test]
    fn caps_hold_against_values_that_lift_them() {
        let p = EnginePolicy::default();
        let hc = |v: Value| create(&p, json!({"HostConfig": v})).map(|(b, _)| b["HostConfig"].clone());
        for (v, field) in [
            (json!({"CpuQuota": -1}), "CpuQuota"),
            (json!({"CpuPeriod": -1}), "CpuPeriod"),
            (json!({"CpuPeriod": 500}), "CpuPeriod"),
            (json!({"CpuQuota": 200_000}), "CpuQuota"),
            (json!({"CpuQuota": 50_000, "NanoCpus": 1}), "NanoCpus"),
            (json!({"CpuShares": 4096}), "CpuShares"),
            (json!({"CpuShares": -2}), "CpuShares"),
            (json!({"CpuRealtimePeriod": 1000}), "CpuRealtimePeriod"),
            (json!({"OomScoreAdj": -500}), "OomScoreAdj"),
            (json!({"BlkioWeight": 1000}), "BlkioWeight"),
            (json!({"BlkioWeightDevice": [{"Path": "/dev/sda", "Weight": 1000}]}), "BlkioWeightDevice"),
            (json!({"MemoryReservation": 1i64 << 40}), "MemoryReservation"),
            (json!({"ShmSize": -1}), "ShmSize"),
            (json!({"KernelMemoryTCP": 1}), "KernelMemoryTCP"),
            (json!({"CpuCount": 8}), "CpuCount"),
            (json!({"Ulimits": [{"Name": "memlock", "Soft": -1, "Hard": -1}]}), "Ulimits"),
            (json!({"Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 1i64 << 40}]}), "Ulimits"),
            (json!({"StorageOpt": {"size": "1T"}}), "StorageOpt"),
            (json!({"Annotations": {"x": "y"}}), "Annotations"),
        ] {
            let e = hc(v.clone()).unwrap_err();
            assert!(e.starts_with(&format!("HostConfig.{field}")), "{v}: {e}");
        }
        let got = hc(json!({"Memory": -1, "MemorySwap": -1, "PidsLimit": -1, "NanoCpus": -1})).unwrap();
        assert_eq!(
            (got["Memory"].as_i64(), got["MemorySwap"].as_i64(), got["PidsLimit"].as_i64(), got["NanoCpus"].as_i64()),
            (Some(512 << 20), Some(1024 << 20), Some(512), Some(1_000_000_000))
        );
        let got = hc(json!({"CpuQuota": 50_000, "CpuPeriod": 100_000, "CpuShares": 512, "OomScoreAdj": 100, "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 4096}]})).unwrap();
        assert!(got.get("NanoCpus").is_none(), "a quota within the cap stands alone: {got}");
        // Updates: the same caps; 0 leaves a limit as it is.
        let mut u = json!({"Memory": -1, "CpuQuota": -1});
        assert!(p.container_update(&mut u).unwrap_err().starts_with("update.CpuQuota"));
        let mut u = json!({"Memory": -1});
        p.container_update(&mut u).unwrap();
        assert_eq!(u["Memory"], json!(512i64 << 20));
    }

    #[test]
    fn service_replicas_are_capped() {
        let p = EnginePolicy::default();
        let mut spec = json!({"Mode": {"Replicated": {"Replicas": 17}}, "TaskTemplate": {"ContainerSpec": {"Image": "x"}}, "Networks": [{"Target": "mine"}]});
        assert!(p.service_spec(&mut spec, None).unwrap_err().starts_with("Mode.Replicated.Replicas"));
        let mut spec = json!({"Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1000}}, "TaskTemplate": {"ContainerSpec": {"Image": "x"}}});
        assert!(p.service_spec(&mut spec, None).unwrap_err().starts_with("Mode.ReplicatedJob.TotalCompletions"));
        let mut spec = json!({"Mode": {"Replicated": {"Replicas": 2}}, "TaskTemplate": {"ContainerSpec": {"Image": "x"}}});
        p.service_spec(&mut spec, None).unwrap();
    }

    #[test]
    fn what_the_engine_stored_is_verified() {
        let p = EnginePolicy::default();
        let good = json!({"HostConfig": {"NetworkMode": "none", "Memory": 512i64 << 20, "PidsLimit": 512, "NanoCpus": 1_000_000_000i64, "SecurityOpt": ["no-new-privileges"], "MaskedPaths": ["/proc/kcore"], "Binds": null}});
        p.verify_container(&good, None).unwrap();
        for (k, v, what) in [
            ("Privileged", json!(true), "Privileged"),
            ("PidMode", json!("host"), "PidMode"),
            ("NetworkMode", json!("bridge"), "NetworkMode"),
            ("Binds", json!(["/:/host"]), "Binds"),
            ("Memory", json!(0), "Memory"),
            ("PidsLimit", json!(-1), "PidsLimit"),
            ("CpuQuota", json!(-1), "NanoCpus"),
            ("SecurityOpt", json!([]), "SecurityOpt"),
            ("CapAdd", json!(["SYS_ADMIN"]), "CapAdd"),
        ] {
            let mut bad = good.clone();
            bad["HostConfig"][k] = v;
            let e = p.verify_container(&bad, None).unwrap_err();
            assert!(e.contains(what) && e.contains("as stored by the engine"), "{k}: {e}");
        }
        EnginePolicy::unrestricted().verify_container(&json!({"HostConfig": {"Privileged": true}}), None).unwrap();
    }

    #[test]
    fn references_and_forced_defaults() {
        let p = EnginePolicy::default();
        let (body, refs) = create(
            &p,
            json!({"Image": "app", "HostConfig": {"NetworkMode": "container:their", "PidMode": "container:c2", "VolumesFrom": ["v1:ro"], "Links": ["/l1:alias"], "Binds": ["vol:/data", "/anon"], "Mounts": [{"Type": "volume", "Source": "m1", "Target": "/m"}], "Memory": 1i64 << 40}, "NetworkingConfig": {"EndpointsConfig": {"net1": {}}}}),
        )
        .unwrap();
        let names = |v: &Vec<(String, String)>| v.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&refs.containers), ["c2", "their", "v1", "l1"]);
        assert_eq!(names(&refs.volumes), ["vol", "m1"]);
        assert_eq!(names(&refs.networks), ["net1"]);
        assert_eq!(names(&refs.images), ["app"]);
        let hc = &body["HostConfig"];
        assert_eq!(hc["Memory"], json!(512i64 << 20));
        assert_eq!(hc["PidsLimit"], json!(512));
        assert_eq!(hc["NanoCpus"], json!(1_000_000_000i64));
        assert_eq!(hc["SecurityOpt"], json!(["no-new-privileges"]));
        assert_eq!(hc["LogConfig"]["Config"]["max-size"], json!("10m"));
        // Lower values stay.
        let (body, _) = create(&p, json!({"HostConfig": {"NetworkMode": "none", "Memory": 1 << 20, "PidsLimit": 10}})).unwrap();
        assert_eq!((body["HostConfig"]["Memory"].as_i64(), body["HostConfig"]["PidsLimit"].as_i64()), (Some(1 << 20), Some(10)));
        let (body, _) = create(&p, json!({"HostConfig": {"NetworkMode": "none", "PidsLimit": -1}})).unwrap();
        assert_eq!(body["HostConfig"]["PidsLimit"], json!(512));
        let mut up = json!({"PidsLimit": -1, "Memory": 1i64 << 40});
        p.container_update(&mut up).unwrap();
        assert_eq!((up["PidsLimit"].as_i64(), up["Memory"].as_i64()), (Some(512), Some(512 << 20)));
        assert!(p.container_update(&mut json!({"Devices": [{"PathOnHost": "/dev/mem"}]})).is_err());
        // Unrestricted passes everything through untouched.
        let u = EnginePolicy::unrestricted();
        let orig = json!({"HostConfig": {"Privileged": true, "Binds": ["/:/host"], "NetworkMode": "host"}});
        let (body, _) = create(&u, orig.clone()).unwrap();
        assert_eq!(body, orig);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("x"), None);
    }
}
