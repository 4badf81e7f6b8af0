//! The `system` family and the CLI, end to end against the isolated real engine.

use berth_test_support as common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use http::Method;
use serde_json::{json, Value};

#[test]
fn actions_lists_the_system_family() {
    let b = Berth::system();
    // Near names, separators and case aside.
    let r = b.run(&["run", "system.pnig"]);
    r.expect_code(2);
    assert!(r.stderr.contains("did you mean system.ping"), "{r:#?}");
    let r = b.run(&["run", "system.events", "Max-Events=1"]);
    r.expect_code(2);
    assert!(r.stderr.contains("did you mean max_events"), "{r:#?}");
    let r = b.run(&["actions", "--json"]);
    r.expect_code(0);
    let list = r.json()["actions"].as_array().unwrap().clone();
    let names: Vec<&str> = list.iter().map(|a| a["name"].as_str().unwrap()).collect();
    for n in ["system.ping", "system.version", "system.info", "system.df", "system.auth", "system.events", "system.test-connectivity"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let auth = list.iter().find(|a| a["name"] == "system.auth").unwrap();
    assert_eq!(auth["read_only"], false);
    assert_eq!(list.iter().find(|a| a["name"] == "system.info").unwrap()["read_only"], true);
    assert!(list.iter().all(|a| a["family"] == "system"));

    let table = b.run(&["actions", "-o", "pretty"]);
    table.expect_code(0);
    let header = table.stdout.lines().next().unwrap();
    assert!(header.starts_with("NAME") && header.contains("KIND") && header.contains("READ-ONLY") && header.contains("SUMMARY"), "{header}");
    assert!(table.stdout.lines().any(|l| l.starts_with("system.version") && l.contains("investigate") && l.contains("yes")));
}

#[test]
fn describe_shows_params_and_json_schema() {
    let b = Berth::system();
    let r = b.run(&["describe", "system.events", "--json"]);
    let j = r.expect_code(0).json.clone().unwrap();
    assert_eq!(j["schema"]["type"], "object");
    assert_eq!(j["schema"]["properties"]["max_events"]["type"], "integer");
    assert_eq!(j["schema"]["properties"]["max_events"]["default"], 100);
    assert_eq!(j["schema"]["additionalProperties"], false);
    assert!(j["output"].as_array().unwrap().iter().any(|o| o == "action_result.summary.total_events"));
    let pretty = b.run(&["describe", "system.events", "-o", "pretty"]);
    assert!(pretty.stdout.contains("max_duration") && pretty.stdout.contains("schema:"), "{}", pretty.stdout);
    b.run(&["describe", "system.nope"]).expect_code(2);
}

#[test]
fn version_prints_the_engine_version_as_action_result() {
    let b = Berth::system();
    let r = b.run(&["run", "system.version"]);
    let j = r.ok();
    let direct = api_json(Method::GET, "/version", "");
    // The SOAR action_result shape.
    for k in ["status", "message", "parameter", "data", "summary"] {
        assert!(j.get(k).is_some(), "missing {k}: {j}");
    }
    assert_eq!(j["parameter"], json!({}));
    assert_eq!(j["data"][0]["Version"], direct["Version"]);
    assert_eq!(j["data"][0]["ApiVersion"], direct["ApiVersion"]);
    assert_eq!(j["summary"]["version"], direct["Version"]);
    assert!(j["message"].as_str().unwrap().contains(direct["Version"].as_str().unwrap()));
    // Negotiated: min(ours, the engine's).
    let negotiated = j["summary"]["negotiated_api_version"].as_str().unwrap();
    assert_eq!(negotiated, direct["ApiVersion"].as_str().unwrap().min("1.56"));

    let pretty = b.run(&["run", "system.version", "-o", "pretty"]);
    assert!(pretty.stdout.starts_with("success: Docker Engine"), "{}", pretty.stdout);
}

#[test]
fn ping_reports_engine_headers() {
    let r = Berth::system().run(&["run", "system.ping"]);
    let j = r.ok();
    assert_eq!(j["data"][0]["ok"], true);
    assert_eq!(j["data"][0]["os_type"], "linux");
    assert!(j["data"][0]["api_version"].as_str().unwrap().starts_with("1."));
}

#[test]
fn info_and_df_see_the_test_image() {
    let image = test_image();
    let b = Berth::system();
    let info = b.run(&["run", "system.info"]);
    let j = info.ok();
    assert!(j["summary"]["images"].as_u64().unwrap() >= 1, "{j}");
    assert_eq!(j["data"][0]["Name"], api_json(Method::GET, "/info", "")["Name"]);

    let df = b.run(&["run", "system.df"]);
    let j = df.ok();
    let images = j["data"][0]["Images"].as_array().unwrap();
    assert!(images.iter().any(|i| i["RepoTags"].as_array().is_some_and(|t| t.iter().any(|t| t == image))), "{j}");
    assert!(j["summary"]["layers_size"].as_u64().unwrap() > 0);
}

#[test]
fn df_type_filter_needs_api_1_42() {
    let b = Berth::system();
    let r = b.run(&["run", "system.df", "type=image"]);
    let engine_api = api_json(Method::GET, "/version", "")["ApiVersion"].as_str().unwrap().to_string();
    let (maj, min) = engine_api.split_once('.').unwrap();
    if (maj.parse::<u32>().unwrap(), min.parse::<u32>().unwrap()) < (1, 42) {
        r.expect_code(2);
        assert!(r.message().contains("needs API >= 1.42"), "{r:#?}");
    } else {
        r.ok();
    }
    let bad = b.run(&["run", "system.df", "type=bogus"]);
    assert_ne!(bad.code, 0);
}

#[test]
fn events_end_at_until_and_honour_filters() {
    let image = test_image();
    let tag = unique("evt");
    let q = format!("repo=berth-test%2F{tag}&tag=v1");
    let (s, _) = api(Method::POST, &format!("/images/{}/tag", image.replace('/', "%2F")), &q, None);
    assert_eq!(s, 201);
    std::thread::sleep(Duration::from_millis(1100));
    let r =
        Berth::system().run_within(Duration::from_secs(30), &["run", "system.events", "since=2m", "until=0s", r#"filters={"type":["image"],"event":["tag"]}"#]);
    let j = r.ok();
    assert_eq!(j["summary"]["ended_by"], "until", "{j}");
    let events = j["data"].as_array().unwrap();
    assert!(events.iter().all(|e| e["Type"] == "image" && e["Action"] == "tag"), "{j}");
    assert!(events.iter().any(|e| e["Actor"]["Attributes"]["name"].as_str().is_some_and(|n| n.contains(&tag))), "{j}");
    assert_eq!(j["summary"]["total_events"].as_u64().unwrap() as usize, events.len());
    api(Method::DELETE, &format!("/images/berth-test%2F{tag}:v1"), "", None);
}

#[test]
fn events_stop_at_max_events_and_max_duration() {
    let image = test_image();
    for _ in 0..2 {
        let tag = unique("evt");
        api(Method::POST, &format!("/images/{}/tag", image.replace('/', "%2F")), &format!("repo=berth-test%2F{tag}&tag=v1"), None);
        api(Method::DELETE, &format!("/images/berth-test%2F{tag}:v1"), "", None);
    }
    let b = Berth::system();
    let r = b.run_within(Duration::from_secs(30), &["run", "system.events", "since=1h", "max_events=1"]);
    let j = r.ok();
    assert_eq!(j["summary"]["ended_by"], "max_events");
    assert_eq!(j["data"].as_array().unwrap().len(), 1);

    // A live stream with nothing happening ends at max_duration instead of hanging.
    let r = b.run_within(Duration::from_secs(30), &["run", "system.events", "max_duration=1", r#"filters={"type":["plugin"]}"#]);
    let j = r.ok();
    assert_eq!(j["summary"]["ended_by"], "max_duration");
    assert_eq!(j["summary"]["total_events"], 0);

    let bad = b.run(&["run", "system.events", "since=yesterday"]);
    bad.expect_code(2);
    assert!(bad.message().contains("'since'"), "{bad:#?}");
    b.run(&["run", "system.events", "max_duration=0"]).expect_code(2);
}

#[test]
fn test_connectivity_runs_ping_and_version() {
    let r = Berth::system().run(&["run", "system.test-connectivity"]);
    let j = r.ok();
    assert!(j["message"].as_str().unwrap().starts_with("Connectivity test passed"));
    assert_eq!(j["summary"]["version"], api_json(Method::GET, "/version", "")["Version"]);
    assert_eq!(j["summary"]["transport"], "unix");
    assert!(j["data"][0]["tls"].is_null());
    // The Splunk SOAR app's name for it does the same.
    let soar = Berth::system().run(&["run", "test connectivity"]);
    assert_eq!(soar.ok()["summary"]["version"], j["summary"]["version"]);
}

#[test]
fn auth_fails_clearly_offline_and_never_leaks_the_password() {
    let b = Berth::system();
    // No credentials held for the registry: a param problem, before any engine call.
    let r = b.run(&["run", "system.auth", "registry=127.0.0.1:1"]);
    r.expect_code(2);
    assert!(r.message().contains("no credentials held for registry '127.0.0.1:1'"), "{r:#?}");

    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.json");
    let secret = "pw-Zq8-never-print-me";
    std::fs::write(&creds, json!({"registries": {"127.0.0.1:1": {"username": "alice", "password": secret}}}).to_string()).unwrap();
    let b = b.env("BERTH_CREDENTIALS", creds.to_str().unwrap()).env("BERTH_LOG", "berth=trace");
    let r = b.run_within(Duration::from_secs(60), &["run", "system.auth", "registry=127.0.0.1:1"]);
    r.expect_code(1);
    assert!(r.message().contains("login to registry 127.0.0.1:1 failed"), "{r:#?}");
    assert!(!r.stdout.contains(secret) && !r.stderr.contains(secret), "the password leaked: {r:#?}");

    // docker CLI config: base64 user:pass in auths.
    let cfg = dir.path().join("docker");
    std::fs::create_dir(&cfg).unwrap();
    std::fs::write(cfg.join("config.json"), r#"{"auths":{"127.0.0.1:1":{"auth":"Ym9iOnB3LWZyb20tZG9ja2VyLWNvbmZpZw=="}}}"#).unwrap();
    let plain = Berth::system();
    let mut c = plain.command(&["run", "system.auth", "registry=127.0.0.1:1"]);
    c.env("DOCKER_CONFIG", &cfg).env("BERTH_LOG", "berth=trace");
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(all.contains("login to registry 127.0.0.1:1 failed"), "{all}");
    assert!(!all.contains("pw-from-docker-config"), "{all}");
}

#[test]
fn engine_down_is_a_clear_error_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Berth::system();
    b.host = format!("unix://{}/nothing-here.sock", dir.path().display());
    b.env.push(("BERTH_LOG".into(), "berth=info".into()));
    let r = b.run_within(Duration::from_secs(30), &["run", "system.version"]);
    r.expect_code(1);
    assert!(r.message().contains("cannot connect to the Docker engine at unix://"), "{r:#?}");
    assert!(r.message().contains("is dockerd running?"), "{r:#?}");
    assert!(r.stderr.contains("system.version failed"), "{r:#?}");
    // No socket at the path: failed at once, like the docker CLI, not retried with back-off
    // (a socket nobody listens on, a daemon restarting, is still retried).
    assert!(!r.stderr.contains("retrying"), "{r:#?}");
    b.env.pop();

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let r = b.run(&["--host", &format!("tcp://127.0.0.1:{closed}"), "run", "system.version"]);
    r.expect_code(1);
    assert!(r.message().contains("cannot connect to the Docker engine at tcp://127.0.0.1"), "{r:#?}");
    // ssh to a host that does not resolve: ssh's own words, not a hang.
    let bad = b.run_within(Duration::from_secs(60), &["--host", "ssh://user@nonexistent.invalid", "run", "system.version"]);
    bad.expect_code(1);
    assert!(bad.message().contains("ssh to ssh://user@nonexistent.invalid ended before the engine answered"), "{bad:#?}");
    assert!(bad.message().contains("Could not resolve hostname"), "{bad:#?}");
    let bad = b.run(&["--host", "fd://3", "run", "system.version"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("scheme 'fd' is not supported"), "{bad:#?}");
    // No port: 2375, as the docker CLI reads it.
    let bad = b.run(&["--host", "tcp://nohost", "run", "system.version"]);
    bad.expect_code(1);
    assert!(bad.stderr.contains("tcp://nohost:2375"), "{bad:#?}");
}

#[test]
fn the_engine_over_plain_tcp() {
    // The real engine behind a TCP hop (a byte-for-byte relay to its socket).
    let tcp = tcp_relay(docker_host().trim_start_matches("unix://"));
    let mut b = Berth::with(&[("system.wasm", system_wasm()), ("container.wasm", wasm("berth-action-container"))]);
    b.host = tcp.clone();
    let j = b.run(&["run", "system.version"]).ok().clone();
    assert_eq!(j["summary"]["negotiated_api_version"], "1.41", "{j}");
    // A hijacked connection (exec with stdin) works over TCP too.
    let img = test_image();
    let j = b.run(&["run", "container.create", &format!("image={img}"), "network_mode=none", "cmd=sleep 120"]).ok().clone();
    let id = j["summary"]["id"].as_str().unwrap().to_string();
    b.run(&["run", "container.start", &format!("id={id}")]).ok();
    let j = b.run(&["run", "container.exec", &format!("id={id}"), "cmd=cat", "stdin=over tcp"]).ok().clone();
    assert_eq!(j["data"][0]["stdout"], "over tcp", "{j}");
    b.run(&["run", "container.remove", &format!("id={id}"), "force=true"]).ok();
    // DOCKER_HOST as the docker CLI reads it: no scheme is tcp, a bare path is the socket.
    b.host = tcp.trim_start_matches("tcp://").to_string();
    assert_eq!(b.run(&["run", "system.version"]).ok()["summary"]["negotiated_api_version"], "1.41");
    b.host = docker_host().trim_start_matches("unix://").to_string();
    b.run(&["run", "system.ping"]).ok();
    // tcp://HOST alone is port 2375 (nothing listens there on a test machine).
    if std::net::TcpStream::connect("127.0.0.1:2375").is_err() {
        b.host = "tcp://127.0.0.1".into();
        let r = b.run(&["run", "system.ping"]);
        assert!(r.message().contains("tcp://127.0.0.1:2375"), "{r:#?}");
    }
}

#[test]
fn an_engine_that_never_answers_times_out() {
    // Fault injection the real engine cannot produce: accepts, reads, never answers.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("mute.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            held.push(s);
        }
    });
    let mut b = Berth::system();
    b.host = format!("unix://{}", sock.display());
    let r = b.run_within(Duration::from_secs(30), &["--header-timeout", "1", "run", "system.ping"]);
    r.expect_code(1);
    assert!(r.message().contains("sent no response headers within 1s"), "{r:#?}");
}

#[test]
fn an_engine_that_refuses_our_version_gets_a_clear_error() {
    // Fault injection: an engine that advertises an API version but then rejects it.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("old.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            std::thread::spawn(move || loop {
                let mut buf = [0u8; 4096];
                let n = match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let req = String::from_utf8_lossy(&buf[..n]);
                let resp = if req.contains("/_ping") {
                    "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK".to_string()
                } else {
                    let body = r#"{"message":"client version 1.41 is too new. Maximum supported API version is 1.40"}"#;
                    format!("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                };
                if s.write_all(resp.as_bytes()).is_err() {
                    return;
                }
            });
        }
    });
    let mut b = Berth::system();
    b.host = format!("unix://{}", sock.display());
    let r = b.run_within(Duration::from_secs(30), &["run", "system.version"]);
    r.expect_code(1);
    assert!(r.message().contains("refused API 1.41") && r.message().contains("too new"), "{r:#?}");
}

