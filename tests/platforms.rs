//! berth serve as the SOAR platforms use it: its OpenAPI documents checked by a well-kept
//! validator, a DataFire connector generated from a tenant's document and run against the real
//! engine, raw Engine API answers, and input artifacts uploaded for actions to read.

use berth_test_support as common;

use std::path::Path;
use std::process::Command;

use common::serve::{hash, http, http_bytes, Serve};
use common::*;
use http::Method;
use serde_json::{json, Value};
use sha2::Digest;

fn families() -> Vec<(&'static str, std::path::PathBuf)> {
    ["system", "container", "image", "volume"]
        .iter()
        .map(|f| (Box::leak(format!("{f}.wasm").into_boxed_str()) as &str, wasm(&format!("berth-action-{f}"))))
        .collect()
}

fn tenants() -> String {
    format!(
        "[[tenant]]\nname = \"ops\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"system.*\", \"container.*\", \"image.*\", \"volume.*\"]\nartifacts_dir = \"{{dir}}/ops\"\nrequest_engines = [\"127.0.0.0/8\"]\n[tenant.limits]\nartifact_bytes = 67108864\n\n\
         [[tenant]]\nname = \"viewer\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"container.*\"]\nread_only = true\n\n\
         [[tenant]]\nname = \"tiny\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"system.*\"]\nartifacts_dir = \"{{dir}}/tiny\"\n[tenant.limits]\nrequests_per_minute = 1\n",
        hash("ops-token"),
        hash("viewer-token"),
        hash("tiny-token")
    )
}

