//! The `image` family: every Image operation of the Engine API (list, inspect, history, tag,
//! remove, prune, search, pull, import, push, build, commit, save, load, build cache,
//! distribution, attestations) and the Splunk SOAR image aliases, on typed params.

mod soar;

use std::time::{Duration, Instant};

use berth_sdk::commit::CommitOpts;
use berth_sdk::engine::need_api;
use berth_sdk::params;
use berth_sdk::prelude::*;
use berth_sdk::stream::registry_of;
use berth_sdk::typed::{Filters, With};

params! {
    pub(crate) struct List {
        all: bool => "Include intermediate images",
        filters: Option<Filters> => "Filters: dangling, label, reference, before, since",
        shared_size: Option<bool> => "Compute SharedSize (API >= 1.42)",
        digests: bool => "Include RepoDigests",
        manifests: Option<bool> => "Include Manifests (API >= 1.47)",
    }
}

params! {
    pub(crate) struct Name {
        name: String => "Image name or ID",
    }
}

params! {
    struct Tag {
        name: String => "Image name or ID",
        repo: String => "Repository, e.g. 127.0.0.1:5000/team/app",
        tag: Option<String> => "Tag (default latest)",
    }
}

params! {
    pub(crate) struct Remove {
        name: String => "Image name or ID",
        force: bool => "Remove even if tagged several times or used by stopped containers",
        noprune: bool => "Keep untagged parents",
    }
}

params! {
    pub(crate) struct Prune {
        filters: Option<Filters> => "Filters: dangling (true: untagged only; false: all unused), until, label",
    }
}

params! {
    struct Search {
        term: String => "Search term; prefix with a registry host to search it",
        limit: Option<i64> => "Maximum results",
        filters: Option<Filters> => "Filters: is-official, stars",
    }
}

params! {
    struct Pull {
        image: String => "Image reference, e.g. 127.0.0.1:5000/app:1",
        tag: Option<String> => "Tag, when not in the reference",
        platform: Option<String> => "os[/arch[/variant]]",
        timeout: i64 = 300 => "Seconds the operation may take (raise --timeout-secs to match)",
    }
}

params! {
    struct Import {
        repo: Option<String> => "Repository for the new image",
        tag: Option<String> => "",
        message: Option<String> => "Commit message",
        changes: Option<Value> => "Dockerfile instructions: a list, or one per line",
        platform: Option<String> => "",
        timeout: i64 = 300 => "Seconds the operation may take (raise --timeout-secs to match)",
    }
}

params! {
    struct Push {
        name: String => "Image name or ID",
        tag: Option<String> => "Push only this tag",
        platform: Option<String> => "Push only this platform (API >= 1.46)",
        timeout: i64 = 300 => "Seconds the operation may take (raise --timeout-secs to match)",
    }
}

params! {
    struct Build {
        dockerfile: Option<String> => "Path of the Dockerfile in the context (default Dockerfile)",
        tags: Option<Value> => "Tags: a list or one name:tag",
        buildargs: Option<Map<String, Value>> => "Build arguments {\"K\": \"V\"}",
        labels: Option<Map<String, Value>> => "Labels {\"k\": \"v\"}",
        target: Option<String> => "Build stage to stop at",
        nocache: bool => "",
        pull: bool => "Always pull newer base images",
        rm: bool = true => "Remove intermediate containers",
        forcerm: bool => "Remove intermediate containers even on failure",
        platform: Option<String> => "",
        networkmode: Option<String> => "Network for RUN steps: default, none, host",
        extrahosts: Option<Value> => "",
        cachefrom: Option<Value> => "Images to use as cache sources",
        memory: Option<i64> => "",
        memswap: Option<i64> => "",
        cpushares: Option<i64> => "",
        shmsize: Option<i64> => "",
        squash: Option<bool> => "",
        q: bool => "Suppress verbose build output",
        timeout: i64 = 600 => "Seconds the operation may take (raise --timeout-secs to match)",
    }
}

params! {
    struct Commit {
        container: String => "Container ID or name",
        body: Option<Map<String, Value>> => "Container config for the image",
    }
}

params! {
    struct GetOne {
        name: String => "Image name or ID",
        platform: Option<String> => "API >= 1.48",
    }
}

params! {
    struct GetAll {
        names: Vec<Value> => "Image names or IDs",
        platform: Option<String> => "API >= 1.48",
    }
}

