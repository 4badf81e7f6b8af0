//! The HTTP API: routing, request bodies and queries, the catalog, artifact downloads and
//! the metrics listener.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::{error, json_response, Resp, Server, Tenant, TenantState, HEADER_TIMEOUT, MAX_BODY};
use crate::runtime::Artifacts;

/// The API's routes (axum); every one but `/healthz`, `/v1/openapi.json` and `/metrics` takes
/// a tenant's bearer token.
pub(super) fn router(server: Arc<Server>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { json_response(StatusCode::OK, &json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/v1/openapi.json", get(|| async { json_response(StatusCode::OK, openapi()) }))
        .route("/metrics", get(metrics))
        .route("/v1/actions", get(catalog))
        .route("/v1/actions/{action}", post(run))
        .route("/v1/jobs/{id}", get(job).delete(cancel))
        .route("/v1/artifacts/{name}", get(artifact))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .with_state(server)
}

type S = State<Arc<Server>>;

/// The 401 for a request whose token names no tenant.
fn unauthorized(s: &Server) -> Resp {
    s.metrics.unauthorized();
    error(StatusCode::UNAUTHORIZED, "missing or unknown bearer token")
}

async fn metrics(State(s): S, headers: HeaderMap) -> Resp {
    // Metrics name every tenant and action: they take a token of their own here, or are served
    // on `server.metrics_listen`.
    match s.metrics_authorized(&headers) {
        None => error(StatusCode::NOT_FOUND, "metrics are served on server.metrics_listen, or here with server.metrics_token_sha256"),
        Some(false) => error(StatusCode::UNAUTHORIZED, "/metrics needs the metrics bearer token"),
        Some(true) => s.metrics_response(),
    }
}

/// Whether every engine the tenants reach answers `/_ping` within 2 s: 200 when all do, 503
/// otherwise. No token, so only counts: the engines' addresses and the tenants' names stay
/// out of it (`/metrics` and the audit have them).
async fn readyz(State(s): S) -> Resp {
    if s.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "draining"}));
    }
    let mut engines: Vec<Arc<crate::engine::EngineClient>> = Vec::new();
    for t in s.tenants.iter() {
        for e in t.engines.values() {
            if !engines.iter().any(|x| Arc::ptr_eq(x, e)) {
                engines.push(e.clone());
            }
        }
    }
    let pings = engines.iter().map(|e| async move {
        let headers = HeaderMap::new();
        let ping = e.send(http::Method::GET, "/_ping", "", &headers, crate::engine::OutBody::Empty);
        matches!(tokio::time::timeout(std::time::Duration::from_secs(2), ping).await, Ok(Ok(r)) if r.status().is_success())
    });
    let answering = futures_util::future::join_all(pings).await.into_iter().filter(|ok| *ok).count();
    let ready = answering == engines.len();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    json_response(status, &json!({"status": if ready { "ready" } else { "not ready" }, "engines": engines.len(), "answering": answering}))
}

async fn catalog(State(s): S, headers: HeaderMap) -> Resp {
    let Some(t) = s.tenant(&headers) else { return unauthorized(&s) };
    s.catalog_for(t)
}

async fn run(State(s): S, Path(action): Path<String>, RawQuery(query): RawQuery, headers: HeaderMap, body: Body) -> Resp {
    let Some(t) = s.tenant(&headers) else { return unauthorized(&s) };
    let query = match ActionQuery::parse(query.as_deref().unwrap_or_default()) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    s.clone().run_action(t, &action, &body, &query).await
}

async fn job(State(s): S, Path(id): Path<String>, headers: HeaderMap) -> Resp {
    let Some(t) = s.tenant(&headers) else { return unauthorized(&s) };
    s.job(t, &id, false).await
}

async fn cancel(State(s): S, Path(id): Path<String>, headers: HeaderMap) -> Resp {
    let Some(t) = s.tenant(&headers) else { return unauthorized(&s) };
    s.job(t, &id, true).await
}

async fn artifact(State(s): S, Path(name): Path<String>, headers: HeaderMap) -> Resp {
    let Some(t) = s.tenant(&headers) else { return unauthorized(&s) };
    s.artifact(t, &name).await
}

impl Server {
    pub(super) fn metrics_response(&self) -> Resp {
        let body = Full::new(Bytes::from(self.metrics.render())).map_err(|n| match n {}).boxed();
        Response::builder().header("content-type", "text/plain; version=0.0.4").body(body).expect("response")
    }

    pub(super) fn catalog_for(&self, t: &TenantState) -> Resp {
        let catalog = self.catalog.read().unwrap().clone();
        let list: Vec<Value> = catalog
            .actions()
            .filter(|(_, a)| t.tenant.policy.allows(&a.name) && (!t.tenant.policy.read_only || a.read_only))
            .map(|(c, a)| {
                json!({
                    "name": a.name, "summary": a.summary, "kind": a.kind, "read_only": a.read_only,
                    "family": c.family.name, "sha256": c.sha256, "output": a.output, "schema": a.json_schema(),
                })
            })
            .collect();
        json_response(StatusCode::OK, &json!({"actions": list}))
    }

