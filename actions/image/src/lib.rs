//! The `image` family: every Image operation of the Engine API (list, inspect, history, tag,
//! remove, prune, search, pull, import, push, build, commit, save, load, build cache,
//! distribution, attestations) and the Splunk SOAR image aliases.

mod soar;

use std::time::{Duration, Instant};

use berth_sdk::engine::need_api;
use berth_sdk::prelude::*;
use berth_sdk::stream::registry_of;

fn name() -> Param {
    Param::string("name").required().describe("Image name or ID")
}

fn timeout(default: i64) -> Param {
    Param::int("timeout").default(default).describe("Seconds the operation may take (raise --timeout-secs to match)")
}

fn actions() -> Vec<Action> {
    vec![
        Action::new("image.list", "List images")
            .read_only()
            .param(Param::bool("all").default(false).describe("Include intermediate images"))
            .param(Param::any("filters").describe("Filters: dangling, label, reference, before, since"))
            .param(Param::bool("shared_size").describe("Compute SharedSize (API >= 1.42)"))
            .param(Param::bool("digests").default(false).describe("Include RepoDigests"))
            .param(Param::bool("manifests").describe("Include Manifests (API >= 1.47)"))
            .output(&["data.*.Id", "data.*.RepoTags", "data.*.Created", "data.*.Size", "summary.total_objects"])
            .run(list),
        Action::new("image.inspect", "Low-level information on an image")
            .read_only()
            .param(name())
            .output(&["data.*.Id", "data.*.RepoTags", "data.*.Config", "summary.id"])
            .run(inspect),
        Action::new("image.history", "Parent layers of an image")
            .read_only()
            .param(name())
            .output(&["data.*.Id", "data.*.Tags", "data.*.CreatedBy", "data.*.Created", "data.*.Size", "data.*.Comment", "summary.total_objects"])
            .run(history),
        Action::new("image.tag", "Tag an image")
            .kind(Kind::Generic)
            .param(name())
            .param(Param::string("repo").required().describe("Repository, e.g. 127.0.0.1:5000/team/app"))
            .param(Param::string("tag").describe("Tag (default latest)"))
            .output(&["data.*.image", "summary.image"])
            .run(tag),
        Action::new("image.remove", "Remove an image")
            .kind(Kind::Correct)
            .param(name())
            .param(Param::bool("force").default(false).describe("Remove even if tagged several times or used by stopped containers"))
            .param(Param::bool("noprune").default(false).describe("Keep untagged parents"))
            .output(&["data.*.Untagged", "data.*.Deleted", "summary.deleted", "summary.untagged"])
            .run(remove),
        Action::new("image.prune", "Delete unused images (dangling by default)")
            .kind(Kind::Correct)
            .param(Param::any("filters").describe("Filters: dangling (true: untagged only; false: all unused), until, label"))
            .output(&["data.*.ImagesDeleted", "summary.total_objects", "summary.space_reclaimed"])
            .run(prune),
        Action::new("image.search", "Search a registry for images")
            .read_only()
            .param(Param::string("term").required().describe("Search term; prefix with a registry host to search it"))
            .param(Param::int("limit").describe("Maximum results"))
            .param(Param::any("filters").describe("Filters: is-official, stars"))
            .output(&["data.*.name", "data.*.description", "data.*.star_count", "summary.total_objects"])
            .run(search),
        Action::new("image.pull", "Pull an image from a registry, with progress")
            .kind(Kind::Generic)
            .param(Param::string("image").required().describe("Image reference, e.g. 127.0.0.1:5000/app:1"))
            .param(Param::string("tag").describe("Tag, when not in the reference"))
            .param(Param::string("platform").describe("os[/arch[/variant]]"))
            .param(timeout(300))
            .output(&["data.*.image", "data.*.statuses", "summary.id"])
            .run(pull),
        Action::new("image.import", "Create an image from the `in` rootfs tar artifact")
            .kind(Kind::Generic)
            .param(Param::string("repo").describe("Repository for the new image"))
            .param(Param::string("tag"))
            .param(Param::string("message").describe("Commit message"))
            .param(Param::any("changes").describe("Dockerfile instructions: a list, or one per line"))
            .param(Param::string("platform"))
            .param(timeout(300))
            .output(&["data.*.id", "summary.id"])
            .run(import),
        Action::new("image.push", "Push an image to a registry, with progress")
            .kind(Kind::Generic)
            .param(name())
            .param(Param::string("tag").describe("Push only this tag"))
            .param(Param::string("platform").describe("Push only this platform (API >= 1.46)"))
            .param(timeout(300))
            .output(&["data.*.digest", "summary.digest"])
            .run(push),
        Action::new("image.build", "Build an image from the `in` artifact (a tar, or a directory the CLI packs)")
            .kind(Kind::Generic)
            .param(Param::string("dockerfile").describe("Path of the Dockerfile in the context (default Dockerfile)"))
            .param(Param::any("tags").describe("Tags: a list or one name:tag"))
            .param(Param::object("buildargs").describe("Build arguments {\"K\": \"V\"}"))
            .param(Param::object("labels").describe("Labels {\"k\": \"v\"}"))
            .param(Param::string("target").describe("Build stage to stop at"))
            .param(Param::bool("nocache").default(false))
            .param(Param::bool("pull").default(false).describe("Always pull newer base images"))
            .param(Param::bool("rm").default(true).describe("Remove intermediate containers"))
            .param(Param::bool("forcerm").default(false).describe("Remove intermediate containers even on failure"))
            .param(Param::string("platform"))
            .param(Param::string("networkmode").describe("Network for RUN steps: default, none, host"))
            .param(Param::any("extrahosts"))
            .param(Param::any("cachefrom").describe("Images to use as cache sources"))
            .param(Param::int("memory"))
            .param(Param::int("memswap"))
            .param(Param::int("cpushares"))
            .param(Param::int("shmsize"))
            .param(Param::bool("squash"))
            .param(Param::bool("q").default(false).describe("Suppress verbose build output"))
            .param(timeout(600))
            .output(&["data.*.id", "data.*.output", "summary.id"])
            .run(build),
        Action::new("image.commit", "Create an image from a container's changes")
            .kind(Kind::Generic)
            .param(Param::string("container").required())
            .param(Param::string("repo"))
            .param(Param::string("tag"))
            .param(Param::string("comment"))
            .param(Param::string("author"))
            .param(Param::bool("pause").default(true))
            .param(Param::any("changes").describe("Dockerfile instructions: a list, or one per line"))
            .param(Param::object("body").describe("Container config for the image"))
            .output(&["data.*.Id", "summary.image_id"])
            .run(berth_sdk::commit::commit),
        Action::new("image.get", "Save an image (a tar) into the `out` artifact")
            .read_only()
            .param(name())
            .param(Param::string("platform").describe("API >= 1.48"))
            .output(&["data.*.size", "data.*.sha256", "summary.size"])
            .run(get_one),
        Action::new("image.get-all", "Save several images into one tar in the `out` artifact")
            .read_only()
            .param(Param::array("names").required().describe("Image names or IDs"))
            .param(Param::string("platform").describe("API >= 1.48"))
            .output(&["data.*.size", "data.*.sha256", "summary.size"])
            .run(get_all),
        Action::new("image.load", "Load images from the `in` tar artifact, with progress")
            .kind(Kind::Generic)
            .param(Param::bool("quiet").default(false))
            .param(Param::string("platform").describe("API >= 1.48"))
            .param(timeout(300))
            .output(&["data.*.loaded", "summary.loaded"])
            .run(load),
        Action::new("image.build-prune", "Delete builder cache")
            .kind(Kind::Correct)
            .param(Param::int("keep_storage").describe("Bytes of cache to keep"))
            .param(Param::bool("all").default(false).describe("Remove all cache, not only dangling"))
            .param(Param::any("filters"))
            .output(&["data.*.CachesDeleted", "summary.space_reclaimed"])
            .run(build_prune),
        Action::new("image.distribution-inspect", "Manifest and platforms of an image, from its registry")
            .read_only()
            .param(name())
            .output(&["data.*.Descriptor.digest", "data.*.Platforms", "summary.digest"])
            .run(distribution),
        Action::new("image.attestations", "In-toto attestations attached to an image (API >= 1.56)")
            .read_only()
            .param(name())
            .param(Param::string("platform").describe("JSON-encoded OCI platform"))
            .param(Param::any("type").describe("Predicate type URIs"))
            .param(Param::bool("statement").default(false).describe("Include the statement bodies"))
            .output(&["data.*.predicateType", "summary.total_objects"])
            .run(attestations),
    ]
    .into_iter()
    .chain(soar::actions())
    .collect()
}