params! {
    struct Load {
        quiet: bool => "",
        platform: Option<String> => "API >= 1.48",
        timeout: i64 = 300 => "Seconds the operation may take (raise --timeout-secs to match)",
    }
}

params! {
    pub(crate) struct BuildPrune {
        keep_storage: Option<i64> => "Bytes of cache to keep",
        all: bool => "Remove all cache, not only dangling",
        filters: Option<Filters> => "",
    }
}

params! {
    struct Attestations {
        name: String => "Image name or ID",
        platform: Option<String> => "JSON-encoded OCI platform",
        r#type: Option<Value> => "Predicate type URIs",
        statement: bool => "Include the statement bodies",
    }
}

fn actions() -> Vec<Action> {
    vec![
        Action::new("image.list", "List images")
            .read_only()
            .output(&["data.*.Id", "data.*.RepoTags", "data.*.Created", "data.*.Size", "summary.total_objects"])
            .ops(&["ImageList"])
            .typed(list),
        Action::new("image.inspect", "Low-level information on an image")
            .read_only()
            .output(&["data.*.Id", "data.*.RepoTags", "data.*.Config", "summary.id"])
            .ops(&["ImageInspect"])
            .typed(inspect),
        Action::new("image.history", "Parent layers of an image")
            .read_only()
            .output(&["data.*.Id", "data.*.Tags", "data.*.CreatedBy", "data.*.Created", "data.*.Size", "data.*.Comment", "summary.total_objects"])
            .ops(&["ImageHistory"])
            .typed(history),
        Action::new("image.tag", "Tag an image").kind(Kind::Generic).output(&["data.*.image", "summary.image"]).ops(&["ImageTag"]).typed(tag),
        Action::new("image.remove", "Remove an image")
            .kind(Kind::Correct)
            .output(&["data.*.Untagged", "data.*.Deleted", "summary.deleted", "summary.untagged"])
            .ops(&["ImageDelete"])
            .typed(remove),
        Action::new("image.prune", "Delete unused images (dangling by default)")
            .kind(Kind::Correct)
            .output(&["data.*.ImagesDeleted", "summary.total_objects", "summary.space_reclaimed"])
            .ops(&["ImagePrune"])
            .typed(prune),
        Action::new("image.search", "Search a registry for images")
            .read_only()
            .output(&["data.*.name", "data.*.description", "data.*.star_count", "summary.total_objects"])
            .ops(&["ImageSearch"])
            .typed(search),
        Action::new("image.pull", "Pull an image from a registry, with progress")
            .kind(Kind::Generic)
            .output(&["data.*.image", "data.*.statuses", "summary.id"])
            .ops(&["ImageCreate", "ImageInspect"])
            .typed(pull),
        Action::new("image.import", "Create an image from the `in` rootfs tar artifact")
            .kind(Kind::Generic)
            .output(&["data.*.id", "summary.id"])
            .ops(&["ImageCreate"])
            .typed(import),
        Action::new("image.push", "Push an image to a registry, with progress")
            .kind(Kind::Generic)
            .output(&["data.*.digest", "summary.digest"])
            .ops(&["ImagePush"])
            .typed(push),
        Action::new("image.build", "Build an image from the `in` artifact (a tar, or a directory the CLI packs)")
            .kind(Kind::Generic)
            .output(&["data.*.id", "data.*.output", "summary.id"])
            .ops(&["ImageBuild"])
            .typed(build),
        Action::new("image.commit", "Create an image from a container's changes")
            .kind(Kind::Generic)
            .output(&["data.*.Id", "summary.image_id"])
            .ops(&["ImageCommit"])
            .typed(commit),
        Action::new("image.get", "Save an image (a tar) into the `out` artifact")
            .read_only()
            .output(&["data.*.size", "data.*.sha256", "summary.size"])
            .ops(&["ImageGet"])
            .typed(get_one),
        Action::new("image.get-all", "Save several images into one tar in the `out` artifact")
            .read_only()
            .output(&["data.*.size", "data.*.sha256", "summary.size"])
            .ops(&["ImageGetAll"])
            .typed(get_all),
        Action::new("image.load", "Load images from the `in` tar artifact, with progress")
            .kind(Kind::Generic)
            .output(&["data.*.loaded", "summary.loaded"])
            .ops(&["ImageLoad"])
            .typed(load),
        Action::new("image.build-prune", "Delete builder cache")
            .kind(Kind::Correct)
            .output(&["data.*.CachesDeleted", "summary.space_reclaimed"])
            .ops(&["BuildPrune"])
            .typed(build_prune),
        Action::new("image.distribution-inspect", "Manifest and platforms of an image, from its registry")
            .read_only()
            .output(&["data.*.Descriptor.digest", "data.*.Platforms", "summary.digest"])
            .ops(&["DistributionInspect"])
            .typed(distribution),
        Action::new("image.attestations", "In-toto attestations attached to an image (API >= 1.56)")
            .read_only()
            .output(&["data.*.predicateType", "summary.total_objects"])
            .ops(&["ImageAttestations"])
            .typed(attestations),
    ]
    .into_iter()
    .chain(soar::actions())
    .collect()
}

