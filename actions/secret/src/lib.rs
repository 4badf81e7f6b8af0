//! The `secret` family: the 5 Secret operations of the Engine API, plus `secret.rotate`.

use std::time::{SystemTime, UNIX_EPOCH};

use berth_sdk::params;
use berth_sdk::prelude::*;
use berth_sdk::swarm::{create_object, object_actions, versioned, NewObject, Secret};

params! {
    struct Rotate {
        id: String => "The secret to rotate (ID or name)",
        #[secret] data: Option<String> => "The new data, as text",
        #[secret] data_base64: Option<String> => "The new data, base64-encoded",
        new_name: Option<String> => "Name of the new secret (default: the old name with a -<unix time> suffix)",
        labels: Option<Map<String, Value>> => "Labels of the new secret (default: the old one's)",
        keep_old: bool => "Keep the old secret instead of removing it",
    }
}

fn actions() -> Vec<Action> {
    let mut all = object_actions::<Secret>();
    all.push(
        Action::new("secret.rotate", "Rotate a secret: create the new one, move every service that uses the old one onto it, remove the old one")
            .kind(Kind::Correct)
            .output(&["data.*.old_id", "data.*.new_id", "data.*.new_name", "data.*.services", "summary.services_updated"])
            .ops(&["SecretInspect", "SecretCreate", "ServiceList", "ServiceInspect", "ServiceUpdate", "SecretDelete"])
            .typed(rotate),
    );
    all
}

berth_sdk::family!(name: "secret", actions: actions);

/// The rotation order makes a failure safe: the new secret exists before any service moves,
/// and the old one goes only when no service uses it any more.
fn rotate(p: Rotate) -> Result<Output> {
    let id = p.id.as_str();
    let old = get(format!("/secrets/{}", berth_sdk::seg(id))).json_ok()?;
    let old_id = old["ID"].as_str().unwrap_or_default().to_string();
    let old_name = old["Spec"]["Name"].as_str().unwrap_or(id).to_string();
    let new_name = match &p.new_name {
        Some(n) => n.clone(),
        None => {
            let base = old_name.rsplit_once('-').filter(|(_, t)| t.len() >= 9 && t.bytes().all(|b| b.is_ascii_digit())).map_or(old_name.as_str(), |(b, _)| b);
            format!("{base}-{}", SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
        }
    };
    let labels = p.labels.clone().or_else(|| old["Spec"]["Labels"].as_object().cloned());
    let new = NewObject { name: new_name.clone(), data: p.data.clone(), data_base64: p.data_base64.clone(), labels, templating: None, driver: None };
    let new_id = create_object::<Secret>(&new)?;
    let services = get("/services").json_ok()?;
    let mut moved = Vec::new();
    for s in services.as_array().into_iter().flatten() {
        let sid = s["ID"].as_str().unwrap_or_default();
        let uses = s["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"].as_array().is_some_and(|l| l.iter().any(|r| r["SecretID"] == old_id));
        if !uses {
            continue;
        }
        // Re-read for the current version: the list may be stale by now.
        let (cur, version) = versioned(&format!("/services/{sid}"))?;
        let mut spec = cur["Spec"].clone();
        if let Some(refs) = spec["TaskTemplate"]["ContainerSpec"]["Secrets"].as_array_mut() {
            for r in refs.iter_mut().filter(|r| r["SecretID"] == old_id) {
                r["SecretID"] = json!(new_id);
                r["SecretName"] = json!(new_name);
            }
        }
        post(format!("/services/{sid}/update")).query("version", version).json(&spec).send_ok()?;
        moved.push(json!({"id": sid, "name": cur["Spec"]["Name"]}));
    }
    let removed = !p.keep_old;
    if removed {
        delete(format!("/secrets/{old_id}")).send_ok()?;
    }
    let n = moved.len();
    Ok(Output::one(
        format!("Rotated secret {old_name} to {new_name}: {n} services moved{}", if removed { ", old secret removed" } else { "" }),
        json!({"old_id": old_id, "old_name": old_name, "new_id": new_id, "new_name": new_name, "services": moved, "old_removed": removed}),
    )
    .summary("services_updated", n)
    .summary("new_id", new_id))
}
