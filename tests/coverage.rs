//! Coverage of the Engine API: `actions/coverage.tsv` maps every operation of v1.56 to the
//! action that covers it. These tests fail when an operation has no action, when a mapped
//! action does not exist, when the table strays from the spec's route table, or when the
//! actions/COVERAGE.md is stale (`make coverage` rewrites it).

use berth_test_support as common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;

const FAMILIES: &[&str] = &["system", "container", "image", "network", "volume", "swarm", "node", "service", "task", "secret", "config", "plugin", "response"];

struct Row {
    op: String,
    method: String,
    path: String,
    tag: String,
    action: String,
    why: String,
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(workspace().join("actions/coverage.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(f.len() == 5 || f.len() == 6, "coverage.tsv: bad line {l:?}");
            Row { op: f[0].into(), method: f[1].into(), path: f[2].into(), tag: f[3].into(), action: f[4].into(), why: f.get(5).unwrap_or(&"").to_string() }
        })
        .collect()
}

/// The v1.56 routes of the spec's route table that the gate uses (`spec-routes.txt`).
fn spec_routes() -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(workspace().join("host/src/policy/spec-routes.txt")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f[2].split(',').any(|v| v == "1.56").then(|| (f[0].to_string(), f[1].to_string()))
        })
        .collect()
}

#[test]
fn every_operation_of_the_spec_has_an_action() {
    let rows = rows();
    assert_eq!(rows.len(), 108, "Engine API v1.56 has 108 operations");
    let ops: BTreeSet<&str> = rows.iter().map(|r| r.op.as_str()).collect();
    assert_eq!(ops.len(), rows.len(), "an operationId is listed twice");
    let table: BTreeSet<(String, String)> = rows.iter().map(|r| (r.method.clone(), r.path.clone())).collect();
    assert_eq!(table, spec_routes(), "coverage.tsv and the route table disagree about the operations of v1.56");
    // Listing actions needs no engine.
    let b = Berth::families_at(FAMILIES, "unix:///nonexistent/berth-coverage.sock".into());
    let listed = b.run(&["actions", "--json"]);
    let actions: BTreeSet<String> = listed.json()["actions"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().to_string()).collect();
    let mut missing = Vec::new();
    for r in &rows {
        if r.action == "-" {
            assert!(!r.why.is_empty(), "{} is left out without a reason", r.op);
        } else if !actions.contains(&r.action) {
            missing.push(format!("{} -> {}", r.op, r.action));
        }
    }
    assert!(missing.is_empty(), "operations mapped to actions that no family declares: {missing:?}");
    // Every family's action either covers an operation, is a second form of one
    // (image.import: ImageCreate from a tarball) or is a composite built on them.
    let covering: BTreeSet<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    let composites = [
        "system.test-connectivity",
        "container.run",
        "container.exec",
        "container.snapshot",
        "image.import",
        "swarm.join-tokens",
        "node.drain",
        "service.scale",
        "service.rollback",
        "service.wait-converged",
        "secret.rotate",
        "response.quarantine",
        "response.release",
        "response.forensic-bundle",
        "response.hunt",
        "response.timeline",
    ];
    for a in &actions {
        assert!(
            covering.contains(a.as_str()) || composites.contains(&a.as_str()) || !a.contains('.'),
            "action {a} covers no operation and is not a known composite"
        );
    }
}

fn readme_table(rows: &[Row]) -> String {
    let covered = rows.iter().filter(|r| r.action != "-").count();
    let mut by_tag: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in rows {
        let e = by_tag.entry(r.tag.as_str()).or_default();
        e.1 += 1;
        if r.action != "-" {
            e.0 += 1;
        }
    }
    let mut s = format!(
        "**{covered} of {} operations** of Engine API v1.56 have an action (generated from `actions/coverage.tsv` by `make coverage`).\n\n",
        rows.len()
    );
    s.push_str("| tag | covered |\n|---|---|\n");
    for (tag, (c, n)) in &by_tag {
        s.push_str(&format!("| {tag} | {c}/{n} |\n"));
    }
    s.push_str("\n<details><summary>Every operation and its action</summary>\n\n| operationId | method and path | action |\n|---|---|---|\n");
    for r in rows {
        let action = if r.action == "-" { format!("— ({})", r.why) } else { format!("`{}`", r.action) };
        s.push_str(&format!("| {} | `{} {}` | {action} |\n", r.op, r.method, r.path));
    }
    s.push_str("\n</details>\n");
    s
}

