//! A minimal Docker volume plugin (protocol docker.volumedriver/1.0) for berth's plugin
//! tests: it serves HTTP/1.1 on /run/docker/plugins/berth.sock and keeps its volumes in
//! memory. Volume `Status` carries the plugin's GREETING setting, so a test can see
//! `plugin.set` take effect.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};

const SOCKET: &str = "/run/docker/plugins/berth.sock";

fn field(body: &str, key: &str) -> String {
    // `"Name":"x"` from a small JSON body, without a JSON library.
    let pat = format!("\"{key}\":\"");
    body.find(&pat)
        .map(|i| {
            let rest = &body[i + pat.len()..];
            rest[..rest.find('"').unwrap_or(rest.len())].to_string()
        })
        .unwrap_or_default()
}

fn handle(stream: UnixStream, volumes: &Mutex<BTreeSet<String>>, greeting: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            if h.trim().is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body)?;
        let body = String::from_utf8_lossy(&body);
        let name = field(&body, "Name");
        let mut vols = volumes.lock().unwrap();
        let reply = match path.as_str() {
            "/Plugin.Activate" => r#"{"Implements":["VolumeDriver"]}"#.to_string(),
            "/VolumeDriver.Capabilities" => r#"{"Capabilities":{"Scope":"local"}}"#.to_string(),
            "/VolumeDriver.Create" => {
                vols.insert(name);
                r#"{"Err":""}"#.to_string()
            }
            "/VolumeDriver.Remove" => {
                vols.remove(&name);
                r#"{"Err":""}"#.to_string()
            }
            "/VolumeDriver.Get" if vols.contains(&name) => {
                format!(r#"{{"Volume":{{"Name":"{name}","Mountpoint":"","Status":{{"greeting":"{greeting}"}}}},"Err":""}}"#)
            }
            "/VolumeDriver.Get" => r#"{"Err":"no such volume"}"#.to_string(),
            "/VolumeDriver.List" => {
                let list: Vec<String> = vols.iter().map(|v| format!(r#"{{"Name":"{v}","Mountpoint":""}}"#)).collect();
                format!(r#"{{"Volumes":[{}],"Err":""}}"#, list.join(","))
            }
            "/VolumeDriver.Path" | "/VolumeDriver.Mount" => r#"{"Mountpoint":"/tmp","Err":""}"#.to_string(),
            "/VolumeDriver.Unmount" => r#"{"Err":""}"#.to_string(),
            _ => r#"{"Err":"not implemented"}"#.to_string(),
        };
        drop(vols);
        let mut w = &stream;
        write!(w, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.plugins.v1+json\r\nContent-Length: {}\r\n\r\n{reply}", reply.len())?;
        w.flush()?;
    }
}

fn main() {
    let greeting = std::env::var("GREETING").unwrap_or_default();
    let _ = std::fs::create_dir_all("/run/docker/plugins");
    let _ = std::fs::remove_file(SOCKET);
    let listener = UnixListener::bind(SOCKET).expect("bind the plugin socket");
    let volumes = Arc::new(Mutex::new(BTreeSet::new()));
    for stream in listener.incoming().flatten() {
        let (v, g) = (volumes.clone(), greeting.clone());
        std::thread::spawn(move || {
            let _ = handle(stream, &v, &g);
        });
    }
}
