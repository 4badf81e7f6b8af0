//! The gate's checks of services, secrets, configs and tasks (see `Gate::check` in `policy`).

use serde_json::Value;

use crate::engine::OutBody;
use crate::policy::{q, seg, set_body, AfterCheck, Gate, Inspector, Kind, Matched, Refusal};

impl<I: Inspector> Gate<'_, '_, I> {
    /// Services, secrets, configs and tasks: specs read by the container rules, references in scope, task counts, rollbacks.
    pub(in crate::policy) async fn swarm_objects(&mut self, m: &Matched, query: &mut Vec<(String, String)>, body: &mut OutBody) -> Result<String, Refusal> {
        let denied = |f: String| Refusal::Denied(f);
        let method = m.route.method.as_str();
        let template = m.route.template;
        let param = m.param.clone().unwrap_or_default();
        let scoped = self.scope.is_some();
        match (method, template) {
            ("POST", "/services/create" | "/services/{id}/update") => {
                let id = match template {
                    "/services/{id}/update" => Some(self.object(Kind::Service, &param).await?),
                    _ => None,
                };
                if let (Some(id), Some(r), true) = (&id, q(query, "rollback"), self.policy.policed()) {
                    // The engine ignores the body and restores the spec it holds as previous.
                    if r != "previous" {
                        return Err(Refusal::Invalid(format!("rollback: '{r}' (only 'previous' is a rollback)")));
                    }
                    let held = self.lookup(Kind::Service, id).await?.unwrap_or(Value::Null);
                    if held["PreviousSpec"].is_null() {
                        return Err(Refusal::Invalid(format!("rollback: service {param} has no previous spec")));
                    }
                    self.held_spec(id, &held["PreviousSpec"], "rollback: the previous spec").await?;
                }
                let mut v = self.json_body(body, "service spec", false)?;
                let refs = self.rules().service_spec(&mut v, self.socket()).map_err(denied)?;
                if scoped {
                    self.check_refs(&refs).await?;
                    self.replicas(id.as_deref(), &v).await?;
                    // The service and the containers of its tasks carry the label.
                    self.force_label(&mut v, "Labels")?;
                    self.force_label(&mut v["TaskTemplate"]["ContainerSpec"], "Labels")?;
                }
                set_body(body, &v);
                self.after = Some(match &id {
                    Some(id) => AfterCheck::Updated(Kind::Service, id.clone()),
                    None => AfterCheck::Created(Kind::Service),
                });
                Ok(m.path_with(id.as_deref()))
            }
            (_, "/services/{id}" | "/services/{id}/logs") => {
                let id = self.object(Kind::Service, &param).await?;
                Ok(m.path_with(Some(&id)))
            }
            ("POST", "/secrets/create" | "/configs/create") => {
                if scoped {
                    let mut v = self.json_body(body, "create", false)?;
                    // An external secret driver is an engine plugin: not for scoped tenants.
                    if !v["Driver"].is_null() {
                        return Err(Refusal::Denied("Driver: external secret drivers (engine plugins) are not available to a label-scoped tenant".into()));
                    }
                    self.force_label(&mut v, "Labels")?;
                    set_body(body, &v);
                    self.after = Some(AfterCheck::Created(if template.starts_with("/secrets") { Kind::Secret } else { Kind::Config }));
                }
                Ok(m.path_with(None))
            }
            (_, t @ ("/secrets/{id}" | "/secrets/{id}/update" | "/configs/{id}" | "/configs/{id}/update")) => {
                let kind = if t.starts_with("/secrets") { Kind::Secret } else { Kind::Config };
                let id = self.object(kind, &param).await?;
                if scoped && t.ends_with("/update") {
                    let mut v = self.json_body(body, "update", false)?;
                    self.force_label(&mut v, "Labels")?;
                    set_body(body, &v);
                    self.after = Some(AfterCheck::Updated(kind, id.clone()));
                }
                Ok(m.path_with(Some(&id)))
            }
            ("GET", "/tasks/{id}" | "/tasks/{id}/logs") => {
                if scoped {
                    // A task is in scope when its service is.
                    let task = self.insp.inspect(&format!("/tasks/{}", seg(&param))).await?;
                    if let Some(sid) = task.as_ref().map(|t| t["ServiceID"].as_str().unwrap_or("").to_string()) {
                        self.reference("task", Kind::Service, &sid).await?;
                    }
                }
                Ok(m.path_with(None))
            }
            ("GET", "/tasks") => {
                if scoped {
                    self.scope_tasks(query).await?;
                }
                Ok(m.path_with(None))
            }
            _ => self.unlisted(m),
        }
    }
}
