//! The gate's checks of images (see `Gate::check` in `policy`).

use serde_json::{json, Value};

use crate::engine::OutBody;
use crate::policy::{q, reference, set_body, AfterCheck, Gate, Inspector, Kind, Matched, Refusal};

impl<I: Inspector> Gate<'_, '_, I> {
    /// Images: tags, pushes, pulls, imports, commits and builds point only names the tenant may take; references normalised as the engine normalises them.
    pub(in crate::policy) async fn images(&mut self, m: &Matched, query: &mut Vec<(String, String)>, body: &mut OutBody) -> Result<String, Refusal> {
        let method = m.route.method.as_str();
        let template = m.route.template;
        let param = m.param.clone().unwrap_or_default();
        let scoped = self.scope.is_some();
        match (method, template) {
            ("POST", "/images/{name}/tag") => {
                self.object(Kind::Image, &param).await?;
                let repo = q(query, "repo").unwrap_or("").to_string();
                if repo.is_empty() {
                    return Err(Refusal::Invalid("repo: a tag needs a repository".into()));
                }
                if scoped {
                    let names = self.destinations("repo", &repo, q(query, "tag")).await?;
                    self.after = Some(AfterCheck::Images(names));
                }
                Ok(m.path_with(None))
            }
            ("GET", "/images/{name}/json" | "/images/{name}/history") if scoped => {
                // Reading an image the tenant may run (its own, or an allowlisted base image);
                // an unknown one gets the engine's own 404.
                if let Some(found) = self.lookup(Kind::Image, &param).await? {
                    self.image_usable_as("name", &param, Some(&found))?;
                }
                Ok(m.path_with(None))
            }
            ("POST", "/images/{name}/push") => {
                // The engine pushes `name:tag`, the name's own tag, or, with neither, every
                // tag of the repository: a scoped tenant's push is made explicit (`latest`).
                let r = reference::Reference::parse(&param).map_err(|e| Refusal::Invalid(format!("name: {e}")))?;
                let target = match q(query, "tag").filter(|t| !t.is_empty()) {
                    Some(t) => format!("{}:{t}", r.familiar_name()),
                    None if r.tag.is_some() || r.digest.is_some() => r.familiar(),
                    None if scoped => {
                        query.retain(|(k, _)| k != "tag");
                        query.push(("tag".into(), "latest".into()));
                        self.applied.push("tag: latest (a push without a tag pushes every tag of the repository)".into());
                        format!("{}:latest", r.familiar_name())
                    }
                    None => param.clone(),
                };
                self.object(Kind::Image, &target).await?;
                Ok(m.path_with(None))
            }
            (
                _,
                "/images/{name}"
                | "/images/{name}/json"
                | "/images/{name}/history"
                | "/images/{name}/get"
                | "/images/{name}/push"
                | "/images/{name}/attestations",
            ) => {
                self.object(Kind::Image, &param).await?;
                Ok(m.path_with(None))
            }
            ("GET", "/images/get") => {
                if scoped {
                    let names: Vec<String> = query.iter().filter(|(k, _)| k == "names").map(|(_, v)| v.clone()).collect();
                    for n in names {
                        self.object(Kind::Image, &n).await?;
                    }
                }
                Ok(m.path_with(None))
            }
            ("GET", "/images/search") | ("GET", "/distribution/{name}/json") | ("POST", "/auth") => Ok(m.path_with(None)),
            ("POST", "/images/create") => self.create_image(m, query).await,
            ("POST", "/commit") => {
                if scoped {
                    let c = q(query, "container").ok_or_else(|| Refusal::Invalid("container: a commit needs a container".into()))?.to_string();
                    let id = self.reference("container", Kind::Container, &c).await?;
                    query.iter_mut().filter(|(k, _)| k == "container").for_each(|(_, v)| *v = id.clone());
                    let mut names = Vec::new();
                    if let Some(repo) = q(query, "repo").filter(|r| !r.is_empty()).map(str::to_string) {
                        names = self.destinations("repo", &repo, q(query, "tag")).await?;
                    }
                    let mut v = self.json_body(body, "commit", true)?;
                    self.force_label(&mut v, "Labels")?;
                    set_body(body, &v);
                    self.force_changes_label(query)?;
                    self.after = Some(AfterCheck::Images(names));
                }
                Ok(m.path_with(None))
            }
            ("POST", "/build") => self.build(m, query).await,
            ("POST", "/images/load") => {
                if !self.rules().image_load {
                    return Err(Refusal::Denied("load: this tenant may not load image archives (they name their own tags and carry no scope label); allow it with engine_policy.image_load".into()));
                }
                if scoped {
                    return Err(Refusal::Denied("load: a label-scoped tenant cannot load archives: the loaded images could not carry its label".into()));
                }
                Ok(m.path_with(None))
            }
            _ => self.unlisted(m),
        }
    }