    pub(super) async fn artifact(&self, t: &TenantState, name: &str) -> Resp {
        let Some(dir) = &t.tenant.artifacts_dir else { return error(StatusCode::NOT_FOUND, "this tenant has no artifacts directory") };
        if !valid_artifact_name(name) {
            return error(StatusCode::BAD_REQUEST, "artifact names are plain file names");
        }
        match tokio::fs::File::open(dir.join(name)).await {
            Ok(f) => {
                let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
                Response::builder()
                    .header("content-type", "application/octet-stream")
                    .header("content-length", len)
                    .body(crate::runtime::artifacts::file_body(f))
                    .expect("response")
            }
            Err(_) => error(StatusCode::NOT_FOUND, "no such artifact"),
        }
    }
}

pub(super) fn valid_artifact_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 200 && !name.starts_with('.') && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// The query of `POST /v1/actions/{action}`, parsed as axum's `Query` does
/// (`form_urlencoded`): known keys only, each at most once (a repeated key is read one way
/// here and maybe another by a proxy or a client library).
#[derive(Debug, Default, PartialEq)]
pub(super) struct ActionQuery {
    pub is_async: bool,
    pub out: Option<String>,
    pub input: Option<String>,
    pub asset: Option<String>,
    pub assets: Option<String>,
    pub asset_timeout: Option<String>,
}

impl ActionQuery {
    pub(super) fn parse(query: &str) -> Result<Self, String> {
        let mut q = ActionQuery::default();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if !seen.insert(k.clone()) {
                return Err(format!("query parameter '{k}' is given more than once"));
            }
            let v = v.into_owned();
            match k.as_ref() {
                "async" => {
                    q.is_async = match v.as_str() {
                        "" | "true" | "1" => true,
                        "false" | "0" => false,
                        other => return Err(format!("query parameter 'async' must be true or false, got '{other}'")),
                    }
                }
                "out" => q.out = Some(v),
                "in" => q.input = Some(v),
                "asset" => q.asset = Some(v),
                "assets" => q.assets = Some(v),
                "asset_timeout" => q.asset_timeout = Some(v),
                other => return Err(format!("unknown query parameter '{other}' (known: async, out, in, asset, assets, asset_timeout)")),
            }
        }
        Ok(q)
    }
}

/// `?out=NAME&in=NAME`: artifacts are plain names inside the tenant's artifacts directory.
pub(super) fn tenant_artifacts(t: &Tenant, q: &ActionQuery) -> Result<Artifacts, String> {
    let mut arts = Artifacts::default();
    for (v, is_out) in [(&q.out, true), (&q.input, false)] {
        let Some(v) = v else { continue };
        let Some(dir) = &t.artifacts_dir else { return Err(format!("tenant {} has no artifacts directory", t.name)) };
        if !valid_artifact_name(v) {
            return Err(format!("artifact '{v}' must be a plain file name"));
        }
        if is_out {
            arts.output("out", dir.join(v));
        } else {
            arts.input("in", dir.join(v));
        }
    }
    Ok(arts)
}

pub(super) async fn read_body(body: Body) -> Result<Vec<u8>, Resp> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match tokio::time::timeout(Duration::from_secs(30), limited.collect()).await {
        Ok(Ok(c)) => Ok(c.to_bytes().to_vec()),
        Ok(Err(_)) => Err(error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large or broken")),
        Err(_) => Err(error(StatusCode::REQUEST_TIMEOUT, "request body not received in time")),
    }
}

