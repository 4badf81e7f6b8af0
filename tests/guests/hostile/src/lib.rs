//! A deliberately badly behaved family for the sandbox tests, plus probes of the host's
//! artifact and stream paths. Never install it beside real families.

use berth_sdk::prelude::*;

fn actions() -> Vec<Action> {
    vec![
        Action::new("test.spin", "Spin forever").read_only().run(spin),
        Action::new("test.alloc", "Allocate `mb` MiB, 1 MiB at a time").read_only().param(Param::int("mb").default(1024)).run(alloc),
        Action::new("test.escape", "Try to open a host file, a TCP socket and env vars").read_only().run(escape),
        Action::new("test.post-readonly", "A read-only action that issues POST /containers/prune").read_only().run(post_readonly),
        Action::new("test.delete-readonly", "A read-only action that ignores the denial and goes on").read_only().run(delete_readonly),
        Action::new("test.bad-paths", "Engine paths the host must refuse").read_only().run(bad_paths),
        Action::new("test.flood", "Issue `n` engine calls").read_only().param(Param::int("n").default(1000)).run(flood),
        Action::new("test.print", "Write to stdout and stderr").read_only().run(print),
        Action::new("test.panic", "Panic").read_only().run(|_| panic!("deliberate panic in test.panic")),
        Action::new("test.save", "GET /images/{name}/get into artifact `out`").read_only().param(Param::string("name").required()).run(save),
        Action::new("test.load", "POST /images/load from artifact `in`").run(load),
        Action::new("test.raw", "Send any engine request: what a dropped-in component can do")
            .param(Param::string("method").default("GET"))
            .param(Param::string("path").required())
            .param(Param::array("query").describe("[[key, value], ...], repeats kept"))
            .param(Param::any("body"))
            .param(Param::string("raw_body").describe("sent as the body's exact bytes (repeated keys, odd spellings)"))
            .param(Param::string("registry"))
            .run(raw),
        Action::new("test.big-read", "Read /info `n` times, keeping every body").read_only().param(Param::int("n").default(10)).run(big_read),
    ]
}

berth_sdk::family!(name: "test", actions: actions);

fn spin(_: &Params) -> Result<Output> {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
    }
}

fn alloc(p: &Params) -> Result<Output> {
    let mb = p.i64("mb").unwrap_or(1024) as usize;
    let mut keep: Vec<Vec<u8>> = Vec::new();
    for _ in 0..mb {
        keep.push(vec![1u8; 1 << 20]);
    }
    Ok(Output::new(format!("allocated {} MiB", keep.len())))
}

fn escape(_: &Params) -> Result<Output> {
    let file = match std::fs::read("/etc/hostname") {
        Ok(b) => format!("READ {} bytes", b.len()),
        Err(e) => format!("error: {e}"),
    };
    let dir = match std::fs::read_dir("/") {
        Ok(_) => "LISTED /".to_string(),
        Err(e) => format!("error: {e}"),
    };
    let socket = match std::net::TcpStream::connect("127.0.0.1:22") {
        Ok(_) => "CONNECTED".to_string(),
        Err(e) => format!("error: {e}"),
    };
    let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    let args: Vec<String> = std::env::args().collect();
    Ok(Output::one("escape attempts done", json!({"file": file, "dir": dir, "socket": socket, "env": env, "args": args})))
}

fn post_readonly(_: &Params) -> Result<Output> {
    post("/containers/prune").send()?;
    Ok(Output::new("POST went through"))
}

fn delete_readonly(_: &Params) -> Result<Output> {
    let denied = delete("/images/berth-test%2Fnope").send().err().map(|e| e.to_string());
    Ok(Output::one("ignored the denial", json!({"denied": denied})))
}

fn bad_paths(_: &Params) -> Result<Output> {
    let mut out = Vec::new();
    for p in ["/containers/../../etc/passwd", "/v1.41/info", "http://evil.example/info", "//evil/info", "info", "/images/a%2F..%2Fb/json", "/info?x=1"] {
        let r = get(p).send();
        out.push(json!({"path": p, "result": match r { Ok(resp) => format!("SENT {}", resp.status), Err(e) => format!("{e}") }}));
    }
    let method = Request::new("PATCH", "/info").send().err().map(|e| e.to_string());
    out.push(json!({"path": "PATCH /info", "result": method}));
    let header = get("/info").header("X-Registry-Auth", "x").send().err().map(|e| e.to_string());
    out.push(json!({"path": "X-Registry-Auth header", "result": header}));
    let mut o = Output::new("tried bad paths");
    o.data = out;
    Ok(o)
}

fn flood(p: &Params) -> Result<Output> {
    let n = p.i64("n").unwrap_or(1000);
    for i in 0..n {
        get("/_ping").send().map_err(|e| Error::Internal(format!("call {i}: {e}")))?;
    }
    Ok(Output::new(format!("{n} calls made")))
}

fn print(_: &Params) -> Result<Output> {
    println!("hello from guest stdout");
    eprintln!("hello from guest stderr");
    Ok(Output::new("printed"))
}

fn save(p: &Params) -> Result<Output> {
    let name = p.req_str("name")?;
    let info = get(format!("/images/{}/get", berth_sdk::seg(name))).to_artifact("out")?;
    Ok(Output::one("saved", json!({"size": info.size, "sha256": info.sha256})))
}

fn load(_: &Params) -> Result<Output> {
    let r = post("/images/load").query("quiet", "1").artifact("in", "application/x-tar").send_ok()?;
    Ok(Output::one("loaded", json!({"response": r.text()})))
}

fn big_read(p: &Params) -> Result<Output> {
    let mut keep = Vec::new();
    for _ in 0..p.i64("n").unwrap_or(10) {
        keep.push(get("/info").send_ok()?.body);
    }
    Ok(Output::new(format!("read {} bytes", keep.iter().map(Vec::len).sum::<usize>())))
}

fn raw(p: &Params) -> Result<Output> {
    let mut req = Request::new(p.str("method").unwrap_or("GET"), p.req_str("path")?);
    if let Some(Value::Array(pairs)) = p.get("query") {
        for pair in pairs {
            let k = pair[0].as_str().unwrap_or_default();
            let v = match &pair[1] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            req = req.query(k, v);
        }
    }
    if let Some(raw) = p.str("raw_body") {
        req = req.bytes(raw.as_bytes().to_vec(), "application/json");
    } else if let Some(b) = p.get("body").filter(|b| !b.is_null()) {
        req = req.json(b);
    }
    if let Some(r) = p.str("registry") {
        req = req.registry(r);
    }
    let resp = req.send()?;
    Ok(Output::one(format!("engine answered {}", resp.status), json!({"status": resp.status, "body": resp.text()})))
}