berth_sdk::family!(name: "image", actions: actions);

pub(crate) fn ipath(name: &str, rest: &str) -> String {
    format!("/images/{}{rest}", berth_sdk::seg(name))
}

fn deadline(t: i64) -> Result<Instant> {
    if !(1..=86400).contains(&t) {
        return Err(Error::bad_params("parameter 'timeout' must be between 1 and 86400 seconds"));
    }
    Ok(Instant::now() + Duration::from_secs(t as u64))
}

pub(crate) fn list(p: List) -> Result<Output> {
    if p.shared_size.is_some() {
        need_api(1, 42, "parameter 'shared_size' of image.list")?;
    }
    if p.manifests.is_some() {
        need_api(1, 47, "parameter 'manifests' of image.list")?;
    }
    let v = get("/images/json")
        .query("all", p.all)
        .query_json("filters", Filters::as_query(&p.filters))
        .query_opt("shared-size", p.shared_size)
        .query("digests", p.digests)
        .query_opt("manifests", p.manifests)
        .json_ok()?;
    Ok(Output::listed_json("images", &v))
}

fn inspect(p: Name) -> Result<Output> {
    let name = p.name.as_str();
    let v = get(ipath(name, "/json")).json_ok()?;
    Ok(Output::new(format!("Image {name}: {}", v["Id"].as_str().unwrap_or("?"))).summary("id", v["Id"].clone()).item(v))
}

pub(crate) fn history(p: Name) -> Result<Output> {
    let name = p.name.as_str();
    let v = get(ipath(name, "/history")).json_ok()?;
    Ok(Output::listed_json("history entries", &v))
}

fn tag(p: Tag) -> Result<Output> {
    let name = p.name.as_str();
    let (repo, tag) = split_repo_tag(&p.repo, p.tag.as_deref())?;
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
    let (name, tag) = match (own, tag.filter(|t| !t.is_empty())) {
        (Some(a), Some(b)) if a != b => return Err(Error::bad_params(format!("parameter 'repo' ({repo}) already has the tag '{a}', and 'tag' says '{b}'"))),
        (Some(t), _) | (None, Some(t)) => (name.to_string(), t.to_string()),
        (None, None) => (name.to_string(), "latest".to_string()),
    };
    reference_ok(&name, &tag)
        .map_err(|why| Error::bad_params(format!("parameter 'repo': '{repo}' is not a valid image reference ({why}), as the docker CLI says")))?;
    Ok((name, tag))
}

/// A repository name and tag the engine and the docker CLI accept: a registry host (with its
/// port) may lead; every other path component is lower-case letters and digits joined by
/// `.`, `_`, `__` or dashes; the tag is up to 128 of `[A-Za-z0-9_.-]`, not starting with `.`
/// or `-`. (`x:v9:v8` is refused, where the engine would tag `x:v8`.)
fn reference_ok(name: &str, tag: &str) -> std::result::Result<(), &'static str> {
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 && (parts[0].contains(['.', ':']) || parts[0] == "localhost") {
        let host = parts.remove(0);
        let (h, port) = host.split_once(':').unwrap_or((host, ""));
        if h.is_empty() || !h.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') || !port.chars().all(|c| c.is_ascii_digit()) {
            return Err("bad registry host");
        }
    }
    let component = |c: &str| {
        !c.is_empty()
            && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '.' || ch == '_' || ch == '-')
            && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
            && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
    };
    if parts.is_empty() || !parts.iter().all(|c| component(c)) {
        return Err("bad repository name");
    }
    let tag_ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        && !tag.starts_with(['.', '-']);
    if !tag_ok {
        return Err("bad tag");
    }
    Ok(())
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
        // What the docker CLI refuses as an invalid reference format.
        for bad in ["x:v9:v8", "Fresh", "a//b", "-a", "a:-t", "reg:port/a"] {
            assert!(s(bad, None).unwrap_err().contains("not a valid image reference"), "{bad}");
        }
        assert!(s("localhost/a_b/c.d-e", Some("v1.2_x")).is_ok());
    }
}