#[test]
fn the_coverage_table_is_current() {
    let path = workspace().join("actions/COVERAGE.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (start, end) = ("<!-- coverage:start -->\n", "<!-- coverage:end -->");
    let a = readme.find(start).expect("COVERAGE.md: no coverage markers") + start.len();
    let b = readme.find(end).expect("COVERAGE.md: no coverage end marker");
    let want = readme_table(&rows());
    if readme[a..b] != want {
        if std::env::var_os("BERTH_UPDATE_COVERAGE").is_some() {
            std::fs::write(&path, format!("{}{want}{}", &readme[..a], &readme[b..])).unwrap();
        } else {
            panic!("actions/COVERAGE.md is stale: run `make coverage`");
        }
    }
}

/// Actions that declare their engine operations (contract 0.2) are held to them by the gate;
/// the table must agree: an operation it maps to such an action is among its declarations,
/// and every declared operation is one of the Engine API's.
#[test]
fn declared_operations_agree_with_the_table() {
    let rows = rows();
    let known: BTreeSet<String> = std::fs::read_to_string(workspace().join("host/src/policy/spec-routes.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().nth(3).unwrap().to_string())
        .collect();
    let b = Berth::families_at(FAMILIES, "unix:///nonexistent/berth-coverage.sock".into());
    let listed = b.run(&["actions", "--json"]);
    let mut undeclared = Vec::new();
    for a in listed.json()["actions"].as_array().unwrap() {
        let name = a["name"].as_str().unwrap();
        let ops: BTreeSet<&str> = a["operations"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
        if ops.is_empty() {
            undeclared.push(name.to_string());
            continue;
        }
        for op in &ops {
            assert!(known.contains(*op), "{name} declares {op}, which is no Engine API operation");
        }
        for r in rows.iter().filter(|r| r.action == name) {
            assert!(ops.contains(r.op.as_str()), "coverage.tsv maps {} to {name}, which does not declare it (it declares {ops:?})", r.op);
        }
    }
    // Every shipped action is held to its operations: one that declares none would be open
    // to the whole API (the gate cannot tell what it needs).
    assert!(undeclared.is_empty(), "these actions declare no engine operations: {undeclared:?}");
}

/// Every action of the Splunk SOAR Docker app has a berth alias of the same name that
/// declares the app's data paths (`tests/data/splunk-docker-v3.tsv`, taken from the app's
/// manifest), so a playbook written for the app keeps its data paths.
#[test]
fn every_splunk_soar_docker_action_has_an_alias_with_its_data_paths() {
    let text = std::fs::read_to_string(workspace().join("tests/data/splunk-docker-v3.tsv")).unwrap();
    let mut want: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for l in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let mut f = l.split('\t');
        let action = f.next().unwrap();
        let e = want.entry(action).or_default();
        if let Some(path) = f.next() {
            e.push(path);
        }
    }
    assert_eq!(want.len(), 20, "the app has 20 actions");
    let b = Berth::families_at(FAMILIES, "unix:///nonexistent/berth-coverage.sock".into());
    let listed = b.run(&["describe", "list container", "--json"]);
    listed.expect_code(0);
    let mut problems = Vec::new();
    for (action, paths) in &want {
        let d = b.run(&["describe", action, "--json"]);
        if d.code != 0 {
            problems.push(format!("no alias for '{action}'"));
            continue;
        }
        let declared: BTreeSet<String> = d.json()["output"].as_array().unwrap().iter().map(|o| o.as_str().unwrap().to_string()).collect();
        for p in paths {
            // `action_result.data` (the data list itself) is declared as `action_result.data`
            // or by any path below it.
            let ok = declared.contains(*p) || (*p == "action_result.data" && declared.iter().any(|d| d.starts_with("action_result.data")));
            if !ok {
                problems.push(format!("'{action}' does not declare {p} (it declares {declared:?})"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The comparison with the seed connectors (`tests/data/seed-connectors.tsv`) names what is
/// there: each action exists, each flag is in `berth run --help` and each command in `berth
/// --help`, each config key, query,
/// endpoint and variable is documented, each file exists; what is not in berth says why.
#[test]
fn the_seed_connector_table_names_what_berth_has() {
    let ws = workspace();
    let text = std::fs::read_to_string(ws.join("tests/data/seed-connectors.tsv")).unwrap();
    let host_readme = std::fs::read_to_string(ws.join("host/README.md")).unwrap();
    let b = Berth::families_at(FAMILIES, "unix:///nonexistent/berth-coverage.sock".into());
    let help = b.run(&["run", "--help"]).stdout.clone();
    let commands = b.run(&["--help"]).stdout.clone();
    let mut problems = Vec::new();
    let mut platforms = BTreeSet::new();
    for l in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let f: Vec<&str> = l.split('\t').collect();
        let [platform, seed, berth, note] = f[..] else {
            problems.push(format!("not four columns: {l}"));
            continue;
        };
        platforms.insert(platform);
        let ok = match berth.split_once(':') {
            Some(("action", a)) => b.run(&["describe", a, "--json"]).code == 0,
            Some(("flag", flag)) => help.contains(flag),
            Some(("command", c)) => commands.lines().any(|l| l.trim_start().starts_with(&format!("{c} "))),
            Some(("config", key)) => host_readme.contains(&format!("{key} =")) || host_readme.contains(&format!("{key} = ")),
            Some(("query", q)) => host_readme.contains(&format!("?{q}=")),
            Some(("endpoint", e)) => host_readme.contains(e),
            Some(("env", v)) => host_readme.contains(v),
            Some(("file", p)) => ws.join(p).exists(),
            _ if berth == "-" => note.len() > 20,
            _ => false,
        };
        if !ok {
            problems.push(format!("{platform} / {seed}: '{berth}' is not what berth has ({note})"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(platforms.into_iter().collect::<Vec<_>>(), ["DataFire", "Flint", "FortiSOAR", "Splunk SOAR", "flowground"]);
}