fn validate(doc: &Value, dir: &Path, name: &str) {
    let file = dir.join(name);
    std::fs::write(&file, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let out = Command::new(toolchain("clients/py/bin/openapi-spec-validator")).arg(&file).output().unwrap();
    assert!(out.status.success(), "{name}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

fn operation_ids(doc: &Value) -> std::collections::BTreeSet<String> {
    doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|ops| ops.as_object().unwrap().values().filter_map(|o| o["operationId"].as_str().map(str::to_string)))
        .collect()
}

#[test]
fn openapi_documents_validate_and_hold_one_operation_per_allowed_action() {
    let s = Serve::start(&families(), &tenants());
    let dir = tempfile::tempdir().unwrap();
    let (st, generic) = http(&s.addr, "GET", "/v1/openapi.json", None, None);
    assert_eq!((st, generic["openapi"].as_str()), (200, Some("3.1.0")));
    validate(&generic, dir.path(), "generic.json");
    assert!(generic["paths"].get("/v1/actions/{action}").is_some());

    let (st, ops) = http(&s.addr, "GET", "/v1/openapi.json", Some("ops-token"), None);
    assert_eq!(st, 200);
    validate(&ops, dir.path(), "ops.json");
    let (_, v2) = http(&s.addr, "GET", "/v1/openapi.json?version=2", Some("ops-token"), None);
    assert_eq!(v2["swagger"], "2.0");
    validate(&v2, dir.path(), "ops-v2.json");
    assert_eq!(http(&s.addr, "GET", "/v1/openapi.json?version=9", Some("ops-token"), None).0, 400);
    assert_eq!(http(&s.addr, "GET", "/v1/openapi.json", Some("wrong-token"), None).0, 401);

    // One operation per action the tenant may run, named by it, its params as the body.
    let (_, catalog) = http(&s.addr, "GET", "/v1/actions", Some("ops-token"), None);
    let allowed: std::collections::BTreeSet<String> =
        catalog["actions"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().to_string()).filter(|n| !n.contains(' ')).collect();
    let ids = operation_ids(&ops);
    assert!(allowed.iter().all(|a| ids.contains(a)), "missing: {:?}", allowed.difference(&ids).collect::<Vec<_>>());
    assert!(ids.iter().filter(|i| !i.starts_with("berth.")).all(|i| allowed.contains(i)));
    assert_eq!(operation_ids(&v2), ids, "the same operations in both versions");
    let list = &ops["paths"]["/v1/actions/container.list"]["post"];
    assert_eq!(list["operationId"], "container.list");
    assert_eq!(list["requestBody"]["content"]["application/json"]["schema"]["properties"]["all"]["type"], "boolean");
    assert_eq!(
        list["requestBody"]["content"]["application/json"]["schema"]["properties"]["_engine"]["required"],
        json!(["host"]),
        "request_engines: _engine is documented"
    );
    let data = &list["responses"]["200"]["content"]["application/json"]["schema"]["allOf"][1]["properties"]["data"];
    assert_eq!(data["type"], "array", "{list}");
    assert!(data["items"]["properties"].get("Id").is_some(), "the action's data paths: {data}");
    assert_eq!(ops["servers"][0]["url"], "http://berth");
    for path in ["/v1/jobs/{id}", "/v1/artifacts/{name}"] {
        assert!(ops["paths"].get(path).is_some(), "{path}");
    }
    // A read-only tenant's document has its read-only actions only.
    let (_, viewer) = http(&s.addr, "GET", "/v1/openapi.json", Some("viewer-token"), None);
    let vids = operation_ids(&viewer);
    assert!(vids.contains("container.list") && vids.contains("container.inspect"), "{vids:?}");
    assert!(!vids.contains("container.remove") && !vids.contains("system.ping") && !vids.contains("image.list"), "{vids:?}");
}

/// DataFire 2.27.1 integrates the tenant's document (Swagger 2.0, which its `--openapi` reads)
/// and runs actions through the generated connector: results, a raw Engine API answer, the
/// engine's 404, and an async job polled to its end.
#[test]
fn a_datafire_connector_generated_from_the_document_runs_actions() {
    let s = Serve::start(&families(), &tenants());
    let project = tempfile::tempdir().unwrap();
    let p = project.path();
    // The document as a platform's operator fetches it, from the address the connector will use.
    let out = Command::new("curl")
        .args(["-sf", "-H", "Authorization: Bearer ops-token", "-o"])
        .arg(p.join("berth.json"))
        .arg(format!("http://{}/v1/openapi.json?version=2", s.addr))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The generated integration requires `datafire` from the project's node_modules.
    std::os::unix::fs::symlink(toolchain("clients/js/node_modules"), p.join("node_modules")).unwrap();
    let datafire = toolchain("clients/js/node_modules/.bin/datafire");
    let out = Command::new(&datafire).current_dir(p).args(["integrate", "--name", "berth", "--openapi", "berth.json"]).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    // The CLI, with the token as the integration's account.
    let out = Command::new(&datafire).current_dir(p).args(["run", "berth/system.ping", "--accounts.berth.bearer", "Bearer ops-token"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("success") && text.contains("1.41"), "{text}{}", String::from_utf8_lossy(&out.stderr));

    let name = unique("df");
    let (st, body) = api(
        Method::POST,
        "/containers/create",
        &format!("name={name}"),
        Some(("application/json", json!({"Image": test_image(), "Cmd": ["sleep", "300"], "Labels": {"made-by": "datafire-test"}}).to_string().into_bytes())),
    );
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<Value>(&body).unwrap()["Id"].as_str().unwrap().to_string();
    std::fs::write(
        p.join("run.js"),
        r#"
const inst = require('./integrations/berth').create({ bearer: 'Bearer ' + process.env.TOKEN });
const berth = new Proxy({}, { get: (_, name) => name.split('.').reduce((o, k) => o[k], inst) });
const failure = (e) => ({ status: e.statusCode, body: JSON.parse(e.body) });
(async () => {
  const out = {};
  out.list = await berth['container.list']({ body: { all: true, filters: { label: ['made-by=datafire-test'] } } });
  out.raw = await berth['container.inspect']({ body: { id: process.env.CID }, raw: true });
  out.missing = await berth['container.inspect']({ body: { id: 'no-such-container-df' } }).catch(failure);
  out.missingRaw = await berth['container.inspect']({ body: { id: 'no-such-container-df' }, raw: true }).catch(failure);
  out.job = await berth['container.wait']({ body: { id: process.env.CID, timeout: 1 }, async: true });
  for (let i = 0; i < 100 && !out.done; i++) {
    const j = await berth['berth.job']({ id: out.job.job });
    if (j.status !== 'running') out.done = j;
    else await new Promise((r) => setTimeout(r, 100));
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error('FAILED', e); process.exit(1); });
"#,
    )
    .unwrap();
    let out = Command::new("node").current_dir(p).arg("run.js").env("TOKEN", "ops-token").env("CID", &id).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["list"]["status"], "success", "{r:#}");
    assert_eq!(r["list"]["data"].as_array().unwrap().iter().map(|c| c["Id"].as_str().unwrap()).collect::<Vec<_>>(), [id.as_str()], "{r:#}");
    // Raw: the engine's own inspect, exactly as the Engine API answers it.
    let engine_view = api_json(Method::GET, &format!("/containers/{id}/json"), "");
    assert_eq!(r["raw"]["Id"], engine_view["Id"]);
    assert_eq!(r["raw"]["Config"], engine_view["Config"]);
    assert!(r["raw"].get("status").is_none(), "no action_result around it: {r:#}");
    assert_eq!(r["missing"]["status"], 502);
    assert_eq!(r["missing"]["body"]["error"], json!({"kind": "engine", "status": 404}));
    assert_eq!(r["missingRaw"], json!({"status": 404, "body": {"message": "No such container: no-such-container-df"}}));
    assert_eq!(r["done"]["status"], "done", "{r:#}");
    assert_eq!(r["done"]["action"], "container.wait", "{r:#}");
    api(Method::DELETE, &format!("/containers/{id}"), "force=true", None);
}

/// An input artifact uploaded with PUT /v1/artifacts/NAME: streamed to disk, hashed, capped,
/// within the tenant's quota, audited, never replacing a file; then read by an action.
#[test]
fn uploaded_artifacts_are_capped_hashed_audited_and_read_by_actions() {
    let s = Serve::start(&families(), &tenants());
    let (st, tar) = api(Method::GET, &format!("/images/{}/get", test_image()), "", None);
    assert_eq!(st, 200);
    let want = hex::encode(sha2::Sha256::digest(&tar));
    let (st, body) = http_bytes(&s.addr, "PUT", "/v1/artifacts/image.tar", Some("ops-token"), "application/octet-stream", &tar);
    let up: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(st, 201, "{up}");
    assert_eq!((up["size"].as_u64(), up["sha256"].as_str()), (Some(tar.len() as u64), Some(want.as_str())));
    let stored = s.path().join("ops/image.tar");
    assert_eq!(std::fs::read(&stored).unwrap(), tar);
    let rec = s.audit().into_iter().find(|r| r["action"] == "artifact.upload").expect("the upload is audited");
    assert_eq!((rec["artifact"].as_str(), rec["sha256"].as_str(), rec["tenant"].as_str()), (Some("image.tar"), Some(want.as_str()), Some("ops")));

    // The action reads it as its input artifact.
    let (st, j) = http(&s.addr, "POST", "/v1/actions/image.load?in=image.tar", Some("ops-token"), Some("{}"));
    assert_eq!(st, 200, "{j}");
    assert!(j.to_string().contains(test_image()), "{j}");

    // Never replaces; plain names only; another tenant's token finds no directory.
    let (st, _) = http_bytes(&s.addr, "PUT", "/v1/artifacts/image.tar", Some("ops-token"), "application/octet-stream", b"other");
    assert_eq!(st, 409);
    assert_eq!(std::fs::read(&stored).unwrap(), tar, "the first upload is intact");
    for bad in ["..%2Fescape", ".hidden", "a%2Fb"] {
        let (st, _) = http_bytes(&s.addr, "PUT", &format!("/v1/artifacts/{bad}"), Some("ops-token"), "application/octet-stream", b"x");
        assert!(st == 400 || st == 404, "{bad}: {st}");
    }
    assert!(!s.path().join("escape").exists());
    assert_eq!(http_bytes(&s.addr, "PUT", "/v1/artifacts/x.tar", Some("viewer-token"), "application/octet-stream", b"x").0, 404);
    assert_eq!(http_bytes(&s.addr, "PUT", "/v1/artifacts/x.tar", None, "application/octet-stream", b"x").0, 401);

    // Uploads count against the tenant's request rate.
    assert_eq!(http_bytes(&s.addr, "PUT", "/v1/artifacts/a.bin", Some("tiny-token"), "application/octet-stream", b"a").0, 201);
    assert_eq!(http_bytes(&s.addr, "PUT", "/v1/artifacts/b.bin", Some("tiny-token"), "application/octet-stream", b"b").0, 429);

    // Over the cap (64 MiB here): refused, and nothing of it is left.
    let big = vec![0u8; 64 * 1024 * 1024 + 1];
    let (st, body) = http_bytes(&s.addr, "PUT", "/v1/artifacts/big.bin", Some("ops-token"), "application/octet-stream", &big);
    assert_eq!(st, 413, "{}", String::from_utf8_lossy(&body));
    let left: Vec<_> = std::fs::read_dir(s.path().join("ops")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left, ["image.tar"], "no partial upload is left: {left:?}");
}

/// `?raw=true` answers in the Engine API's own shapes, for lists and errors too.
#[test]
fn raw_answers_are_the_engine_apis_own() {
    let s = Serve::start(&families(), &tenants());
    let (st, j) = http(&s.addr, "POST", "/v1/actions/system.version?raw=true", Some("ops-token"), Some("{}"));
    assert_eq!(st, 200);
    let engine = api_json(Method::GET, "/version", "");
    assert_eq!(j["ApiVersion"], engine["ApiVersion"], "{j}");
    let (st, j) = http(&s.addr, "POST", "/v1/actions/volume.list?raw=true", Some("ops-token"), Some("{}"));
    assert_eq!(st, 200);
    assert!(j.is_array(), "a list stays a list: {j}");
    let (st, j) = http(&s.addr, "POST", "/v1/actions/volume.list?raw=true", Some("ops-token"), Some(r#"{"nope": 1}"#));
    assert_eq!(st, 400);
    assert!(j["message"].as_str().unwrap().contains("nope"), "{j}");
    assert_eq!(http(&s.addr, "POST", "/v1/actions/system.ping?raw=true&async=true", Some("ops-token"), Some("{}")).0, 400);
}

/// A tenant's engine behind an authenticating proxy: its credentials in the tenant config (a
/// file), sent on every call, never in the log or the audit.
#[test]
fn a_tenants_engine_behind_an_authenticating_proxy() {
    use base64::Engine as _;
    let proxy = common::authproxy::AuthProxy::start(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("soar:s3cr3t-pw")));
    let secrets = tempfile::tempdir().unwrap();
    let pw = secrets.path().join("pw");
    std::fs::write(&pw, "s3cr3t-pw\n").unwrap();
    let tenants = format!(
        "[[tenant]]\nname = \"forti\"\ntoken_sha256 = \"{}\"\nallow = [\"system.*\", \"container.*\"]\n[tenant.assets.prod]\nengine = \"tcp://{}\"\nauth = {{ username = \"soar\", password_file = \"{}\" }}\n",
        hash("forti-token"),
        proxy.addr,
        pw.display()
    );
    let s = Serve::start(&families(), &tenants);
    let (st, j) = http(&s.addr, "POST", "/v1/actions/container.list?asset=prod", Some("forti-token"), Some(r#"{"all": true}"#));
    assert_eq!(st, 200, "{j}");
    let (st, j) = http(&s.addr, "POST", "/v1/actions/system.version?asset=prod", Some("forti-token"), Some("{}"));
    assert_eq!((st, j["summary"]["negotiated_api_version"].as_str()), (200, Some("1.41")), "{j}");
    assert!(proxy.seen.lock().unwrap().iter().all(|a| a.starts_with("Basic ")));
    let text = format!("{:?}{}", s.audit(), s.log());
    assert!(!text.contains("s3cr3t-pw"), "the password reached the audit or the log");

    // Two ways at once, or half of one, are refused at start with the reason.
    let both = tenants.replace("password_file", "token = \"x\", password_file");
    let dir = tempfile::tempdir().unwrap();
    let cfg = s.config_for(&both);
    let err = common::serve::refused_start(&cfg, dir.path());
    assert!(err.contains("auth: a password or a token, not both") && !err.contains("s3cr3t"), "{err}");
}

/// An asset's API version, pinned in the tenant config (FortiSOAR's setting), per engine.
#[test]
fn an_assets_api_version_is_pinned_in_the_tenant_config() {
    let tenants = format!(
        "[[tenant]]\nname = \"pin\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"system.*\"]\n[tenant.assets.old]\nengine = \"{{engine}}\"\napi_version = \"1.40\"\n",
        hash("pin-token")
    );
    let s = Serve::start(&families(), &tenants);
    let (_, j) = http(&s.addr, "POST", "/v1/actions/system.version?asset=old", Some("pin-token"), Some("{}"));
    assert_eq!(j["summary"]["negotiated_api_version"], "1.40", "{j}");
    let (_, j) = http(&s.addr, "POST", "/v1/actions/system.version", Some("pin-token"), Some("{}"));
    assert_eq!(j["summary"]["negotiated_api_version"], "1.41", "the default asset negotiates: {j}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = s.config_for(&tenants.replace("1.40", "2.0"));
    let err = common::serve::refused_start(&cfg, dir.path());
    assert!(err.contains("api_version '2.0' is not an API version"), "{err}");
}

/// `berth export splunk-soar` writes a Splunk SOAR app on Splunk's own splunk-soar-sdk: the
/// SDK's local runner runs its actions against berth serve and the engine (the Docker app's
/// action names included), and `soarapps package build` packages it, with the Docker app's
/// actions and data paths in its manifest.
#[test]
fn an_exported_splunk_soar_app_runs_through_the_sdk_and_packages() {
    let tenants = format!(
        "[[tenant]]\nname = \"splunk\"\ntoken_sha256 = \"{}\"\nengine = \"{{engine}}\"\nallow = [\"*\"]\nartifacts_dir = \"{{dir}}/splunk\"\n",
        hash("splunk-token")
    );
    let s = Serve::start(&families(), &tenants);
    let work = tempfile::tempdir().unwrap();
    let app = work.path().join("berth_docker");
    let mut b = Berth::families(&["system", "container", "image", "volume"]);
    b.host = "unix:///nonexistent/berth-export.sock".into();
    let r = b.run(&["export", "splunk-soar", "--dir", app.to_str().unwrap()]);
    r.expect_code(0);
    assert!(app.join("src/app.py").exists() && app.join("pyproject.toml").exists(), "{r:#?}");
    let again = b.run(&["export", "splunk-soar", "--dir", app.to_str().unwrap()]);
    again.expect_code(1);
    assert!(again.stderr.contains("exists"), "{again:#?}");

    let python = toolchain("clients/soar/bin/python");
    std::fs::write(work.path().join("asset.json"), json!({"berth_url": format!("http://{}", s.addr), "token": "splunk-token"}).to_string()).unwrap();
    let run = |action: &str, params: Value| -> String {
        let pfile = work.path().join(format!("{action}.json"));
        std::fs::write(&pfile, params.to_string()).unwrap();
        let out = Command::new(&python)
            .current_dir(&app)
            .args(["src/app.py", "action", action, "-a"])
            .arg(work.path().join("asset.json"))
            .arg("-p")
            .arg(&pfile)
            .output()
            .unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    let name = unique("soar");
    let (st, body) = api(
        Method::POST,
        "/containers/create",
        &format!("name={name}"),
        Some(("application/json", json!({"Image": test_image(), "Cmd": ["sleep", "300"]}).to_string().into_bytes())),
    );
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<Value>(&body).unwrap()["Id"].as_str().unwrap().to_string();
    // The Docker app's own action name and params, and a berth action.
    let out = run("list_container", json!({"all": true}));
    assert!(out.contains("Action success: True") && out.contains(&id), "{out}");
    let out = run("container_inspect", json!({"id": name}));
    assert!(out.contains("Action success: True") && out.contains(&id), "{out}");
    let out = run("container_list", json!({"all": true, "filters": format!("{{\"name\": [\"{name}\"]}}")}));
    assert!(out.contains("Result summary: {'total_objects': 1}"), "a JSON param as text: {out}");
    // An export goes into the vault (the SDK's local vault here): the file berth wrote, whole.
    let out = run("export_container", json!({"id": name}));
    assert!(out.contains("Action success: True") && out.contains("'vault_id': '") && out.contains("'export_data': 1"), "{out}");

    let sha = out.split("'sha256': '").nth(1).and_then(|r| r.split('\'').next()).unwrap_or_default().to_string();
    let exported = std::fs::read_dir(s.path().join("splunk"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("export-container-"))
        .expect("the export in the artifacts dir");
    assert_eq!(sha, hex::encode(sha2::Sha256::digest(std::fs::read(&exported).unwrap())), "{out}");
    let inspected = run("inspect_container", json!({"id": name}));
    assert!(inspected.contains("'containerStats_data': '"), "the Docker app's summary key: {inspected}");
    let out = run("container_inspect", json!({"id": "no-such-container-soar"}));
    assert!(out.contains("Action success: False") && out.contains("No such container"), "{out}");
    api(Method::DELETE, &format!("/containers/{id}"), "force=true", None);

    // Locked and packaged by the SDK's own tool; its manifest has the Docker app's actions
    // with their data paths.
    let bin = python.parent().unwrap();
    let out = Command::new(bin.join("uv")).current_dir(&app).arg("lock").output().unwrap();
    assert!(out.status.success(), "uv lock: {}", String::from_utf8_lossy(&out.stderr));
    let tgz = work.path().join("app.tgz");
    let out = Command::new(bin.join("soarapps")).current_dir(&app).args(["package", "build", "."]).arg("-o").arg(&tgz).output().unwrap();
    assert!(out.status.success(), "soarapps package build: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let out = Command::new("tar").arg("-xzOf").arg(&tgz).args(["--wildcards", "*/manifest.json"]).output().unwrap();
    let manifest: Option<Value> = serde_json::from_slice(&out.stdout).ok();
    let manifest = manifest.expect("a manifest.json in the package");
    let actions: std::collections::BTreeMap<String, &Value> =
        manifest["actions"].as_array().unwrap().iter().map(|a| (a["action"].as_str().unwrap().to_string(), a)).collect();
    let table = std::fs::read_to_string(workspace().join("tests/data/splunk-docker-v3.tsv")).unwrap();
    let mut problems = Vec::new();
    for l in table.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let mut f = l.split('\t');
        let action = f.next().unwrap();
        let Some(a) = actions.get(action) else {
            problems.push(format!("no action '{action}'"));
            continue;
        };
        let Some(path) = f.next() else { continue };
        let have: Vec<&str> = a["output"].as_array().unwrap().iter().map(|o| o["data_path"].as_str().unwrap()).collect();
        // A bare `action_result.data` names no field: the action's data is there as berth gives it.
        if path != "action_result.data" && !have.contains(&path) {
            problems.push(format!("'{action}' lacks {path}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
