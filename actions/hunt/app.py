"""The `hunt` family (Python): find the containers running an image and report what runs in
them and what changed on their filesystems."""

from berth_sdk import BadParams, EngineFailure, Family, Output, Param, get, seg

family = Family("hunt", version="0.1.0")


def _resolve(image):
    """The image's id and repo digests, or None when the engine does not hold it."""
    try:
        v = get(f"/images/{seg(image)}/json").json_ok()
    except EngineFailure as e:
        if e.status == 404:
            return None
        raise
    return {"id": v.get("Id", ""), "digests": v.get("RepoDigests") or [], "tags": v.get("RepoTags") or []}


def _matches(c, image, resolved):
    """How container `c` matches: by the resolved image's id (a name, id or digest the engine
    holds resolves to it), else by the name it was created from (an image since removed)."""
    if resolved is not None and c.get("ImageID") == resolved["id"]:
        return "image id"
    if c.get("Image") == image:
        return "image name"
    return None


@family.action(
    "hunt.containers-by-image",
    "Find containers running an image (name, id or digest) with their processes and changed files",
    read_only=True,
    params=[
        Param.string("image", required=True, description="Image name, id, or repo digest (name@sha256:...)"),
        Param.bool("all", default=False, description="Include stopped containers"),
        Param.int("max_changes", default=200, description="Changed paths reported per container"),
    ],
    output=[
        "data.*.Id", "data.*.Name", "data.*.Image", "data.*.ImageID", "data.*.State", "data.*.matched_by",
        "data.*.processes", "data.*.changes", "data.*.changes_total",
        "summary.total_objects", "summary.image_id",
    ],
    operations=["ImageInspect", "ContainerList", "ContainerTop", "ContainerChanges"],
)
def containers_by_image(p):
    image = p.req("image")
    max_changes = p.get("max_changes", 200)
    if max_changes < 0:
        raise BadParams("parameter 'max_changes' must be >= 0")
    resolved = _resolve(image)
    containers = get("/containers/json").query("all", bool(p.get("all"))).json_ok() or []
    rows = []
    for c in containers:
        how = _matches(c, image, resolved)
        if how is None:
            continue
        cid = c["Id"]
        row = {
            "Id": cid,
            "Name": (c.get("Names") or ["/"])[0].lstrip("/"),
            "Image": c.get("Image"),
            "ImageID": c.get("ImageID"),
            "State": c.get("State"),
            "matched_by": how,
            "processes": None,
            "changes": [],
            "changes_total": 0,
        }
        if c.get("State") == "running":
            top = get(f"/containers/{seg(cid)}/top").json_ok() or {}
            titles = top.get("Titles") or []
            row["processes"] = [dict(zip(titles, proc)) for proc in top.get("Processes") or []]
        changes = get(f"/containers/{seg(cid)}/changes").json_ok() or []
        kinds = {0: "modified", 1: "added", 2: "deleted"}
        row["changes_total"] = len(changes)
        row["changes"] = [{"Path": ch["Path"], "Kind": kinds.get(ch.get("Kind"), ch.get("Kind"))} for ch in changes[:max_changes]]
        rows.append(row)
    out = Output.listed("containers running " + image, rows)
    return out.with_summary("image_id", resolved["id"] if resolved else None)


Actions = family.exports()