berth_sdk::family!(name: "image", actions: actions);

pub(crate) fn ipath(name: &str, rest: &str) -> String {
    format!("/images/{}{rest}", berth_sdk::seg(name))
}

fn deadline(p: &Params) -> Result<Instant> {
    let t = p.i64("timeout").unwrap_or(300);
    if !(1..=86400).contains(&t) {
        return Err(Error::bad_params("parameter 'timeout' must be between 1 and 86400 seconds"));
    }
    Ok(Instant::now() + Duration::from_secs(t as u64))
}

pub(crate) fn list(p: &Params) -> Result<Output> {
    if p.get("shared_size").is_some() {
        need_api(1, 42, "parameter 'shared_size' of image.list")?;
    }
    if p.get("manifests").is_some() {
        need_api(1, 47, "parameter 'manifests' of image.list")?;
    }
    let v = get("/images/json")
        .query_opt("all", p.bool("all"))
        .query_json("filters", p.filters("filters")?.as_ref())
        .query_opt("shared-size", p.bool("shared_size"))
        .query_opt("digests", p.bool("digests"))
        .query_opt("manifests", p.bool("manifests"))
        .json_ok()?;
    Ok(Output::listed_json("images", &v))
}

fn inspect(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    let v = get(ipath(name, "/json")).json_ok()?;
    Ok(Output::new(format!("Image {name}: {}", v["Id"].as_str().unwrap_or("?"))).summary("id", v["Id"].clone()).item(v))
}

