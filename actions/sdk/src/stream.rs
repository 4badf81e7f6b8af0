//! Streamed engine responses: raw chunks and JSON-message streams (events, progress).

use std::time::{Duration, Instant};

use crate::bindings::berth::connector::engine::BodyStream;
use crate::bindings::berth::connector::types::Chunk;
use crate::{Error, Result, Value};

const READ_SIZE: u32 = 64 * 1024;

pub struct Stream {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    body: BodyStream,
    ended: bool,
}

/// One read from a stream.
pub enum Read {
    Data(Vec<u8>),
    End,
    Idle,
}

impl Stream {
    pub(crate) fn new(status: u16, headers: Vec<(String, String)>, body: BodyStream) -> Self {
        Stream { status, headers, body, ended: false }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        crate::engine::header(&self.headers, name)
    }

    /// Reads the next chunk, waiting at most `timeout`.
    pub fn read(&mut self, timeout: Duration) -> Result<Read> {
        if self.ended {
            return Ok(Read::End);
        }
        let ms = timeout.as_millis().min(u32::MAX as u128) as u32;
        match self.body.read(READ_SIZE, ms).map_err(Error::from)? {
            Chunk::Data(d) => Ok(Read::Data(d)),
            Chunk::End => {
                self.ended = true;
                Ok(Read::End)
            }
            Chunk::Idle => Ok(Read::Idle),
        }
    }

    /// Reads everything, up to `cap` bytes (the rest is dropped).
    pub fn read_to_end(mut self, cap: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            match self.read(Duration::from_secs(30))? {
                Read::Data(d) => {
                    let room = cap.saturating_sub(out.len());
                    out.extend_from_slice(&d[..d.len().min(room)]);
                }
                Read::End => return Ok(out),
                Read::Idle => return Err(Error::Engine { status: 0, message: "engine stopped sending".into() }),
            }
        }
    }

    /// Turns the stream into an iterator of JSON messages (one object per message, as the
    /// engine sends events and progress), bounded by `deadline`.
    pub fn json_messages(self, deadline: Instant) -> JsonMessages {
        JsonMessages { stream: self, buf: Vec::new(), deadline, timed_out: false }
    }
}

/// Iterator over JSON messages of a stream; ends at stream end or at the deadline.
pub struct JsonMessages {
    stream: Stream,
    buf: Vec<u8>,
    deadline: Instant,
    timed_out: bool,
}

impl JsonMessages {
    /// True when iteration stopped because the deadline passed.
    pub fn timed_out(&self) -> bool {
        self.timed_out
    }

    /// The next complete message in the buffer, if one has fully arrived.
    fn take_message(&mut self) -> Option<Result<Value>> {
        let start = self.buf.iter().position(|b| !b.is_ascii_whitespace())?;
        let mut de = serde_json::Deserializer::from_slice(&self.buf[start..]).into_iter::<Value>();
        match de.next() {
            Some(Ok(v)) => {
                let used = start + de.byte_offset();
                self.buf.drain(..used);
                Some(Ok(v))
            }
            Some(Err(e)) if e.is_eof() => None,
            Some(Err(e)) => {
                self.buf.clear();
                Some(Err(Error::internal(format!("engine sent a malformed stream message ({e})"))))
            }
            None => {
                self.buf.clear();
                None
            }
        }
    }
}

impl Iterator for JsonMessages {
    type Item = Result<Value>;

