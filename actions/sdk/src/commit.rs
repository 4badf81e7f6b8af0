//! `POST /commit`, shared by `container.snapshot` and `image.commit`.

use crate::prelude::*;

/// `POST /commit`: a container to an image. Params: `container` (or `id`), `repo`, `tag`,
/// `comment`, `author`, `pause` (default true), `changes` (a list, or one instruction per
/// line) and `body` / `request_body` (the image's container config).
pub fn commit(p: &Params) -> Result<Output> {
    let id = p.str("container").or_else(|| p.str("id")).ok_or_else(|| Error::bad_params("parameter 'container' (string) is required"))?;
    let mut req = post("/commit")
        .query("container", id)
        .query_opt("repo", p.str("repo"))
        .query_opt("tag", p.str("tag"))
        .query_opt("comment", p.str("comment"))
        .query_opt("author", p.str("author"))
        .query("pause", p.bool("pause").unwrap_or(true));
    for change in p.lines_or_list("changes")? {
        req = req.query("changes", change);
    }
    let body = match p.get("body").or_else(|| p.get("request_body")) {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(Value::String(s)) if !s.trim().is_empty() => serde_json::from_str::<Value>(s)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| Error::bad_params("parameter 'request_body' must be a JSON object"))?,
        _ => json!({}),
    };
    let v = req.json(&body).json_ok()?;
    let image = v["Id"].clone();
    let name = match (p.str("repo"), p.str("tag")) {
        (Some(r), Some(t)) => format!("{r}:{t}"),
        (Some(r), None) => format!("{r}:latest"),
        _ => String::new(),
    };
    Ok(Output::one(format!("Committed {id} to image {}", if name.is_empty() { image.as_str().unwrap_or("?") } else { &name }), json!({"Id": image, "container": id, "image": name}))
        .summary("image_id", image)
        .summary("total_objects", 1)
        .summary("total_objects_successful", 1))
}
