"""A Python family for the SDK's tests: structured errors, an uncaught exception, a stream,
and the gate holding an action to its declared operations."""

import json

from berth_sdk import Denied, EngineFailure, Family, Output, Param, Tar, get, log, seg

family = Family("pyprobe", version="0.3.0")


def _deep(n):
    if n == 0:
        return {}["missing-key"]
    return _deep(n - 1)


@family.action("pyprobe.crash", "Raise an uncaught KeyError three frames down", read_only=True)
def crash(p):
    return _deep(3)


@family.action("pyprobe.refuse", "Raise a structured Denied error", read_only=True)
def refuse(p):
    raise Denied("pyprobe refuses on purpose")


@family.action(
    "pyprobe.inspect-missing",
    "Inspect a container that does not exist: the engine's 404 as a structured error",
    read_only=True,
    params=[Param.string("name", required=True)],
    operations=["ContainerInspect"],
)
def inspect_missing(p):
    return Output.one("found", get(f"/containers/{seg(p.req('name'))}/json").json_ok())


@family.action(
    "pyprobe.events",
    "Read the engine's event stream up to now, through the body-stream resource",
    read_only=True,
    params=[Param.string("since", default="0"), Param.string("until", required=True)],
    operations=["SystemEvents"],
    output=["data.*.Type", "summary.total_objects"],
)
def events(p):
    import_time_json = json  # imported at the top: there is no filesystem at run time
    s = get("/events").query("since", p["since"]).query("until", p["until"]).stream()
    rows = [import_time_json.loads(line) for line in s.lines()]
    log.info(f"{len(rows)} events")
    return Output.listed("events", rows)


@family.action(
    "pyprobe.undeclared",
    "Declares ContainerList, then asks for /info: the host refuses it",
    read_only=True,
    operations=["ContainerList"],
)
def undeclared(p):
    get("/containers/json").json_ok()
    try:
        get("/info").json_ok()
    except Denied as e:
        return Output.one("refused", {"refused": e.message})
    except EngineFailure as e:
        return Output.one("engine", {"engine": str(e)})
    return Output.one("allowed", {"refused": None})


@family.action(
    "pyprobe.version",
    "GET /version, as system.version does: the benchmark's like-for-like call",
    read_only=True,
    operations=["SystemVersion"],
    output=["data.*.Version", "summary.version"],
)
def version(p):
    v = get("/version").json_ok()
    return Output.one(f"Docker {v.get('Version')}", v).with_summary("version", v.get("Version"))


@family.action(
    "pyprobe.bundle",
    "A tar into `out`: a bytes member and the engine's /version streamed into another",
    operations=["SystemVersion"],
    output=["data.*.sha256", "data.*.members"],
)
def bundle(p):
    t = Tar("out")
    note = t.bytes("note.txt", "collected by pyprobe")
    version = t.response("engine/version.json", get("/version"))
    info = t.finish()
    return Output.one("bundled", {"sha256": info.sha256, "size": info.size, "members": {"note.txt": note[1], "engine/version.json": version[1]}})


Actions = family.exports()
