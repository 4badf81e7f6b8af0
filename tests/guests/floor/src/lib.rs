//! `floor.ping`: what any action costs berth, and nothing more. One `GET /_ping` through the
//! host and a fixed answer, with no SDK, no JSON library and no action table: `make bench`
//! sets its CPU per call beside `system.ping`'s (the SDK's share) and beside berth's HTTP
//! plus one engine call without a sandbox (the sandbox's share).

wit_bindgen::generate!({ world: "family", path: "../../../wit/since_v0.2.0" });

use berth::connector::engine;
use berth::connector::types::{Body, Request};
use exports::berth::connector::actions::{ActionError, ActionOutput, ActionSpec, EngineFailure, FamilyInfo, Guest, Kind};

#[link_section = "berth:contract"]
#[used]
static CONTRACT: [u8; 5] = *b"0.2.0";

struct Floor;

impl Guest for Floor {
    fn describe() -> FamilyInfo {
        FamilyInfo {
            name: "floor".into(),
            version: "0.1.0".into(),
            actions: vec![ActionSpec {
                name: "floor.ping".into(),
                summary: "Ping the engine with nothing around the call (the benchmark's floor)".into(),
                kind: Kind::Investigate,
                read_only: true,
                params: vec![],
                output: vec!["action_result.data.*.ok".into()],
                operations: vec!["SystemPing".into()],
            }],
        }
    }

    fn run(action: String, _params: String) -> Result<ActionOutput, ActionError> {
        if action != "floor.ping" {
            return Err(ActionError::BadParams(format!("unknown action '{action}'")));
        }
        let req = Request { method: "GET".into(), path: "/_ping".into(), query: vec![], headers: vec![], body: Body::Empty, registry: None };
        let resp = engine::call(&req).map_err(|e| ActionError::Engine(EngineFailure { status: 0, message: format!("{e:?}") }))?;
        let ok = if resp.status == 200 { "true" } else { "false" };
        Ok(ActionOutput {
            message: format!("Engine answered ping: HTTP {}", resp.status),
            data: format!("[{{\"ok\":{ok}}}]"),
            summary: format!("{{\"ok\":{ok}}}"),
        })
    }
}

export!(Floor);
