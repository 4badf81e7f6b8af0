//! `GET /v1/openapi.json`: berth serve's HTTP API as OpenAPI 3.1. Without a token, the API's
//! shape (one generic action route). With a tenant's token, one operation per action that
//! tenant may run: `operationId` the action's name, its params' JSON Schema as the request
//! body, the `action_result` with its data paths as the response; so that a connector can be
//! generated from it (DataFire, flowground).

use serde_json::{json, Map, Value};

use super::TenantState;
use crate::spec::ActionSpec;

/// The parts every document shares: components, and the routes that are not actions.
fn base(server_url: Option<&str>) -> Value {
    let err = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let id_param = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}});
    let name_param = json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$"}});
    let q = |name: &str, ty: &str, d: &str| json!({"name": name, "in": "query", "required": false, "schema": {"type": ty}, "description": d});
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {"title": "berth serve", "version": env!("CARGO_PKG_VERSION"), "description": "Docker Engine actions for many tenants, each confined to its policy and limits."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "The tenant's token"}},
            "parameters": {
                "async": q("async", "boolean", "Answer 202 with a job id at once; poll /v1/jobs/{id}"),
                "asset": q("asset", "string", "The engine (tenant asset) to act on"),
                "assets": q("assets", "string", "Fan-out: a,b,c or * (every asset of the tenant); rows get an `asset` field"),
                "asset_timeout": q("asset_timeout", "number", "Fan-out: seconds each engine may take"),
                "out": q("out", "string", "Output artifact: a file name in the tenant's artifacts directory (download it from /v1/artifacts/{name})"),
                "in": q("in", "string", "Input artifact: a file uploaded with PUT /v1/artifacts/{name}"),
                "raw": q("raw", "boolean", "Answer with the engine's own shapes: the data (an object for one item of a non-list action), or {\"message\"} with the engine's status on failure"),
            },
            "schemas": {
                "ActionResult": {"type": "object", "required": ["status", "message", "parameter", "data", "summary"], "properties": {
                    "status": {"type": "string", "enum": ["success", "failed"]},
                    "message": {"type": "string"},
                    "parameter": {"type": "object"},
                    "data": {"type": "array", "items": {}},
                    "summary": {"type": "object"},
                    "error": {"type": "object", "properties": {"kind": {"type": "string", "enum": ["engine", "bad_params", "denied", "limit", "internal"]}, "status": {"type": "integer"}}}
                }},
                "Job": {"type": "object", "properties": {
                    "job": {"type": "string"}, "status": {"type": "string", "enum": ["running", "done", "cancelled", "interrupted"]},
                    "action": {"type": "string"}, "result": {"$ref": "#/components/schemas/ActionResult"}, "message": {"type": "string"}
                }},
                "Uploaded": {"type": "object", "properties": {"name": {"type": "string"}, "size": {"type": "integer"}, "sha256": {"type": "string"}}},
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}}
            },
            "responses": {
                "Accepted": {"description": "async job started", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
                "BadParams": {"description": "bad params or query", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ActionResult"}}}},
                "Unauthorized": err("no or unknown token"),
                "Denied": {"description": "denied by policy, or a cap was hit", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ActionResult"}}}},
                "TooMany": err("over the request rate, the queue or the async-job cap"),
                "EngineFailed": {"description": "the engine failed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ActionResult"}}}},
                "Crashed": {"description": "the component failed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ActionResult"}}}}
            }
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/actions": {"get": {"operationId": "berth.catalog", "summary": "The actions this tenant may run, with JSON Schemas of their params", "responses": {"200": {"description": "catalog"}, "401": {"$ref": "#/components/responses/Unauthorized"}}}},
            "/v1/jobs/{id}": {
                "get": {"operationId": "berth.job", "summary": "A job's status (running, done, cancelled, or interrupted: its server stopped while it ran; never re-run), its result when done", "parameters": [id_param],
                    "responses": {"200": {"description": "job", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}}, "404": err("no such job (of this tenant)"), "503": err("the job store cannot be reached")}},
                "delete": {"operationId": "berth.job-cancel", "summary": "Cancel a job", "parameters": [id_param],
                    "responses": {"200": {"description": "job", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}}, "404": err("no such job (of this tenant)")}}
            },
            "/v1/artifacts/{name}": {
                "get": {"operationId": "berth.artifact-download", "summary": "Download an artifact from the tenant's directory", "parameters": [name_param.clone()],
                    "responses": {"200": {"description": "the file", "content": {"application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}}, "400": err("not a plain file name"), "404": err("no such artifact")}},
                "put": {"operationId": "berth.artifact-upload", "summary": "Upload an input artifact into the tenant's directory (streamed to disk, size-capped, within the tenant's quota, hashed, audited)", "parameters": [name_param],
                    "requestBody": {"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}},
                    "responses": {"201": {"description": "stored", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Uploaded"}}}},
                        "400": err("not a plain file name"), "409": err("an artifact of that name exists"), "413": err("over the size cap or the tenant's quota")}}
            },
            "/v1/openapi.json": {"get": {"operationId": "berth.openapi", "summary": "This document: with a tenant's token, one operation per action it may run", "security": [{}, {"bearer": []}],
                "parameters": [{"name": "version", "in": "query", "required": false, "schema": {"type": "string", "enum": ["3", "3.1", "2"]}, "description": "2: the same as Swagger 2.0"}],
                "responses": {"200": {"description": "OpenAPI 3.1 (or Swagger 2.0)"}, "400": err("an unknown version"), "401": {"$ref": "#/components/responses/Unauthorized"}}}},
            "/healthz": {"get": {"operationId": "berth.healthz", "summary": "Liveness: the server answers (no engine call)", "security": [], "responses": {"200": {"description": "ok"}}}},
            "/readyz": {"get": {"operationId": "berth.readyz", "summary": "Readiness: whether every engine the tenants reach answers /_ping within 2 s (counts only)", "security": [], "responses": {"200": {"description": "every engine answers"}, "503": {"description": "an engine does not answer"}}}},
            "/metrics": {"get": {"operationId": "berth.metrics", "summary": "Prometheus metrics (the metrics token, or server.metrics_listen)", "responses": {"200": {"description": "text/plain"}, "401": err("not the metrics token"), "404": err("metrics are off here")}}}
        }
    });
    if let Some(url) = server_url {
        doc["servers"] = json!([{"url": url}]);
    }
    doc
}

/// The responses of an action operation; `result` is its `action_result` schema.
fn responses(result: Value) -> Value {
    json!({
        "200": {"description": "the action_result", "content": {"application/json": {"schema": result}}},
        "202": {"$ref": "#/components/responses/Accepted"},
        "400": {"$ref": "#/components/responses/BadParams"},
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "403": {"$ref": "#/components/responses/Denied"},
        "429": {"$ref": "#/components/responses/TooMany"},
        "500": {"$ref": "#/components/responses/Crashed"},
        "502": {"$ref": "#/components/responses/EngineFailed"}
    })
}

fn action_params() -> Value {
    json!(["async", "asset", "assets", "asset_timeout", "out", "in", "raw"].map(|p| json!({"$ref": format!("#/components/parameters/{p}")})))
}

/// The document without a tenant: the generic action route.
pub(super) fn generic(server_url: Option<&str>) -> Value {
    let mut doc = base(server_url);
    let mut params = vec![
        json!({"name": "action", "in": "path", "required": true, "schema": {"type": "string"}, "description": "e.g. container.list, or a SOAR alias such as \"list containers\""}),
    ];
    params.extend(action_params().as_array().cloned().unwrap_or_default());
    doc["paths"]["/v1/actions/{action}"] = json!({"post": {
        "operationId": "berth.run",
        "summary": "Run an action (with a tenant's token, this document has one operation per action)",
        "parameters": params,
        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
        "responses": responses(json!({"$ref": "#/components/schemas/ActionResult"})),
    }});
    doc
}

/// An action name that is a plain path segment (the SOAR aliases with spaces are left out:
/// their canonical actions are there).
fn plain(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// The document for tenant `t`: one operation per action it may run.
pub(super) fn for_tenant<'a>(server_url: Option<&str>, t: &TenantState, actions: impl Iterator<Item = (&'a str, &'a ActionSpec)>) -> Value {
    let mut doc = base(server_url);
    doc["info"]["description"] = json!(format!(
        "The actions tenant '{}' may run{}. Each is POST /v1/actions/NAME with its params as a JSON object; \
         the answer is a SOAR action_result. SOAR aliases whose names have spaces are left out (their actions are here).",
        t.tenant.name,
        if t.tenant.policy.read_only { " (read-only)" } else { "" }
    ));
    let mut tags = std::collections::BTreeSet::new();
    for (family, a) in actions {
        if !plain(&a.name) || !t.tenant.policy.lists(&a.name, a.read_only) {
            continue;
        }
        tags.insert(family.to_string());
        let mut schema = a.json_schema();
        if let Some(m) = schema.as_object_mut() {
            m.remove("$schema");
        }
        if !t.tenant.request_engines.is_empty() {
            schema["properties"]["_engine"] = json!({"type": "object", "description": "The engine to act on instead of the tenant's own (within its request_engines): host tcp://HOST:PORT, and ca, cert, key as PEM text", "properties": {
                "host": {"type": "string"}, "ca": {"type": "string"}, "cert": {"type": "string"}, "key": {"type": "string", "writeOnly": true},
                "server_name": {"type": "string"}, "verify": {"type": "boolean"}}, "required": ["host"], "additionalProperties": false});
        }
        let required = a.params.iter().any(|p| p.required);
        doc["paths"][format!("/v1/actions/{}", a.name)] = json!({"post": {
            "operationId": a.name,
            "summary": a.summary,
            "tags": [family],
            "x-berth-kind": a.kind,
            "x-berth-read-only": a.read_only,
            "parameters": action_params(),
            "requestBody": {"required": required, "content": {"application/json": {"schema": schema}}},
            "responses": responses(result_schema(&a.output)),
        }});
    }
    doc["tags"] = json!(tags.into_iter().map(|t| json!({"name": t})).collect::<Vec<_>>());
    doc
}

/// The `action_result` of an action whose output paths are `paths`
/// (`action_result.data.*.State.Status`, `action_result.summary.total_objects`): the generic
/// result with those paths as properties (`*` an array's items).
pub(super) fn result_schema(paths: &[String]) -> Value {
    let mut tree = Map::new();
    for p in paths {
        let rest = p.strip_prefix("action_result.").unwrap_or(p);
        let segs: Vec<&str> = rest.split('.').collect();
        insert(&mut tree, &segs);
    }
    let mut props = Map::new();
    for (k, v) in tree {
        if matches!(k.as_str(), "data" | "summary") {
            props.insert(k, to_schema(&v));
        }
    }
    if props.is_empty() {
        return json!({"$ref": "#/components/schemas/ActionResult"});
    }
    json!({"allOf": [{"$ref": "#/components/schemas/ActionResult"}, {"type": "object", "properties": props}]})
}

fn insert(tree: &mut Map<String, Value>, segs: &[&str]) {
    let Some((first, rest)) = segs.split_first() else { return };
    let child = tree.entry(first.to_string()).or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(m) = child {
        insert(m, rest);
    }
}

fn to_schema(node: &Value) -> Value {
    let Some(m) = node.as_object() else { return json!({}) };
    if m.is_empty() {
        return json!({});
    }
    if let Some(items) = m.get("*") {
        return json!({"type": "array", "items": to_schema(items)});
    }
    let props: Map<String, Value> = m.iter().map(|(k, v)| (k.clone(), to_schema(v))).collect();
    json!({"type": "object", "properties": props})
}

/// The same document as Swagger 2.0 (`?version=2`), for the generators that read only that
/// (DataFire's `integrate --openapi`, flowground): the bearer token as an `Authorization`
/// header key whose value is `Bearer TOKEN`, request bodies as `body` parameters.
pub(super) fn to_swagger2(doc: &Value) -> Value {
    let url = doc["servers"][0]["url"].as_str().unwrap_or("");
    let (scheme, host) = url.split_once("://").unwrap_or(("http", url));
    let comps = &doc["components"];
    let mut out = json!({
        "swagger": "2.0",
        "info": doc["info"],
        "schemes": [scheme],
        "basePath": "/",
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {"bearer": {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Bearer TOKEN: the tenant's token"}},
        "security": [{"bearer": []}],
        "definitions": v2(&comps["schemas"]),
        "responses": Value::Object(comps["responses"].as_object().into_iter().flatten().map(|(k, r)| (k.clone(), response_v2(r))).collect()),
        "paths": {},
    });
    if !host.is_empty() {
        out["host"] = json!(host);
    }
    let params = comps["parameters"].as_object().cloned().unwrap_or_default();
    for (path, ops) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in ops.as_object().into_iter().flatten() {
            let mut o = Map::new();
            for k in ["operationId", "summary", "description", "tags", "x-berth-kind", "x-berth-read-only"] {
                if let Some(v) = op.get(k) {
                    o.insert(k.into(), v.clone());
                }
            }
            if let Some(s) = op.get("security") {
                let s: Vec<Value> = s.as_array().into_iter().flatten().filter(|x| x.as_object().is_some_and(|m| !m.is_empty())).cloned().collect();
                o.insert("security".into(), json!(s));
            }
            let mut ps: Vec<Value> = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let p = match p["$ref"].as_str().and_then(|r| r.rsplit('/').next()).and_then(|n| params.get(n)) {
                    Some(def) => def.clone(),
                    None => p.clone(),
                };
                let mut q = json!({"name": p["name"], "in": p["in"], "required": p["required"].as_bool().unwrap_or(false), "type": p["schema"]["type"]});
                if let Some(d) = p.get("description") {
                    q["description"] = d.clone();
                }
                if let Some(pat) = p["schema"].get("pattern") {
                    q["pattern"] = pat.clone();
                }
                ps.push(q);
            }
            if let Some(content) = op["requestBody"]["content"].as_object() {
                let required = op["requestBody"]["required"].as_bool().unwrap_or(false);
                if let Some(j) = content.get("application/json") {
                    ps.push(json!({"name": "body", "in": "body", "required": required, "schema": v2(&j["schema"])}));
                } else if content.contains_key("application/octet-stream") {
                    o.insert("consumes".into(), json!(["application/octet-stream"]));
                    ps.push(json!({"name": "body", "in": "body", "required": required, "schema": {"type": "string", "format": "binary"}}));
                }
            }
            o.insert("parameters".into(), json!(ps));
            let responses: Map<String, Value> = op["responses"].as_object().into_iter().flatten().map(|(code, r)| (code.clone(), response_v2(r))).collect();
            o.insert("responses".into(), Value::Object(responses));
            out["paths"][path][method] = Value::Object(o);
        }
    }
    out
}

fn response_v2(r: &Value) -> Value {
    if let Some(reference) = r["$ref"].as_str() {
        return json!({"$ref": reference.replace("#/components/responses/", "#/responses/")});
    }
    let mut o = json!({"description": r["description"].as_str().unwrap_or("")});
    if let Some(s) = r["content"]["application/json"].get("schema") {
        o["schema"] = v2(s);
    } else if r["content"].get("application/octet-stream").is_some() {
        o["schema"] = json!({"type": "string", "format": "binary"});
    }
    o
}

/// A JSON Schema in Swagger 2.0's dialect: refs to `#/definitions/`, without what 2.0 lacks.
fn v2(s: &Value) -> Value {
    match s {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "$schema" | "writeOnly" | "contentMediaType" | "const"))
                // Draft 4 (2.0's) wants a `required` list non-empty.
                .filter(|(k, v)| !(k.as_str() == "required" && v.as_array().is_some_and(Vec::is_empty)))
                .map(|(k, v)| match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => (k.clone(), json!(r.replace("#/components/schemas/", "#/definitions/"))),
                    ("properties", Value::Object(props)) => (k.clone(), Value::Object(props.iter().map(|(pk, pv)| (pk.clone(), v2(pv))).collect())),
                    _ => (k.clone(), v2(v)),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(v2).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_paths_become_the_result_schema() {
        let s = result_schema(&["action_result.data.*.Id".into(), "action_result.data.*.State.Status".into(), "action_result.summary.total_objects".into()]);
        let p = &s["allOf"][1]["properties"];
        assert_eq!(p["data"]["type"], "array");
        assert_eq!(p["data"]["items"]["properties"]["State"]["properties"]["Status"], json!({}));
        assert_eq!(p["data"]["items"]["properties"]["Id"], json!({}));
        assert_eq!(p["summary"]["properties"]["total_objects"], json!({}));
        assert_eq!(result_schema(&[]), json!({"$ref": "#/components/schemas/ActionResult"}));
    }

    #[test]
    fn only_plain_names_are_paths() {
        assert!(plain("container.list") && plain("service.wait-converged"));
        assert!(!plain("list containers") && !plain("a/b") && !plain(""));
    }
}
