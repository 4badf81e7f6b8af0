//! The gate's checks of containers and exec instances (see `Gate::check` in `policy`).

use crate::engine::OutBody;
use crate::policy::{seg, set_body, AfterCheck, Gate, Inspector, Kind, Matched, Refusal};

impl<I: Inspector> Gate<'_, '_, I> {
    /// Containers and exec instances: bodies against the engine policy, objects in scope, binds checked again at every start.
    pub(in crate::policy) async fn containers(&mut self, m: &Matched, body: &mut OutBody) -> Result<String, Refusal> {
        let denied = |f: String| Refusal::Denied(f);
        let method = m.route.method.as_str();
        let template = m.route.template;
        let param = m.param.clone().unwrap_or_default();
        let scoped = self.scope.is_some();
        match (method, template) {
            ("POST", "/containers/create") => {
                if scoped {
                    self.quota(Kind::Container, self.rules().max_containers).await?;
                }
                let mut v = self.json_body(body, "container create", false)?;
                let refs = self.rules().container_create(&mut v, self.socket()).map_err(denied)?;
                self.applied.extend(refs.applied.iter().cloned());
                if scoped {
                    self.check_refs(&refs).await?;
                    self.force_label(&mut v, "Labels")?;
                }
                set_body(body, &v);
                self.after = Some(AfterCheck::Created(Kind::Container));
                Ok(m.path_with(None))
            }
            ("POST", "/containers/{id}/update") => {
                let id = self.object(Kind::Container, &param).await?;
                let mut v = self.json_body(body, "container update", false)?;
                self.rules().container_update(&mut v).map_err(denied)?;
                set_body(body, &v);
                self.after = Some(AfterCheck::Updated(Kind::Container, id.clone()));
                Ok(m.path_with(Some(&id)))
            }
            ("POST", "/containers/{id}/exec") => {
                let id = self.object(Kind::Container, &param).await?;
                let v = self.json_body(body, "exec create", false)?;
                self.rules().exec_create(&v).map_err(denied)?;
                set_body(body, &v);
                Ok(m.path_with(Some(&id)))
            }
            ("POST", "/containers/{id}/start" | "/containers/{id}/restart") if !self.rules().open => {
                // What a bind's path names on the host may have changed since the create:
                // checked again on the container the engine holds, at every start.
                let id = self.object(Kind::Container, &param).await?;
                if let Some(v) = self.lookup(Kind::Container, &id).await? {
                    self.rules().recheck_binds(&v["HostConfig"], self.socket()).map_err(denied)?;
                }
                Ok(m.path_with(Some(&id)))
            }
            (_, t) if t.starts_with("/containers/{id}") => {
                let id = self.object(Kind::Container, &param).await?;
                Ok(m.path_with(Some(&id)))
            }
            (_, "/exec/{id}/json" | "/exec/{id}/start" | "/exec/{id}/resize") => {
                if scoped {
                    let info = self.insp.inspect(&format!("/exec/{}/json", seg(&param))).await?;
                    if let Some(c) = info.as_ref().and_then(|v| v["ContainerID"].as_str()) {
                        self.object(Kind::Container, c).await?;
                    }
                }
                Ok(m.path_with(None))
            }
            _ => self.unlisted(m),
        }
    }
}