#[test]
fn bad_params_exit_2_naming_the_param_and_type() {
    let b = Berth::system();
    let cases: &[(&[&str], &str)] = &[
        (&["run", "system.events", "max_events=lots"], "parameter 'max_events' must be an integer, got \"lots\""),
        (&["run", "system.events", "colour=blue"], "unknown parameter 'colour' for system.events"),
        (&["run", "system.events", "novalue"], "parameter 'novalue' must be key=value"),
        (&["run", "system.events", "--params-json", "{\"max_events\": true}"], "parameter 'max_events' must be an integer, got true"),
        (&["run", "system.events", "--params-json", "[1]"], "--params-json must be a JSON object"),
        (&["run", "system.events", "--params-json", "{oops"], "--params-json is not valid JSON"),
        (&["run", "system.nope"], "unknown action 'system.nope'"),
        (&["run", "system.version", "--memory-mb", "0"], "--memory-mb: 0 is not between 1 and 4096"),
    ];
    for (args, want) in cases {
        let r = b.run(args);
        assert_eq!(r.code, 2, "{args:?}: {r:#?}");
        assert!(r.stderr.contains(want), "{args:?}: want {want:?} in {r:#?}");
    }
    // The params file form works and is validated the same way.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.json");
    std::fs::write(&f, r#"{"max_events": "1", "since": "1h"}"#).unwrap();
    let r = b.run_within(Duration::from_secs(30), &["run", "system.events", "--params-json", &format!("@{}", f.display())]);
    assert_eq!(r.ok()["parameter"]["max_events"], json!(1));
}

#[test]
fn output_defaults_to_json_when_not_a_tty() {
    let r = Berth::system().run(&["run", "system.ping"]);
    assert!(r.json.is_some(), "{r:#?}");
    assert!(matches!(r.json()["data"], Value::Array(_)));
}

#[test]
fn the_cli_rebuilds_a_corrupt_cache_entry() {
    let cache = tempfile::tempdir().unwrap();
    let mut b = Berth::system();
    b.cache = cache.path().to_path_buf();
    b.run(&["run", "system.ping"]).ok();
    let entry =
        std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|x| x == "cwasm")).expect("a compiled entry");
    let mut bytes = std::fs::read(&entry).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x5a;
    std::fs::write(&entry, &bytes).unwrap();
    let r = b.run(&["run", "system.ping"]);
    r.ok();
    assert!(r.stderr.contains("discarding bad cache entry") && r.stderr.contains("checksum mismatch"), "{r:#?}");
    // Rewritten: the next run is quiet.
    let r = b.run(&["run", "system.ping"]);
    r.ok();
    assert!(!r.stderr.contains("discarding"), "{r:#?}");
    // A corrupt index is rebuilt too.
    std::fs::write(cache.path().join("index.json"), b"{not json").unwrap();
    b.run(&["run", "system.version"]).ok();
}