    /// `POST /images/create`: a pull (`fromImage`, made explicit as `latest` when untagged) or
    /// an import (from an input artifact only, with the forced label).
    async fn create_image(&mut self, m: &Matched, query: &mut Vec<(String, String)>) -> Result<String, Refusal> {
        let scoped = self.scope.is_some();
        if let Some(from) = q(query, "fromImage").filter(|s| !s.is_empty()).map(str::to_string) {
            if scoped {
                // Without a tag the engine pulls every tag of the repository.
                let r = reference::Reference::parse(&from).map_err(|e| Refusal::Invalid(format!("fromImage: {e}")))?;
                if r.tag.is_none() && r.digest.is_none() && q(query, "tag").is_none_or(str::is_empty) {
                    query.retain(|(k, _)| k != "tag");
                    query.push(("tag".into(), "latest".into()));
                    self.applied.push("tag: latest (a pull without a tag pulls every tag of the repository)".into());
                }
                self.destinations("fromImage", &from, q(query, "tag")).await?;
            }
        } else {
            let src = q(query, "fromSrc").unwrap_or("");
            if scoped && src != "-" {
                return Err(Refusal::Denied(format!("fromSrc: importing from a URL ('{src}') is not allowed; import from an input artifact")));
            }
            if scoped {
                let mut names = Vec::new();
                if let Some(repo) = q(query, "repo").filter(|r| !r.is_empty()).map(str::to_string) {
                    names = self.destinations("repo", &repo, q(query, "tag")).await?;
                }
                self.force_changes_label(query)?;
                self.after = Some(AfterCheck::Images(names));
            }
        }
        Ok(m.path_with(None))
    }

    /// `POST /build`: only if allowed; tags, cache sources and the forced label.
    async fn build(&mut self, m: &Matched, query: &mut Vec<(String, String)>) -> Result<String, Refusal> {
        let scoped = self.scope.is_some();
        if !self.rules().build {
            return Err(Refusal::Denied(
                "build: this tenant may not build images (a Dockerfile can start FROM any image on the engine); allow it with engine_policy.build".into(),
            ));
        }
        if q(query, "remote").is_some_and(|r| !r.is_empty()) && scoped {
            return Err(Refusal::Denied("remote: builds from a URL are not allowed".into()));
        }
        if q(query, "networkmode") == Some("host") && !self.rules().host_namespaces {
            return Err(Refusal::Denied("networkmode: the host network namespace is not allowed".into()));
        }
        if scoped {
            let tags: Vec<String> = query.iter().filter(|(k, _)| k == "t").map(|(_, v)| v.clone()).collect();
            let mut names = Vec::new();
            for t in tags {
                names.extend(self.destinations("t", &t, None).await?);
            }
            self.after = Some(AfterCheck::Images(names));
            // Cache sources are images read like a FROM: they must be usable.
            if let Some(cf) = q(query, "cachefrom").filter(|c| !c.is_empty()).map(str::to_string) {
                let list: Vec<String> = serde_json::from_str(&cf).map_err(|_| Refusal::Invalid("cachefrom must be a JSON list of images".into()))?;
                for image in list {
                    self.image_usable("cachefrom", &image).await?;
                }
            }
            let (key, value) = self.scope.clone().expect("scoped");
            let mut labels = match q(query, "labels") {
                Some(l) if !l.is_empty() => serde_json::from_str::<Value>(l).map_err(|_| Refusal::Invalid("labels must be a JSON object".into()))?,
                _ => json!({}),
            };
            let obj = labels.as_object_mut().ok_or_else(|| Refusal::Invalid("labels must be a JSON object".into()))?;
            obj.insert(key, json!(value));
            query.retain(|(k, _)| k != "labels");
            query.push(("labels".into(), labels.to_string()));
        }
        Ok(m.path_with(None))
    }
}
