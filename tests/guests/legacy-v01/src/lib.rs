//! A family built for berth:connector 0.1, as a third party built it before 0.2: bindings
//! straight from `wit/since_v0.1.0`, its contract section written by hand.

wit_bindgen::generate!({ world: "family", path: "../../../wit/since_v0.1.0" });

use berth::connector::engine;
use berth::connector::types::{Body, Request};
use exports::berth::connector::actions::{ActionError, ActionOutput, ActionSpec, EngineFailure, FamilyInfo, Guest, Kind, ParamSpec, ValueType};

#[link_section = "berth:contract"]
#[used]
static CONTRACT: [u8; 5] = *b"0.1.0";

struct Legacy;

fn get(path: &str) -> Result<Vec<u8>, ActionError> {
    let req = Request { method: "GET".into(), path: path.into(), query: vec![], headers: vec![], body: Body::Empty, registry: None };
    let resp = engine::call(&req).map_err(|e| ActionError::Engine(EngineFailure { status: 0, message: format!("{e:?}") }))?;
    if resp.status >= 300 {
        return Err(ActionError::Engine(EngineFailure { status: resp.status, message: String::from_utf8_lossy(&resp.body).into_owned() }));
    }
    Ok(resp.body)
}

impl Guest for Legacy {
    fn describe() -> FamilyInfo {
        FamilyInfo {
            name: "legacy".into(),
            version: "0.1.0".into(),
            actions: vec![
                ActionSpec {
                    name: "legacy.ping".into(),
                    summary: "Ping the engine (a 0.1 component)".into(),
                    kind: Kind::Investigate,
                    read_only: true,
                    params: vec![],
                    output: vec!["action_result.data.*.reply".into()],
                },
                ActionSpec {
                    name: "legacy.version".into(),
                    summary: "Engine version through a 0.1 component, with a stream read".into(),
                    kind: Kind::Investigate,
                    read_only: true,
                    params: vec![ParamSpec {
                        name: "field".into(),
                        value_type: ValueType::Text,
                        required: false,
                        default: Some("\"ApiVersion\"".into()),
                        description: "Field to echo".into(),
                        secret: false,
                    }],
                    output: vec!["action_result.data.*.value".into()],
                },
            ],
        }
    }

    fn run(action: String, params: String) -> Result<ActionOutput, ActionError> {
        match action.as_str() {
            "legacy.ping" => {
                let body = get("/_ping")?;
                let reply = String::from_utf8_lossy(&body).replace('"', "");
                Ok(ActionOutput { message: format!("engine says {reply}"), data: format!("[{{\"reply\":\"{reply}\"}}]"), summary: "{}".into() })
            }
            "legacy.version" => {
                // Read /version as a stream, through the 0.1 body-stream resource.
                let req = Request { method: "GET".into(), path: "/version".into(), query: vec![], headers: vec![], body: Body::Empty, registry: None };
                let (head, stream) = engine::open(&req).map_err(|e| ActionError::Internal(format!("{e:?}")))?;
                let mut body = Vec::new();
                loop {
                    match stream.read(65536, 5000).map_err(|e| ActionError::Internal(format!("{e:?}")))? {
                        berth::connector::types::Chunk::Data(d) => body.extend(d),
                        berth::connector::types::Chunk::End => break,
                        berth::connector::types::Chunk::Idle => {}
                    }
                }
                let field = params.split('"').nth(3).unwrap_or("ApiVersion").to_string();
                let text = String::from_utf8_lossy(&body);
                let value = text.split(&format!("\"{field}\":\"")).nth(1).and_then(|r| r.split('"').next()).unwrap_or("");
                berth::connector::log::log(berth::connector::log::Level::Info, &format!("status {}", head.status));
                Ok(ActionOutput { message: format!("{field} {value}"), data: format!("[{{\"value\":\"{value}\"}}]"), summary: "{}".into() })
            }
            other => Err(ActionError::BadParams(format!("unknown action '{other}'"))),
        }
    }
}

export!(Legacy);
