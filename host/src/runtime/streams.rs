//! Streamed engine bodies held for a guest (logs, events, progress) and hijacked connections
//! (attach, exec start): the `body-stream` resource and `upgrade`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use wasmtime::component::Resource;

use super::bindings::berth::connector::{engine, types};
use super::host::{headers_of, HostState};
use crate::engine::Body;

use types::{Chunk, EngineError as WitError, Request, ResponseHead};

/// A streamed response body held for the guest.
pub struct StreamHandle {
    pub(super) body: Body,
    pub(super) pending: Bytes,
    pub(super) ended: bool,
    /// `METHOD /path`, for progress while the engine keeps the guest waiting.
    pub(super) what: String,
}

/// A hijacked connection read as a body: what the engine sends until it closes.
/// The connection sits in a `Mutex` only to make the body `Sync` (as the boxed body type
/// requires) without `unsafe`: it is reached through `&mut self`, so the lock is never taken.
struct UpgradedBody<R> {
    io: std::sync::Mutex<R>,
    buf: Box<[u8]>,
    done: bool,
}

impl<R: tokio::io::AsyncRead + Send + Unpin> http_body::Body for UpgradedBody<R> {
    type Data = Bytes;
    type Error = crate::engine::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        let mut rb = tokio::io::ReadBuf::new(&mut this.buf);
        let io = this.io.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        match std::pin::Pin::new(io).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                this.done = true;
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Ok(())) => Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::copy_from_slice(rb.filled()))))),
        }
    }
}

fn upgraded_body<R: tokio::io::AsyncRead + Send + Unpin + 'static>(io: R) -> Body {
    UpgradedBody { io: std::sync::Mutex::new(io), buf: vec![0u8; 64 * 1024].into_boxed_slice(), done: false }.boxed()
}

impl HostState {
    pub(super) async fn upgrade_impl(&mut self, req: Request, stdin: types::Body) -> Result<(ResponseHead, Resource<StreamHandle>), WitError> {
        use tokio::io::AsyncWriteExt;
        // Resolve stdin before anything is sent, so a missing artifact sends nothing.
        let stdin = match stdin {
            types::Body::Empty => None,
            types::Body::Bytes(b) => Some(crate::engine::full(Bytes::from(b))),
            types::Body::Artifact(name) => Some(self.artifacts.open_input(&name).await.map_err(WitError::Invalid)?.0),
            types::Body::RegistryAuth(_) => return Err(WitError::Invalid("stdin cannot be a registry auth config".into())),
        };
        let mut resp = self.send_with(&req, true).await?;
        let what = format!("{} {}", req.method.to_ascii_uppercase(), req.path);
        let status = resp.status();
        let head = ResponseHead { status: status.as_u16(), headers: headers_of(resp.headers()) };
        let body = if status == http::StatusCode::SWITCHING_PROTOCOLS {
            let upgraded = hyper::upgrade::on(&mut resp).await.map_err(|e| WitError::Transport(format!("the engine did not hand over the connection: {e}")))?;
            let mut io = hyper_util::rt::TokioIo::new(upgraded);
            if let Some(mut body) = stdin {
                while let Some(frame) = body.frame().await {
                    let frame = frame.map_err(|e| WitError::Transport(format!("reading stdin failed: {e}")))?;
                    if let Ok(data) = frame.into_data() {
                        io.write_all(&data).await.map_err(|e| WitError::Transport(format!("writing stdin failed: {e}")))?;
                    }
                }
                io.shutdown().await.map_err(|e| WitError::Transport(format!("closing stdin failed: {e}")))?;
            }
            upgraded_body(io)
        } else if stdin.is_some() && status.is_success() {
            return Err(WitError::Transport(format!("the engine answered {status} without taking over the connection, so stdin cannot be sent")));
        } else {
            // An error, or an engine that streams without upgrading: the body is the output.
            resp.into_body()
        };
        let handle = self
            .table
            .push(StreamHandle { body, pending: Bytes::new(), ended: false, what })
            .map_err(|e| WitError::Limit(format!("too many open streams: {e}")))?;
        Ok((head, handle))
    }
}

impl engine::HostBodyStream for HostState {
    async fn read(&mut self, stream: Resource<StreamHandle>, max_bytes: u32, timeout_ms: u32) -> Result<Chunk, WitError> {
        super::host::off_cpu!(self, self.read_on_host(stream, max_bytes, timeout_ms))
    }

    async fn drop(&mut self, stream: Resource<StreamHandle>) -> wasmtime::Result<()> {
        self.table.delete(stream)?;
        Ok(())
    }
}

impl HostState {
    async fn read_on_host(&mut self, stream: Resource<StreamHandle>, max_bytes: u32, timeout_ms: u32) -> Result<Chunk, WitError> {
        let max = (max_bytes.clamp(1, 1 << 20)) as usize;
        let timeout = Duration::from_millis(timeout_ms as u64).min(self.limits.wall);
        // Where progress goes (the CLI's stderr): a read the engine keeps waiting over a second
        // (a container wait, a pull between layers) is said there.
        let sink = self.ctx.progress.as_ref().filter(|_| timeout > Duration::from_secs(1)).map(|s| (s, self.action.as_str()));
        let h = self.table.get_mut(&stream).map_err(|e| WitError::Invalid(format!("bad stream handle: {e}")))?;
        let data = if !h.pending.is_empty() {
            let n = max.min(h.pending.len());
            h.pending.split_to(n)
        } else if h.ended {
            return Ok(Chunk::End);
        } else {
            loop {
                let what = || h.what.clone();
                match tokio::time::timeout(timeout, super::host::said_if_slow(sink, what, h.body.frame())).await {
                    Err(_) => return Ok(Chunk::Idle),
                    Ok(None) => {
                        h.ended = true;
                        return Ok(Chunk::End);
                    }
                    Ok(Some(Err(e))) => {
                        h.ended = true;
                        return Err(WitError::Transport(format!("the engine stream failed: {e}")));
                    }
                    Ok(Some(Ok(frame))) => {
                        if let Ok(mut d) = frame.into_data() {
                            if d.is_empty() {
                                continue;
                            }
                            if d.len() > max {
                                h.pending = d.split_off(max);
                            }
                            break d;
                        }
                    }
                }
            }
        };
        self.take_bytes(data.len() as u64)?;
        Ok(Chunk::Data(data.to_vec()))
    }
}