pub(crate) fn history(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    let v = get(ipath(name, "/history")).json_ok()?;
    Ok(Output::listed_json("history entries", &v))
}

fn tag(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    let (repo, tag) = split_repo_tag(p.req_str("repo")?, p.str("tag"))?;
    let tag = tag.as_str();
    let repo = repo.as_str();
    post(ipath(name, "/tag")).query("repo", repo).query("tag", tag).send_ok()?;
    let image = format!("{repo}:{tag}");
    Ok(Output::one(format!("Tagged {name} as {image}"), json!({"name": name, "image": image})).summary("image", image))
}

/// `repo` may carry its own tag, as the docker CLI allows (`fresh:v9`): it is split out, so the
/// reference reported is the one made. A digest, or a tag given twice, is refused.
fn split_repo_tag(repo: &str, tag: Option<&str>) -> Result<(String, String)> {
    if repo.contains('@') {
        return Err(Error::bad_params(format!("parameter 'repo' ({repo}) holds a digest; a tag target takes a repository and a tag")));
    }
    let (name, own) = match repo.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (repo, None),
    };
    match (own, tag.filter(|t| !t.is_empty())) {
        (Some(a), Some(b)) if a != b => Err(Error::bad_params(format!("parameter 'repo' ({repo}) already has the tag '{a}', and 'tag' says '{b}'"))),
        (Some(t), _) | (None, Some(t)) => Ok((name.to_string(), t.to_string())),
        (None, None) => Ok((name.to_string(), "latest".to_string())),
    }
}

#[cfg(test)]
mod tag_tests {
    #[test]
    fn repo_tags_split_like_the_docker_cli() {
        let s = |r, t| super::split_repo_tag(r, t).map_err(|e| e.to_string());
        assert_eq!(s("fresh:v9", None).unwrap(), ("fresh".into(), "v9".into()));
        assert_eq!(s("fresh", None).unwrap(), ("fresh".into(), "latest".into()));
        assert_eq!(s("reg:5000/a", Some("1")).unwrap(), ("reg:5000/a".into(), "1".into()));
        assert_eq!(s("reg:5000/a:2", None).unwrap(), ("reg:5000/a".into(), "2".into()));
        assert!(s("fresh:v9", Some("x")).unwrap_err().contains("already has the tag"));
        assert!(s("a@sha256:00", None).unwrap_err().contains("digest"));
    }
}

pub(crate) fn remove(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    let v = delete(ipath(name, ""))
        .query_opt("force", p.bool("force"))
        .query_opt("noprune", p.bool("noprune"))
        .json_ok()?;
    let items = v.as_array().cloned().unwrap_or_default();
    let count = |k: &str| items.iter().filter(|i| i.get(k).is_some()).count();
    let (deleted, untagged) = (count("Deleted"), count("Untagged"));
    let mut out = Output::new(format!("Removed {name}: {untagged} untagged, {deleted} deleted"))
        .summary("deleted", deleted)
        .summary("untagged", untagged);
    out.data = items;
    Ok(out)
}

pub(crate) fn prune(p: &Params) -> Result<Output> {
    let v = post("/images/prune").query_json("filters", p.filters("filters")?.as_ref()).json_ok()?;
    Ok(Output::pruned(v, "ImagesDeleted", "image entries"))
}

