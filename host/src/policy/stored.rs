//! The second line of defence: once the engine has answered a create or an update, what it
//! stored is inspected and checked again, on the engine's own reading of the request. On any
//! difference the host removes what was made ([`Kind::removal`]) and refuses the call.

use serde_json::{json, Value};

use super::{filters_query, Gate, Inspector, Kind, Policy, Refusal};

/// What the host inspects after the engine answers with success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterCheck {
    /// The object the response names (`Id`, `ID`, or a volume's `Name`).
    Created(Kind),
    /// An existing object, by the id the gate resolved.
    Updated(Kind, String),
    /// The names a tag, commit, import or build points; the ids its response names are
    /// added by [`image_ids`].
    Images(Vec<String>),
}

impl AfterCheck {
    /// Whether the check needs the whole response (the id is in it).
    pub fn reads_response(&self) -> bool {
        !matches!(self, AfterCheck::Updated(..))
    }
}

impl Kind {
    /// The request that removes an object of this kind made against the policy: a path and
    /// its query. An image named by a tag loses only that name; one named by id goes whole.
    pub fn removal(self, id: &str) -> (String, &'static str) {
        let s = super::seg(id);
        match self {
            Kind::Container => (format!("/containers/{s}"), "force=1&v=1"),
            Kind::Volume => (format!("/volumes/{s}"), "force=1"),
            Kind::Network => (format!("/networks/{s}"), ""),
            Kind::Service => (format!("/services/{s}"), ""),
            Kind::Secret => (format!("/secrets/{s}"), ""),
            Kind::Config => (format!("/configs/{s}"), ""),
            Kind::Image if id.starts_with("sha256:") => (format!("/images/{s}"), "force=1"),
            Kind::Image => (format!("/images/{s}"), "noprune=1"),
        }
    }
}

