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
        .route("/v1/openapi.json", get(openapi_doc))
        .route("/metrics", get(metrics))
        .route("/v1/actions", get(catalog))
        .route("/v1/actions/{action}", post(run))
        .route("/v1/jobs/{id}", get(job).delete(cancel))
        .route("/v1/artifacts/{name}", get(artifact).put(upload))
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

/// The document for the tenant whose token comes with the request, or the generic one;
/// `servers` says the address it was asked at.
async fn openapi_doc(State(s): S, RawQuery(query): RawQuery, headers: HeaderMap) -> Resp {
    let version = match query.as_deref().unwrap_or("") {
        "" | "version=3" | "version=3.1" => 3,
        "version=2" => 2,
        other => return error(StatusCode::BAD_REQUEST, &format!("unknown query '{other}': version=3 (OpenAPI 3.1, the default) or version=2 (Swagger 2.0)")),
    };
    let shape = |doc: Value| if version == 2 { super::openapi::to_swagger2(&doc) } else { doc };
    let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c)));
    let url = host.map(|h| format!("http://{h}"));
    if !headers.contains_key(http::header::AUTHORIZATION) {
        return json_response(StatusCode::OK, &shape(super::openapi::generic(url.as_deref())));
    }
    let Some(t) = s.tenant(&headers) else { return unauthorized(&s) };
    let catalog = s.catalog.read().unwrap().clone();
    let doc = super::openapi::for_tenant(url.as_deref(), t, catalog.actions().map(|(c, a)| (c.family.name.as_str(), a)));
    json_response(StatusCode::OK, &shape(doc))
}

async fn upload(State(s): S, Path(name): Path<String>, headers: HeaderMap, body: Body) -> Resp {
    let Some(t) = s.tenant(&headers) else { return unauthorized(&s) };
    s.upload(t, &name, body).await
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
            .filter(|(_, a)| t.tenant.policy.lists(&a.name, a.read_only))
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

impl Server {
    /// `PUT /v1/artifacts/{name}`: streams the body into a new file of the tenant's artifacts
    /// directory, hashing it, within `artifact_bytes` and what is left of the tenant's quota;
    /// the file appears (by link) only whole, never replaces one, and is audited. Uploads of a
    /// tenant go one at a time and count against its request rate.
    pub(super) async fn upload(&self, t: &TenantState, name: &str, body: Body) -> Resp {
        use sha2::Digest;
        use tokio::io::AsyncWriteExt;
        let Some(dir) = &t.tenant.artifacts_dir else { return error(StatusCode::NOT_FOUND, "this tenant has no artifacts directory") };
        if !valid_artifact_name(name) {
            return error(StatusCode::BAD_REQUEST, "artifact names are plain file names (letters, digits, '.', '_', '-'; not starting with '.')");
        }
        // An upload is a request like any other: it counts against the tenant's rate.
        if let Err(e) = self.take_rate(t).await {
            return error(StatusCode::TOO_MANY_REQUESTS, &e);
        }
        let _one_at_a_time = t.uploads.lock().await;
        let dest = dir.join(name);
        if dest.exists() {
            return error(StatusCode::CONFLICT, &format!("artifact '{name}' exists; remove it or upload under another name"));
        }
        let cap = t.tenant.artifact_bytes.min(t.tenant.artifact_quota_bytes.saturating_sub(super::dir_bytes(dir)));
        let tmp = dir.join(format!(".upload-{}", uuid::Uuid::new_v4().simple()));
        let fail = |status: StatusCode, msg: String, tmp: &std::path::Path| {
            let _ = std::fs::remove_file(tmp);
            error(status, &msg)
        };
        let mut file = match tokio::fs::File::create(&tmp).await {
            Ok(f) => f,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot write into the artifacts directory: {e}")),
        };
        let (mut size, mut hash) = (0u64, sha2::Sha256::new());
        let mut stream = body.into_data_stream();
        loop {
            let next = match tokio::time::timeout(Duration::from_secs(60), futures_util::StreamExt::next(&mut stream)).await {
                Ok(n) => n,
                Err(_) => return fail(StatusCode::REQUEST_TIMEOUT, "the upload stalled for 60 s".into(), &tmp),
            };
            let Some(chunk) = next else { break };
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => return fail(StatusCode::BAD_REQUEST, format!("the upload broke off: {e}"), &tmp),
            };
            size += chunk.len() as u64;
            if size > cap {
                let why = if cap < t.tenant.artifact_bytes { "what is left of the tenant's artifact quota" } else { "the tenant's artifact size cap" };
                return fail(StatusCode::PAYLOAD_TOO_LARGE, format!("the upload is over {why} ({cap} bytes); nothing was kept"), &tmp);
            }
            hash.update(&chunk);
            if let Err(e) = file.write_all(&chunk).await {
                return fail(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot write the upload: {e}"), &tmp);
            }
        }
        if let Err(e) = file.sync_all().await {
            return fail(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot write the upload: {e}"), &tmp);
        }
        drop(file);
        // A link, not a rename: it fails if the name was taken meanwhile, instead of replacing.
        if let Err(e) = std::fs::hard_link(&tmp, &dest) {
            let status = if e.kind() == std::io::ErrorKind::AlreadyExists { StatusCode::CONFLICT } else { StatusCode::INTERNAL_SERVER_ERROR };
            return fail(status, format!("cannot store artifact '{name}': {e}"), &tmp);
        }
        let _ = std::fs::remove_file(&tmp);
        let sha256 = hex::encode(hash.finalize());
        self.audit.upload(&t.tenant.name, name, size, &sha256);
        json_response(StatusCode::CREATED, &json!({"name": name, "size": size, "sha256": sha256}))
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
    /// Answer in the engine's own shapes instead of the action_result.
    pub raw: bool,
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
                "async" | "raw" => {
                    let on = match v.as_str() {
                        "" | "true" | "1" => true,
                        "false" | "0" => false,
                        other => return Err(format!("query parameter '{k}' must be true or false, got '{other}'")),
                    };
                    if k == "raw" {
                        q.raw = on;
                    } else {
                        q.is_async = on;
                    }
                }
                "out" => q.out = Some(v),
                "in" => q.input = Some(v),
                "asset" => q.asset = Some(v),
                "assets" => q.assets = Some(v),
                "asset_timeout" => q.asset_timeout = Some(v),
                other => return Err(format!("unknown query parameter '{other}' (known: async, raw, out, in, asset, assets, asset_timeout)")),
            }
        }
        if q.raw && q.is_async {
            return Err("raw answers are for synchronous runs: a job's result is an action_result".into());
        }
        Ok(q)
    }
}

/// `?raw=true`: the engine's own shapes. Success: the data (one object for a single item of an
/// action that does not list, else the array). Failure: `{"message"}` with the engine's status
/// when it gave one, else the status berth answers with.
pub(super) fn raw_response(result: &crate::spec::ActionResult, status: StatusCode) -> Resp {
    match &result.error {
        None => {
            let listing = result.summary.contains_key("total_objects");
            let body = match result.data.as_slice() {
                [one] if !listing => one.clone(),
                all => Value::Array(all.to_vec()),
            };
            json_response(StatusCode::OK, &body)
        }
        Some(e) => {
            let status = e.status.and_then(|s| StatusCode::from_u16(s).ok()).filter(|s| s.is_client_error() || s.is_server_error()).unwrap_or(status);
            json_response(status, &json!({"message": result.message}))
        }
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