/// The metrics listener: `/metrics` and `/healthz` only, no token (bind it where only the
/// monitoring system reaches).
pub(super) async fn serve_metrics(server: Arc<Server>, listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let s = server.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let s = s.clone();
                async move {
                    Ok::<_, Infallible>(match req.uri().path() {
                        "/metrics" => s.metrics_response(),
                        "/healthz" => json_response(StatusCode::OK, &json!({"status": "ok"})),
                        _ => error(StatusCode::NOT_FOUND, "only /metrics and /healthz here"),
                    })
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// The server's HTTP API as OpenAPI 3.0 (`GET /v1/openapi.json`); `tests/serve.rs` checks every
/// operation in it against the real routes.
pub(super) fn openapi() -> &'static Value {
    static DOC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let result = json!({"$ref": "#/components/schemas/ActionResult"});
        let err = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}});
        let action_param = json!({"name": "action", "in": "path", "required": true, "schema": {"type": "string"}, "description": "e.g. container.list, or a SOAR alias such as \"list containers\""});
        let id_param = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}});
        json!({
            "openapi": "3.0.3",
            "info": {"title": "berth serve", "version": env!("CARGO_PKG_VERSION"), "description": "Docker Engine actions for many tenants, each confined to its policy and limits."},
            "components": {
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                "schemas": {"ActionResult": {"type": "object", "required": ["status", "message", "parameter", "data", "summary"], "properties": {
                    "status": {"type": "string", "enum": ["success", "failed"]},
                    "message": {"type": "string"},
                    "parameter": {"type": "object"},
                    "data": {"type": "array", "items": {}},
                    "summary": {"type": "object"},
                    "error": {"type": "object", "properties": {"kind": {"type": "string", "enum": ["engine", "bad_params", "denied", "limit", "internal"]}, "status": {"type": "integer"}}}
                }}}
            },
            "security": [{"bearer": []}],
            "paths": {
                "/v1/actions": {"get": {"summary": "The actions this tenant may run, with JSON Schemas of their params", "responses": {"200": {"description": "catalog"}, "401": err("no or unknown token")}}},
                "/v1/actions/{action}": {"post": {
                    "summary": "Run an action",
                    "parameters": [action_param,
                        {"name": "async", "in": "query", "schema": {"type": "boolean"}, "description": "202 with a job id instead of waiting"},
                        {"name": "asset", "in": "query", "schema": {"type": "string"}, "description": "the engine (tenant asset) to act on"},
                        {"name": "assets", "in": "query", "schema": {"type": "string"}, "description": "fan-out: a,b,c or * (every asset of the tenant); rows get an `asset` field, summary.assets a status per engine"},
                        {"name": "asset_timeout", "in": "query", "schema": {"type": "number"}, "description": "fan-out: seconds each engine may take (at most the tenant's timeout)"},
                        {"name": "out", "in": "query", "schema": {"type": "string"}, "description": "output artifact name in the tenant's directory"},
                        {"name": "in", "in": "query", "schema": {"type": "string"}, "description": "input artifact name in the tenant's directory"}],
                    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {
                        "200": {"description": "success", "content": {"application/json": {"schema": result}}},
                        "202": {"description": "async job started"},
                        "400": {"description": "bad params"}, "401": err("no or unknown token"),
                        "403": {"description": "denied by policy, or a cap was hit"}, "404": {"description": "unknown action"},
                        "429": {"description": "over the request rate, the queue or the async-job cap"},
                        "500": {"description": "the component crashed"}, "502": {"description": "the engine failed"}
                    }}},
                "/v1/jobs/{id}": {
                    "get": {"summary": "A job's status (running, done, cancelled, or interrupted: its server stopped while it ran; never re-run), its result when done", "parameters": [id_param], "responses": {"200": {"description": "job"}, "404": err("no such job (of this tenant)"), "503": err("the job store cannot be reached")}},
                    "delete": {"summary": "Cancel a job", "parameters": [id_param], "responses": {"200": {"description": "job"}, "404": err("no such job (of this tenant)")}}
                },
                "/v1/artifacts/{name}": {"get": {"summary": "Download an artifact from the tenant's directory", "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "the file", "content": {"application/octet-stream": {}}}, "400": err("not a plain file name"), "404": err("no such artifact")}}},
                "/v1/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3.0"}}}},
                "/healthz": {"get": {"summary": "Liveness: the server answers (no engine call)", "security": [], "responses": {"200": {"description": "ok"}}}},
                "/readyz": {"get": {"summary": "Readiness: whether every engine the tenants reach answers /_ping within 2 s (counts only)", "security": [], "responses": {"200": {"description": "every engine answers"}, "503": {"description": "an engine does not answer"}}}},
                "/metrics": {"get": {"summary": "Prometheus metrics (the metrics token, or server.metrics_listen)", "responses": {"200": {"description": "text/plain"}, "401": err("not the metrics token"), "404": err("metrics are off here")}}}
            }
        })
    })
}

#[cfg(test)]
mod query_tests {
    use super::ActionQuery;

    #[test]
    fn the_action_query_takes_known_keys_once_each() {
        let q = ActionQuery::parse("async&out=a%20b.tar&assets=x,y&asset_timeout=2.5").unwrap();
        assert!(q.is_async);
        assert_eq!((q.out.as_deref(), q.assets.as_deref(), q.asset_timeout.as_deref()), (Some("a b.tar"), Some("x,y"), Some("2.5")));
        assert!(!ActionQuery::parse("async=false").unwrap().is_async);
        assert_eq!(ActionQuery::parse("").unwrap(), ActionQuery::default());
        let e = ActionQuery::parse("asset=a&asset=b").unwrap_err();
        assert!(e.contains("'asset' is given more than once"), "{e}");
        let e = ActionQuery::parse("out=x&as%73et=b&asset=c").unwrap_err();
        assert!(e.contains("more than once"), "an encoded key is the same key: {e}");
        assert!(ActionQuery::parse("asynk=1").unwrap_err().contains("unknown query parameter 'asynk'"));
        assert!(ActionQuery::parse("async=maybe").unwrap_err().contains("true or false"));
    }
}