    fn next(&mut self) -> Option<Result<Value>> {
        loop {
            if let Some(m) = self.take_message() {
                return Some(m);
            }
            let now = Instant::now();
            if now >= self.deadline {
                self.timed_out = true;
                return None;
            }
            match self.stream.read(self.deadline - now) {
                Ok(Read::Data(d)) => self.buf.extend_from_slice(&d),
                Ok(Read::End) => return None,
                Ok(Read::Idle) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Which stream a piece of container output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Stdin,
    Stdout,
    Stderr,
    /// Stream type 3: an error the engine reports in-band.
    SystemError,
}

/// Splits Docker's multiplexed stream (8-byte header: type, 0, 0, 0, big-endian length) into
/// frames. Feed it chunks as they arrive; whole frames come out.
#[derive(Debug, Default)]
pub struct Demux {
    buf: Vec<u8>,
}

impl Demux {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<(Output, Vec<u8>)> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        loop {
            if self.buf.len() < 8 {
                break;
            }
            let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
            if self.buf.len() < 8 + len {
                break;
            }
            let kind = match self.buf[0] {
                0 => Output::Stdin,
                1 => Output::Stdout,
                2 => Output::Stderr,
                _ => Output::SystemError,
            };
            let payload = self.buf[8..8 + len].to_vec();
            self.buf.drain(..8 + len);
            out.push((kind, payload));
        }
        out
    }

    /// Bytes of an incomplete frame left at the end.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![kind, 0, 0, 0];
        v.extend_from_slice(&(data.len() as u32).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn demux_across_chunk_boundaries() {
        let mut all = frame(1, b"out\n");
        all.extend(frame(2, b"err\n"));
        all.extend(frame(3, b"boom"));
        let mut d = Demux::default();
        let mut got = Vec::new();
        for c in all.chunks(3) {
            got.extend(d.push(c));
        }
        assert_eq!(got, vec![(Output::Stdout, b"out\n".to_vec()), (Output::Stderr, b"err\n".to_vec()), (Output::SystemError, b"boom".to_vec())]);
        assert_eq!(d.pending(), 0);
    }
}

/// What a JSON progress stream (pull, push, build, load, import) came to.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    /// Messages received.
    pub messages: usize,
    /// The last `status` lines (at most 100), e.g. "Pull complete".
    pub statuses: Vec<String>,
    /// Build output (`stream` messages), capped at 64 KiB.
    pub output: String,
    /// `aux` payloads: the built image id, the pushed digest.
    pub aux: Vec<Value>,
}

impl Stream {
    /// Follows a JSON progress stream to its end, reporting progress to the host under `id`.
    /// An `error` / `errorDetail` message inside the 200 response fails the action with the
    /// engine's message, as it must: the HTTP status alone says nothing.
    pub fn progress(self, id: &str, deadline: Instant) -> Result<Progress> {
        let mut p = Progress::default();
        let mut messages = self.json_messages(deadline);
        for m in messages.by_ref() {
            let m = m?;
            p.messages += 1;
            let err = m["errorDetail"]["message"].as_str().or_else(|| m["error"].as_str());
            if let Some(e) = err {
                return Err(Error::Engine { status: 0, message: e.trim().to_string() });
            }
            if let Some(s) = m["stream"].as_str() {
                if p.output.len() < 64 * 1024 {
                    p.output.push_str(s);
                }
                let line = s.trim_end();
                if !line.is_empty() {
                    crate::log::progress(id, p.messages as u64, None, line);
                }
            }
            if let Some(status) = m["status"].as_str() {
                let what = match m["id"].as_str() {
                    Some(layer) => format!("{layer}: {status}"),
                    None => status.to_string(),
                };
                let current = m["progressDetail"]["current"].as_u64().unwrap_or(0);
                let total = m["progressDetail"]["total"].as_u64();
                crate::log::progress(id, current, total, &what);
                if p.statuses.len() >= 100 {
                    p.statuses.remove(0);
                }
                p.statuses.push(what);
            }
            if !m["aux"].is_null() {
                p.aux.push(m["aux"].clone());
            }
        }
        if messages.timed_out() {
            return Err(Error::Engine { status: 0, message: format!("{id} did not finish in time") });
        }
        Ok(p)
    }
}

/// The registry an image reference lives in: `127.0.0.1:5000/x` → `127.0.0.1:5000`,
/// `busybox` or `library/busybox` → `docker.io`.
pub fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first,
        _ => "docker.io",
    }
}

#[cfg(test)]
mod registry_tests {
    #[test]
    fn registries() {
        assert_eq!(super::registry_of("busybox"), "docker.io");
        assert_eq!(super::registry_of("library/busybox:1"), "docker.io");
        assert_eq!(super::registry_of("127.0.0.1:5000/x/y:t"), "127.0.0.1:5000");
        assert_eq!(super::registry_of("localhost/x"), "localhost");
        assert_eq!(super::registry_of("ghcr.io/a/b"), "ghcr.io");
    }
}