/// The id a create's response names.
pub fn created_id(kind: Kind, body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let key = match kind {
        Kind::Volume => "Name",
        Kind::Service | Kind::Secret | Kind::Config => "ID",
        _ => "Id",
    };
    v[key].as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

/// Image ids a commit (`{"Id"}`), an import (`{"status": "sha256:…"}`) or a build
/// (`{"aux": {"ID"}}`) response names, from a JSON document or a JSON-lines stream.
pub fn image_ids(body: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_slice(body).into_iter::<Value>().map_while(Result::ok) {
        for id in [&v["Id"], &v["aux"]["ID"], &v["status"]].into_iter().filter_map(Value::as_str) {
            let id = id.trim();
            if id.starts_with("sha256:") && id.len() == 71 && !out.iter().any(|o| o == id) {
                out.push(id.to_string());
            }
        }
    }
    out
}

impl Policy {
    /// Checks an object as the engine stored it; `Err` names what differs from the policy.
    pub async fn verify_stored<I: Inspector>(&self, insp: &mut I, kind: Kind, id: &str, stored: &Value) -> Result<(), String> {
        let mut gate = Gate { policy: self, insp, scope: self.label_scope.clone(), applied: Vec::new(), decoded: None, after: None };
        gate.verify(kind, id, stored).await.map_err(|e| match e {
            Refusal::Denied(m) | Refusal::Invalid(m) | Refusal::Limit(m) => m,
        })
    }
}

impl<I: Inspector> Gate<'_, '_, I> {
    async fn verify(&mut self, kind: Kind, id: &str, stored: &Value) -> Result<(), Refusal> {
        let stored_as = |what: &str, why: String| Refusal::Denied(format!("{what} as stored by the engine: {why}"));
        if let Some((key, value)) = self.scope.clone() {
            if kind.labels(stored)[key.as_str()].as_str() != Some(value.as_str()) {
                return Err(stored_as("Labels", format!("{} {id} lacks the scope label {key}={value}", kind.name())));
            }
        }
        let rules = self.policy.rules.clone();
        match kind {
            Kind::Container => rules.verify_container(stored, self.socket()).map_err(Refusal::Denied),
            Kind::Volume => {
                let as_asked = json!({"Driver": stored["Driver"], "DriverOpts": stored["Options"], "ClusterVolumeSpec": stored["ClusterVolume"]["Spec"]});
                rules.volume_create(&as_asked).map_err(|e| stored_as("the volume", e))
            }
            Kind::Network => {
                let mut as_asked = json!({"Driver": stored["Driver"], "Options": stored["Options"], "Ingress": stored["Ingress"], "IPAM": stored["IPAM"]});
                if stored["ConfigFrom"]["Network"].as_str().is_some_and(|n| !n.is_empty()) {
                    as_asked["ConfigFrom"] = stored["ConfigFrom"].clone();
                }
                rules.network_create(&as_asked).map_err(|e| stored_as("the network", e))?;
                self.network_name_unique(id, stored).await
            }
            Kind::Service => self.held_spec(id, &stored["Spec"], "the service spec as stored by the engine").await,
            Kind::Secret | Kind::Config if self.scope.is_some() && !stored["Spec"]["Driver"].is_null() => {
                Err(stored_as("Driver", format!("an external driver ({})", stored["Spec"]["Driver"])))
            }
            Kind::Secret | Kind::Config | Kind::Image => Ok(()),
        }
    }

    /// A service spec the engine holds (as stored, or the `PreviousSpec` a rollback restores),
    /// read by the same rules as a request: they must find nothing to refuse, nothing to add
    /// to its caps, only the tenant's objects, and its labels on the service and its tasks.
    pub(super) async fn held_spec(&mut self, id: &str, held: &Value, what: &str) -> Result<(), Refusal> {
        let denied = |why: String| Refusal::Denied(format!("{what}: {why}"));
        if let Some((key, value)) = self.scope.clone() {
            for (field, labels) in [("Labels", &held["Labels"]), ("TaskTemplate.ContainerSpec.Labels", &held["TaskTemplate"]["ContainerSpec"]["Labels"])] {
                if labels[key.as_str()].as_str() != Some(value.as_str()) {
                    return Err(denied(format!("{field} lacks the scope label {key}={value}")));
                }
            }
        }
        let mut spec = held.clone();
        let refs = self.policy.rules.service_spec(&mut spec, self.socket()).map_err(denied)?;
        let limits = |s: &Value| s["TaskTemplate"]["Resources"]["Limits"].clone();
        if limits(&spec) != limits(held) {
            return Err(denied(format!("TaskTemplate.Resources.Limits {} lack the forced caps {}", limits(held), limits(&spec))));
        }
        if self.scope.is_some() {
            self.check_refs(&refs).await.map_err(|e| denied(e.message().to_string()))?;
            self.replicas(Some(id), held).await.map_err(|e| match e {
                Refusal::Limit(m) => Refusal::Limit(format!("{what}: {m}")),
                e => e,
            })?;
        }
        Ok(())
    }

    /// Two networks may share a name on the engine (two creates can race past the gate's
    /// check): the one just made must be the only one of its name.
    async fn network_name_unique(&mut self, id: &str, stored: &Value) -> Result<(), Refusal> {
        let name = stored["Name"].as_str().unwrap_or("");
        let list = self.insp.inspect(&format!("/networks?{}", filters_query(json!({"name": [name]})))).await?;
        let others =
            list.as_ref().and_then(Value::as_array).into_iter().flatten().filter(|n| n["Name"].as_str() == Some(name) && n["Id"].as_str() != Some(id)).count();
        if others > 0 {
            return Err(Refusal::Denied(format!("Name as stored by the engine: another network is also named '{name}'")));
        }
        Ok(())
    }

    /// A scoped tenant's service tasks, summed over its services (`except` replaced by
    /// `spec`), must stay within `max_replicas`. A global service counts one task per node.
    pub(super) async fn replicas(&mut self, except: Option<&str>, spec: &Value) -> Result<(), Refusal> {
        let cap = self.rules().max_replicas;
        let Some(q) = self.scope_filter() else {
            return Ok(());
        };
        if cap == 0 {
            return Ok(());
        }
        let services = self.insp.inspect(&format!("/services?{q}")).await?.unwrap_or(json!([]));
        let mut nodes: Option<u64> = None;
        let mut total = 0u64;
        let others = services.as_array().into_iter().flatten().filter(|s| Some(s["ID"].as_str().unwrap_or("")) != except).map(|s| s["Spec"].clone());
        for s in others.chain(std::iter::once(spec.clone())) {
            let mode = &s["Mode"];
            total += if mode.get("Global").is_some() || mode.get("GlobalJob").is_some() {
                if nodes.is_none() {
                    nodes = Some(self.insp.inspect("/nodes").await?.as_ref().and_then(Value::as_array).map_or(1, |a| a.len() as u64));
                }
                nodes.unwrap_or(1)
            } else if let Some(j) = mode.get("ReplicatedJob") {
                j["MaxConcurrent"].as_u64().unwrap_or(1)
            } else {
                mode["Replicated"]["Replicas"].as_u64().unwrap_or(1)
            };
        }
        if total > cap {
            return Err(Refusal::Limit(format!("this tenant's services would run {total} tasks at once, above its cap of {cap} (engine_policy.max_replicas)")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_responses() {
        let id = format!("sha256:{}", "a".repeat(64));
        let import = format!("{{\"status\":\"{id}\"}}\r\n");
        assert_eq!(image_ids(import.as_bytes()), vec![id.clone()]);
        let build = format!("{{\"stream\":\"Step 1/1\"}}\n{{\"aux\":{{\"ID\":\"{id}\"}}}}\n{{\"stream\":\"Successfully built\"}}\n");
        assert_eq!(image_ids(build.as_bytes()), vec![id.clone()]);
        assert_eq!(image_ids(format!("{{\"Id\":\"{id}\"}}").as_bytes()), vec![id.clone()]);
        assert!(image_ids(b"{\"status\":\"sha256:short\"}").is_empty());
        assert_eq!(created_id(Kind::Volume, br#"{"Name":"v","Driver":"local"}"#).as_deref(), Some("v"));
        assert_eq!(created_id(Kind::Service, br#"{"ID":"s1"}"#).as_deref(), Some("s1"));
        assert_eq!(created_id(Kind::Network, br#"{"Id":"n1","Warning":""}"#).as_deref(), Some("n1"));
        assert_eq!(Kind::Image.removal("app:1"), ("/images/app:1".to_string(), "noprune=1"));
        assert_eq!(Kind::Image.removal(&id).1, "force=1");
    }
}