fn search(p: &Params) -> Result<Output> {
    let term = p.req_str("term")?;
    let v = get("/images/search")
        .query("term", term)
        .query_opt("limit", p.i64("limit"))
        .query_json("filters", p.filters("filters")?.as_ref())
        .registry(registry_of(term))
        .json_ok()?;
    Ok(Output::listed_json("results", &v))
}

fn pull(p: &Params) -> Result<Output> {
    let image = p.req_str("image")?;
    let deadline = deadline(p)?;
    let progress = post("/images/create")
        .query("fromImage", image)
        .query_opt("tag", p.str("tag"))
        .query_opt("platform", p.str("platform"))
        .registry(registry_of(image))
        .stream()?
        .progress("pull", deadline)?;
    let reference = match p.str("tag") {
        Some(t) => format!("{image}:{t}"),
        None => image.to_string(),
    };
    let id = get(ipath(&reference, "/json")).json_ok().map(|v| v["Id"].clone()).unwrap_or(Value::Null);
    Ok(Output::one(
        format!("Pulled {reference} ({} progress messages)", progress.messages),
        json!({"image": reference, "id": id, "statuses": progress.statuses}),
    )
    .summary("id", id)
    .summary("progress_messages", progress.messages))
}

fn import(p: &Params) -> Result<Output> {
    let deadline = deadline(p)?;
    // The tag is folded into `repo`, as the docker CLI does: Podman ignores a separate `tag`.
    let repo = match (p.str("repo"), p.str("tag").filter(|t| !t.is_empty())) {
        (Some(r), Some(t)) => Some(split_repo_tag(r, Some(t)).map(|(n, t)| format!("{n}:{t}"))?),
        (Some(r), None) => Some(r.to_string()),
        (None, Some(_)) => return Err(Error::bad_params("parameter 'tag' needs a 'repo'")),
        (None, None) => None,
    };
    let mut req = post("/images/create")
        .query("fromSrc", "-")
        .query_opt("repo", repo.as_deref())
        .query_opt("message", p.str("message"))
        .query_opt("platform", p.str("platform"));
    for c in p.lines_or_list("changes")? {
        req = req.query("changes", c);
    }
    let progress = req.artifact("in", "application/x-tar").stream()?.progress("import", deadline)?;
    // The engine reports the new image id as the last status.
    let id = progress.statuses.iter().rev().find(|s| s.starts_with("sha256:")).cloned().unwrap_or_default();
    if id.is_empty() {
        return Err(Error::internal("the engine did not report the imported image's id"));
    }
    Ok(Output::one(format!("Imported image {id}"), json!({"id": id, "repo": p.str("repo"), "tag": p.str("tag")})).summary("id", id))
}

fn push(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    if p.str("platform").is_some() {
        need_api(1, 46, "parameter 'platform' of image.push")?;
    }
    let deadline = deadline(p)?;
    let progress = post(ipath(name, "/push"))
        .query_opt("tag", p.str("tag"))
        .query_opt("platform", p.str("platform"))
        .registry(registry_of(name))
        .stream()?
        .progress("push", deadline)?;
    let digest = progress.aux.iter().find_map(|a| a["Digest"].as_str().map(str::to_string)).unwrap_or_default();
    Ok(Output::one(format!("Pushed {name} ({digest})"), json!({"name": name, "digest": digest, "statuses": progress.statuses}))
        .summary("digest", digest))
}

fn build(p: &Params) -> Result<Output> {
    let deadline = deadline(p)?;
    let mut req = post("/build")
        .query_opt("dockerfile", p.str("dockerfile"))
        .query_opt("target", p.str("target"))
        .query("nocache", p.flag("nocache"))
        .query("pull", p.flag("pull"))
        .query("rm", p.bool("rm").unwrap_or(true))
        .query("forcerm", p.flag("forcerm"))
        .query("q", p.flag("q"))
        .query_opt("platform", p.str("platform"))
        .query_opt("networkmode", p.str("networkmode"))
        .query_opt("memory", p.i64("memory"))
        .query_opt("memswap", p.i64("memswap"))
        .query_opt("cpushares", p.i64("cpushares"))
        .query_opt("shmsize", p.i64("shmsize"))
        .query_opt("squash", p.bool("squash"))
        .query_json("buildargs", p.get("buildargs"))
        .query_json("labels", p.get("labels"))
        .query_json("extrahosts", p.get("extrahosts"))
        .query_json("cachefrom", p.get("cachefrom"));
    let tags: Vec<String> = match p.get("tags") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect(),
        Some(_) => return Err(Error::bad_params("parameter 'tags' must be a name:tag or a list of them")),
        None => Vec::new(),
    };
    for t in &tags {
        req = req.query("t", t);
    }
    let progress = req.artifact("in", "application/x-tar").stream()?.progress("build", deadline)?;
    let id = progress
        .aux
        .iter()
        .find_map(|a| a["ID"].as_str().map(str::to_string))
        .or_else(|| {
            // Legacy builder without aux: "Successfully built <short id>".
            progress.output.lines().rev().find_map(|l| l.strip_prefix("Successfully built ").map(|s| s.trim().to_string()))
        })
        .ok_or_else(|| Error::internal("the build finished without reporting an image id"))?;
    Ok(Output::one(format!("Built image {id}"), json!({"id": id, "tags": tags, "output": progress.output})).summary("id", id))
}

