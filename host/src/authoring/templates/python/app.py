"""The `{{name}}` family: berth actions in Python (scaffolded by `berth new`).

Import what an action needs here, at the top: there is no filesystem at run time."""

from berth_sdk import Family, Output, Param, get

family = Family("{{name}}", version="0.1.0")


@family.action(
    "{{name}}.summary",
    "Engine version and the containers it runs",
    read_only=True,
    params=[Param.bool("all", default=False, description="Count stopped containers too")],
    output=["data.*.version", "data.*.containers", "data.*.names", "summary.containers"],
    operations=["SystemVersion", "ContainerList"],
)
def summary(p):
    version = get("/version").json_ok()
    containers = get("/containers/json").query("all", bool(p.get("all"))).json_ok() or []
    names = [c["Names"][0] for c in containers]
    out = Output.one(f"engine {version['Version']} runs {len(names)} containers",
                     {"version": version["Version"], "containers": len(names), "names": names})
    return out.with_summary("containers", len(names))


Actions = family.exports()
