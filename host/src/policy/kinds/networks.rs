//! The gate's checks of volumes and networks (see `Gate::check` in `policy`).

use serde_json::json;

use crate::engine::OutBody;
use crate::policy::{set_body, AfterCheck, Gate, Inspector, Kind, Matched, Refusal};

impl<I: Inspector> Gate<'_, '_, I> {
    /// Volumes and networks: drivers and options, unique network names, quotas, the containers a connect names.
    pub(in crate::policy) async fn volumes_and_networks(&mut self, m: &Matched, body: &mut OutBody) -> Result<String, Refusal> {
        let denied = |f: String| Refusal::Denied(f);
        let method = m.route.method.as_str();
        let template = m.route.template;
        let param = m.param.clone().unwrap_or_default();
        let scoped = self.scope.is_some();
        match (method, template) {
            ("POST", t @ ("/volumes/create" | "/networks/create")) => {
                let volume = t == "/volumes/create";
                let mut v = self.json_body(body, if volume { "volume create" } else { "network create" }, false)?;
                if volume { self.rules().volume_create(&v) } else { self.rules().network_create(&v) }.map_err(denied)?;
                if !volume && self.policy.policed() {
                    // The engine lets two networks share a name; lookups by that name then
                    // fail for the tenant that had it first.
                    let name = v["Name"].as_str().unwrap_or("").to_string();
                    if !name.is_empty() && self.lookup(Kind::Network, &name).await?.is_some() {
                        return Err(Refusal::Denied(format!("Name: a network named or identified by '{name}' already exists")));
                    }
                    v["CheckDuplicate"] = json!(true);
                }
                if scoped {
                    let (kind, cap) = if volume { (Kind::Volume, self.rules().max_volumes) } else { (Kind::Network, self.rules().max_networks) };
                    self.quota(kind, cap).await?;
                    self.force_label(&mut v, "Labels")?;
                }
                set_body(body, &v);
                self.after = Some(AfterCheck::Created(if volume { Kind::Volume } else { Kind::Network }));
                Ok(m.path_with(None))
            }
            ("GET" | "DELETE", "/volumes/{name}") => {
                let name = self.object(Kind::Volume, &param).await?;
                Ok(m.path_with(Some(&name)))
            }
            ("POST", "/networks/{id}/connect" | "/networks/{id}/disconnect") => {
                let id = self.object(Kind::Network, &param).await?;
                if scoped {
                    let mut v = self.json_body(body, "network connect", false)?;
                    let c = v["Container"].as_str().ok_or_else(|| Refusal::Invalid("Container: a container is required".into()))?.to_string();
                    let cid = self.reference("Container", Kind::Container, &c).await?;
                    v["Container"] = json!(cid);
                    set_body(body, &v);
                }
                Ok(m.path_with(Some(&id)))
            }
            ("GET" | "DELETE", "/networks/{id}") => {
                let id = self.object(Kind::Network, &param).await?;
                Ok(m.path_with(Some(&id)))
            }
            _ => self.unlisted(m),
        }
    }
}