#[test]
fn shell_completions() {
    for shell in ["bash", "zsh", "fish"] {
        let r = Berth::system().run(&["completions", shell]);
        r.expect_code(0);
        assert!(r.stdout.contains("berth") && r.stdout.contains("serve") && r.stdout.contains("policy"), "{shell}: {}", &r.stdout[..r.stdout.len().min(300)]);
    }
}

#[test]
fn retries_of_a_refused_engine_are_said_and_can_be_set() {
    // Nothing listens on this port: every connection is refused.
    let mut b = Berth::system();
    b.host = format!("tcp://127.0.0.1:{}", free_port());
    let r = b.clone_with_env("BERTH_ENGINE_RETRY_BASE_MS", "20").run(&["run", "system.version"]);
    r.expect_code(1);
    assert!(r.stderr.contains("Connection refused") && r.stderr.contains("retrying HEAD up to 5 times (BERTH_ENGINE_RETRIES)"), "{r:#?}");
    let started = std::time::Instant::now();
    let r = b.clone_with_env("BERTH_ENGINE_RETRIES", "0").run(&["run", "system.version"]);
    r.expect_code(1);
    assert!(!r.stderr.contains("retrying"), "{r:#?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "no retries: {:?}", started.elapsed());
}

#[test]
fn docker_api_version_pins_the_version_as_the_docker_cli_reads_it() {
    let b = Berth::system();
    let j = b.clone_with_env("DOCKER_API_VERSION", "1.40").run(&["run", "system.version"]).ok().clone();
    assert_eq!(j["summary"]["negotiated_api_version"], "1.40", "{j}");
    // Pinned means no renegotiation: the engine's refusal is the answer, as with the docker CLI.
    let r = b.clone_with_env("DOCKER_API_VERSION", "1.99").run(&["run", "system.version"]);
    r.expect_code(1);
    assert!(r.message().contains("1.99 is too new"), "{r:#?}");
    for bad in ["abc", "2.0", "1.12"] {
        let r = b.clone_with_env("DOCKER_API_VERSION", bad).run(&["run", "system.version"]);
        r.expect_code(2);
        assert!(r.stderr.contains("DOCKER_API_VERSION"), "{bad}: {r:#?}");
    }
}

/// `berth actions | grep` sees the table a terminal shows; JSON is asked for. Compiling (a
/// cache miss) is said on stderr when asked (`--progress`), and is silent otherwise when
/// stderr is not a terminal.
#[test]
fn listings_keep_their_format_when_piped_and_compiles_say_so_when_asked() {
    let mut b = Berth::system();
    let listed = b.run(&["actions"]);
    listed.expect_code(0);
    assert!(listed.json.is_none() && listed.stdout.starts_with("NAME"), "{listed:#?}");
    assert!(listed.stdout.lines().any(|l| l.starts_with("system.ping ")), "{listed:#?}");
    assert!(b.run(&["actions", "--json"]).json()["actions"].is_array());
    assert!(b.run(&["-o", "json", "actions"]).json()["actions"].is_array());
    let d = b.run(&["describe", "system.events"]);
    assert!(d.json.is_none() && d.stdout.contains("max_duration"), "{d:#?}");

    let cache = tempfile::tempdir().unwrap();
    b.cache = cache.path().to_path_buf();
    let first = b.run(&["actions", "--progress"]);
    first.expect_code(0);
    assert!(first.stderr.contains("compiling ") && first.stderr.contains("system.wasm"), "{first:#?}");
    assert!(first.stderr.contains("compiled ") && first.stderr.contains(" s\n"), "{first:#?}");
    let again = b.run(&["actions", "--progress"]);
    assert!(!again.stderr.contains("compiling"), "cached: nothing to say: {again:#?}");
    let quiet_cache = tempfile::tempdir().unwrap();
    b.cache = quiet_cache.path().to_path_buf();
    let quiet = b.run(&["actions"]);
    assert!(!quiet.stderr.contains("compiling"), "not asked, not a terminal: {quiet:#?}");
}

/// Each command's help lists the options it reads, each with its help text; the engine and
/// sandbox options are accepted anywhere but shown only for `run`.
#[test]
fn help_shows_each_commands_own_options() {
    let b = Berth::system();
    let help = |args: &[&str]| {
        let r = b.run(args);
        r.expect_code(0);
        r.stdout.clone()
    };
    let new = help(&["new", "--help"]);
    for hidden in ["--host", "--tlscert", "--memory-mb", "--policy", "--actions"] {
        assert!(!new.contains(hidden), "berth new --help shows {hidden}:\n{new}");
    }
    assert!(new.contains("--lang") && new.contains("--dir"), "{new}");
    for cmd in ["check", "install", "describe", "actions"] {
        let h = help(&[cmd, "--help"]);
        assert!(!h.contains("--tlscert") && !h.contains("--memory-mb"), "{cmd}:\n{h}");
        assert!(h.contains("--actions") && h.contains("--cache"), "{cmd}:\n{h}");
        // Every option and argument line carries its help text.
        for line in h.lines().filter(|l| l.starts_with("  -") || l.starts_with("      --") || l.starts_with("  <")) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let flag_words = words.iter().take_while(|w| w.starts_with('-') || w.starts_with('<')).count();
            assert!(words.len() > flag_words, "{cmd}: no help text for {line:?}");
        }
    }
    let run = help(&["run", "--help"]);
    assert!(run.contains("--tlscert") && run.contains("--memory-mb") && run.contains("Engine options"), "{run}");
    // Accepted before or after the command, and everywhere.
    assert!(help(&["-H", "unix:///nonexistent.sock", "new", "--help"]).contains("--lang"));
    b.run(&["actions", "-H", "unix:///nonexistent.sock"]).expect_code(0);
}