fn get_one(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    if p.str("platform").is_some() {
        need_api(1, 48, "parameter 'platform' of image.get")?;
    }
    let saved = get(ipath(name, "/get")).query_opt("platform", p.str("platform")).to_artifact("out")?;
    Ok(saved_output(&[name.to_string()], saved))
}

fn get_all(p: &Params) -> Result<Output> {
    let names: Vec<String> = match p.get("names") {
        Some(Value::Array(a)) if !a.is_empty() => a.iter().filter_map(|n| n.as_str().map(str::to_string)).collect(),
        _ => return Err(Error::bad_params("parameter 'names' must list at least one image")),
    };
    if p.str("platform").is_some() {
        need_api(1, 48, "parameter 'platform' of image.get-all")?;
    }
    let mut req = get("/images/get").query_opt("platform", p.str("platform"));
    for n in &names {
        req = req.query("names", n);
    }
    let saved = req.to_artifact("out")?;
    Ok(saved_output(&names, saved))
}

fn saved_output(names: &[String], saved: berth_sdk::engine::Saved) -> Output {
    Output::one(
        format!("Saved {} into a {}-byte tar", names.join(", "), saved.size),
        json!({"names": names, "size": saved.size, "sha256": saved.sha256, "artifact": saved.name}),
    )
    .summary("size", saved.size)
    .summary("sha256", saved.sha256)
}

fn load(p: &Params) -> Result<Output> {
    let deadline = deadline(p)?;
    if p.str("platform").is_some() {
        need_api(1, 48, "parameter 'platform' of image.load")?;
    }
    let progress = post("/images/load")
        .query("quiet", p.flag("quiet"))
        .query_opt("platform", p.str("platform"))
        .artifact("in", "application/x-tar")
        .stream()?
        .progress("load", deadline)?;
    let loaded: Vec<String> = progress
        .output
        .lines()
        .chain(progress.statuses.iter().map(String::as_str))
        .filter_map(|l| l.strip_prefix("Loaded image: ").or_else(|| l.strip_prefix("Loaded image ID: ")))
        .map(|s| s.trim().to_string())
        .collect();
    Ok(Output::one(format!("Loaded {}", if loaded.is_empty() { "nothing".to_string() } else { loaded.join(", ") }), json!({"loaded": loaded}))
        .summary("loaded", loaded.len()))
}

pub(crate) fn build_prune(p: &Params) -> Result<Output> {
    let v = post("/build/prune")
        .query_opt("keep-storage", p.i64("keep_storage"))
        .query_opt("all", p.bool("all"))
        .query_json("filters", p.filters("filters")?.as_ref())
        .json_ok()?;
    Ok(Output::pruned(v, "CachesDeleted", "build cache entries"))
}

fn distribution(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    let v = get(format!("/distribution/{}/json", berth_sdk::seg(name))).registry(registry_of(name)).json_ok()?;
    let digest = v["Descriptor"]["digest"].clone();
    Ok(Output::new(format!("{name}: {}", digest.as_str().unwrap_or("?"))).summary("digest", digest).item(v))
}

fn attestations(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    need_api(1, 56, "image.attestations")?;
    let mut req = get(ipath(name, "/attestations")).query_opt("platform", p.str("platform")).query_opt("statement", p.bool("statement"));
    match p.get("type") {
        Some(Value::String(t)) => req = req.query("type", t),
        Some(Value::Array(ts)) => {
            for t in ts.iter().filter_map(Value::as_str) {
                req = req.query("type", t);
            }
        }
        _ => {}
    }
    Ok(Output::listed_json("attestations", &req.json_ok()?))
}
