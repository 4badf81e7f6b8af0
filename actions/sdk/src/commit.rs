//! `POST /commit`, shared by `container.snapshot`, its Splunk SOAR alias and `image.commit`.

use crate::prelude::*;

crate::params! {
    /// What every commit action takes besides the container and the image's config: each
    /// declares those two under its own names and composes them with this (`With<_, CommitOpts>`).
    pub struct CommitOpts {
        repo: Option<String> => "Repository for the new image",
        tag: Option<String> => "Tag (default latest)",
        comment: Option<String> => "Commit message",
        author: Option<String> => "",
        pause: bool = true => "Pause the container while committing",
        changes: Option<Value> => "Dockerfile instructions: a list, or one per line",
    }
}

/// `POST /commit`: `container` to an image, with `body` (an object, or its JSON text) as the
/// image's container config.
pub fn commit(container: &str, p: CommitOpts, body: Option<&Value>) -> Result<Output> {
    let id = container;
    let mut req = post("/commit")
        .query("container", id)
        .query_opt("repo", p.repo.as_deref())
        .query_opt("tag", p.tag.as_deref())
        .query_opt("comment", p.comment.as_deref())
        .query_opt("author", p.author.as_deref())
        .query("pause", p.pause);
    for change in crate::params::lines_or_list(p.changes.as_ref(), "changes")? {
        req = req.query("changes", change);
    }
    let body = match body {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(Value::String(s)) if !s.trim().is_empty() => {
            serde_json::from_str::<Value>(s).ok().filter(Value::is_object).ok_or_else(|| Error::bad_params("parameter 'request_body' must be a JSON object"))?
        }
        _ => json!({}),
    };
    let v = req.json(&body).json_ok()?;
    let image = v["Id"].clone();
    let name = match (&p.repo, &p.tag) {
        (Some(r), Some(t)) => format!("{r}:{t}"),
        (Some(r), None) => format!("{r}:latest"),
        _ => String::new(),
    };
    Ok(Output::one(
        format!("Committed {id} to image {}", if name.is_empty() { image.as_str().unwrap_or("?") } else { &name }),
        json!({"Id": image, "container": id, "image": name}),
    )
    .summary("image_id", image)
    .summary("total_objects", 1)
    .summary("total_objects_successful", 1))
}