/// The engine behind an authenticating proxy (FortiSOAR's setup): basic auth from the address
/// or from flags and a file, a bearer token from a file; the secret is never shown.
#[test]
fn an_engine_behind_an_authenticating_proxy() {
    use base64::Engine as _;
    use common::authproxy::AuthProxy;
    let basic = AuthProxy::start(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("soar:pa@ss w0rd")));
    let mut b = Berth::with(&[("system.wasm", system_wasm()), ("container.wasm", wasm("berth-action-container"))]);
    // Directly, without credentials: the proxy's 401.
    b.host = format!("tcp://{}", basic.addr);
    let r = b.run(&["run", "system.ping"]);
    r.expect_code(1);
    assert!(r.message().contains("the proxy wants valid credentials"), "{r:#?}");
    // In the address, percent-encoded as a URL's userinfo.
    b.host = format!("tcp://soar:pa%40ss%20w0rd@{}", basic.addr);
    assert_eq!(b.run(&["run", "system.version"]).ok()["summary"]["negotiated_api_version"], "1.41");
    // A wrong one fails with the proxy's answer, and the password is never echoed.
    b.host = format!("tcp://soar:hunter2-wrong@{}", basic.addr);
    let r = b.run(&["run", "system.ping"]);
    r.expect_code(1);
    let shown = format!("{}{}", r.stdout, r.stderr);
    assert!(!shown.contains("hunter2-wrong") && shown.contains("the proxy wants valid credentials"), "{shown}");
    // Nor when nothing answers at all.
    b.host = "tcp://soar:hunter2-refused@127.0.0.1:1".into();
    let r = b.run(&["run", "system.ping"]);
    let shown = format!("{}{}", r.stdout, r.stderr);
    assert!(!shown.contains("hunter2") && shown.contains("tcp://127.0.0.1:1"), "{shown}");
    // From flags and a file, and every call carries it (a container listed, inspected).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "pa@ss w0rd\n").unwrap();
    b.host = format!("tcp://{}", basic.addr);
    let pw = dir.path().join("pw");
    let flags = ["--engine-username", "soar", "--engine-password-file", pw.to_str().unwrap()];
    let seen_before = basic.seen.lock().unwrap().len();
    let mut args = flags.to_vec();
    args.extend(["run", "container.list", "all=true"]);
    b.run(&args).ok();
    let seen = basic.seen.lock().unwrap()[seen_before..].to_vec();
    assert!(!seen.is_empty() && seen.iter().all(|a| a.starts_with("Basic ")), "{seen:?}");
    let r = b.run(&["--engine-username", "soar", "run", "system.ping"]);
    r.expect_code(2);
    assert!(r.stderr.contains("needs a password file"), "{r:#?}");

    let bearer = AuthProxy::start("Bearer t0k3n-for-the-proxy");
    std::fs::write(dir.path().join("token"), "t0k3n-for-the-proxy\n").unwrap();
    b.host = format!("tcp://{}", bearer.addr);
    let token = dir.path().join("token");
    let r = b.clone_with_env("BERTH_ENGINE_TOKEN_FILE", token.to_str().unwrap()).run(&["run", "system.ping"]);
    r.ok();
    assert!(!format!("{r:?}").contains("t0k3n"), "{r:#?}");
}
