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

    fn take_message(&mut self) -> Option<Result<Value>> {
        loop {
            let start = self.buf.iter().position(|b| !b.is_ascii_whitespace())?;
            let mut de = serde_json::Deserializer::from_slice(&self.buf[start..]).into_iter::<Value>();
            match de.next() {
                Some(Ok(v)) => {
                    let used = start + de.byte_offset();
                    self.buf.drain(..used);
                    return Some(Ok(v));
                }
                Some(Err(e)) if e.is_eof() => return None,
                Some(Err(e)) => {
                    self.buf.clear();
                    return Some(Err(Error::internal(format!("engine sent a malformed stream message ({e})"))));
                }
                None => {
                    self.buf.clear();
                    return None;
                }
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
