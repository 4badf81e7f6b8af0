//! An authenticating proxy in front of the real engine, as FortiSOAR users put one: it lets a
//! connection through to the engine's socket only when its first request carries the expected
//! `Authorization`, and answers 401 otherwise. It records the `Authorization` values it saw.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

pub struct AuthProxy {
    pub addr: String,
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl AuthProxy {
    /// Listens on a free loopback port; `expected` is the whole header value (`Basic …`,
    /// `Bearer …`).
    pub fn start(expected: &str) -> AuthProxy {
        let engine = crate::docker_host();
        let socket = engine.strip_prefix("unix://").expect("the test engine is on a unix socket").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (expected, seen2) = (expected.to_string(), seen.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (socket, expected, seen) = (socket.clone(), expected.clone(), seen2.clone());
                std::thread::spawn(move || serve(conn, &socket, &expected, &seen));
            }
        });
        AuthProxy { addr, seen }
    }
}

fn serve(mut client: TcpStream, socket: &str, expected: &str, seen: &Mutex<Vec<String>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let auth = text.lines().find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("authorization")).map(|(_, v)| v.trim().to_string()));
    seen.lock().unwrap().push(auth.clone().unwrap_or_default());
    if auth.as_deref() != Some(expected) {
        let body = r#"{"message":"the proxy wants valid credentials"}"#;
        let _ =
            write!(client, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        return;
    }
    let Ok(mut engine) = UnixStream::connect(socket) else { return };
    if engine.write_all(&head).is_err() {
        return;
    }
    let (mut c2, mut e2) = (client.try_clone().unwrap(), engine.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut e2);
        let _ = e2.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut engine, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Both);
    let _ = up.join();
}