pub(crate) fn remove(p: Remove) -> Result<Output> {
    let name = p.name.as_str();
    let v = delete(ipath(name, "")).query("force", p.force).query("noprune", p.noprune).json_ok()?;
    let items = v.as_array().cloned().unwrap_or_default();
    let count = |k: &str| items.iter().filter(|i| i.get(k).is_some()).count();
    let (deleted, untagged) = (count("Deleted"), count("Untagged"));
    let mut out = Output::new(format!("Removed {name}: {untagged} untagged, {deleted} deleted")).summary("deleted", deleted).summary("untagged", untagged);
    out.data = items;
    Ok(out)
}

pub(crate) fn prune(p: Prune) -> Result<Output> {
    let v = post("/images/prune").query_json("filters", Filters::as_query(&p.filters)).json_ok()?;
    Ok(Output::pruned(v, "ImagesDeleted", "image entries"))
}

fn search(p: Search) -> Result<Output> {
    let term = p.term.as_str();
    let v = get("/images/search")
        .query("term", term)
        .query_opt("limit", p.limit)
        .query_json("filters", Filters::as_query(&p.filters))
        .registry(registry_of(term))
        .json_ok()?;
    Ok(Output::listed_json("results", &v))
}

fn pull(p: Pull) -> Result<Output> {
    let image = p.image.as_str();
    let deadline = deadline(p.timeout)?;
    let progress = post("/images/create")
        .query("fromImage", image)
        .query_opt("tag", p.tag.as_deref())
        .query_opt("platform", p.platform.as_deref())
        .registry(registry_of(image))
        .stream()?
        .progress("pull", deadline)?;
    let reference = match p.tag.as_deref() {
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

fn import(p: Import) -> Result<Output> {
    let deadline = deadline(p.timeout)?;
    // The tag is folded into `repo`, as the docker CLI does: Podman ignores a separate `tag`.
    let repo = match (p.repo.as_deref(), p.tag.as_deref()) {
        (Some(r), Some(t)) => Some(split_repo_tag(r, Some(t)).map(|(n, t)| format!("{n}:{t}"))?),
        (Some(r), None) => Some(r.to_string()),
        (None, Some(_)) => return Err(Error::bad_params("parameter 'tag' needs a 'repo'")),
        (None, None) => None,
    };
    let mut req = post("/images/create")
        .query("fromSrc", "-")
        .query_opt("repo", repo.as_deref())
        .query_opt("message", p.message.as_deref())
        .query_opt("platform", p.platform.as_deref());
    for c in berth_sdk::params::lines_or_list(p.changes.as_ref(), "changes")? {
        req = req.query("changes", c);
    }
    let progress = req.artifact("in", "application/x-tar").stream()?.progress("import", deadline)?;
    // The engine reports the new image id as the last status.
    let id = progress.statuses.iter().rev().find(|s| s.starts_with("sha256:")).cloned().unwrap_or_default();
    if id.is_empty() {
        return Err(Error::internal("the engine did not report the imported image's id"));
    }
    Ok(Output::one(format!("Imported image {id}"), json!({"id": id, "repo": p.repo, "tag": p.tag})).summary("id", id))
}

fn push(p: Push) -> Result<Output> {
    let name = p.name.as_str();
    if p.platform.is_some() {
        need_api(1, 46, "parameter 'platform' of image.push")?;
    }
    let deadline = deadline(p.timeout)?;
    let progress = post(ipath(name, "/push"))
        .query_opt("tag", p.tag.as_deref())
        .query_opt("platform", p.platform.as_deref())
        .registry(registry_of(name))
        .stream()?
        .progress("push", deadline)?;
    let digest = progress.aux.iter().find_map(|a| a["Digest"].as_str().map(str::to_string)).unwrap_or_default();
    Ok(Output::one(format!("Pushed {name} ({digest})"), json!({"name": name, "digest": digest, "statuses": progress.statuses})).summary("digest", digest))
}

fn build(p: Build) -> Result<Output> {
    let deadline = deadline(p.timeout)?;
    let (buildargs, labels) = (p.buildargs.map(Value::Object), p.labels.map(Value::Object));
    let mut req = post("/build")
        .query_opt("dockerfile", p.dockerfile.as_deref())
        .query_opt("target", p.target.as_deref())
        .query("nocache", p.nocache)
        .query("pull", p.pull)
        .query("rm", p.rm)
        .query("forcerm", p.forcerm)
        .query("q", p.q)
        .query_opt("platform", p.platform.as_deref())
        .query_opt("networkmode", p.networkmode.as_deref())
        .query_opt("memory", p.memory)
        .query_opt("memswap", p.memswap)
        .query_opt("cpushares", p.cpushares)
        .query_opt("shmsize", p.shmsize)
        .query_opt("squash", p.squash)
        .query_json("buildargs", buildargs.as_ref())
        .query_json("labels", labels.as_ref())
        .query_json("extrahosts", p.extrahosts.as_ref())
        .query_json("cachefrom", p.cachefrom.as_ref());
    let tags: Vec<String> = match &p.tags {
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

fn get_one(p: GetOne) -> Result<Output> {
    let name = p.name.as_str();
    if p.platform.is_some() {
        need_api(1, 48, "parameter 'platform' of image.get")?;
    }
    let saved = get(ipath(name, "/get")).query_opt("platform", p.platform.as_deref()).to_artifact("out")?;
    Ok(saved_output(&[name.to_string()], saved))
}

fn get_all(p: GetAll) -> Result<Output> {
    let names: Vec<String> = p.names.iter().filter_map(|n| n.as_str().map(str::to_string)).collect();
    if names.is_empty() {
        return Err(Error::bad_params("parameter 'names' must list at least one image"));
    }
    if p.platform.is_some() {
        need_api(1, 48, "parameter 'platform' of image.get-all")?;
    }
    let mut req = get("/images/get").query_opt("platform", p.platform.as_deref());
    for n in &names {
        req = req.query("names", n);
    }
    let saved = req.to_artifact("out")?;
    Ok(saved_output(&names, saved))
}

fn commit(With(p, opts): With<Commit, CommitOpts>) -> Result<Output> {
    berth_sdk::commit::commit(&p.container, opts, p.body.map(Value::Object).as_ref())
}

fn saved_output(names: &[String], saved: berth_sdk::engine::Saved) -> Output {
    Output::one(
        format!("Saved {} into a {}-byte tar", names.join(", "), saved.size),
        json!({"names": names, "size": saved.size, "sha256": saved.sha256, "artifact": saved.name}),
    )
    .summary("size", saved.size)
    .summary("sha256", saved.sha256)
}

fn load(p: Load) -> Result<Output> {
    let deadline = deadline(p.timeout)?;
    if p.platform.is_some() {
        need_api(1, 48, "parameter 'platform' of image.load")?;
    }
    let progress = post("/images/load")
        .query("quiet", p.quiet)
        .query_opt("platform", p.platform.as_deref())
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

pub(crate) fn build_prune(p: BuildPrune) -> Result<Output> {
    let v =
        post("/build/prune").query_opt("keep-storage", p.keep_storage).query("all", p.all).query_json("filters", Filters::as_query(&p.filters)).json_ok()?;
    Ok(Output::pruned(v, "CachesDeleted", "build cache entries"))
}

fn distribution(p: Name) -> Result<Output> {
    let name = p.name.as_str();
    let v = get(format!("/distribution/{}/json", berth_sdk::seg(name))).registry(registry_of(name)).json_ok()?;
    let digest = v["Descriptor"]["digest"].clone();
    Ok(Output::new(format!("{name}: {}", digest.as_str().unwrap_or("?"))).summary("digest", digest).item(v))
}

fn attestations(p: Attestations) -> Result<Output> {
    let name = p.name.as_str();
    need_api(1, 56, "image.attestations")?;
    let mut req = get(ipath(name, "/attestations")).query_opt("platform", p.platform.as_deref()).query("statement", p.statement);
    match &p.r#type {
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
