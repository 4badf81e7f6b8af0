//! `ssh://[user@]host[:port]`, the way the docker CLI does it: the system `ssh` runs
//! `docker system dial-stdio` on the remote host and its stdin/stdout carry HTTP.
//!
//! `BatchMode=yes`, so it never prompts. Connections are kept alive like any other (one
//! ssh process serves many requests in turn), and ssh's own multiplexing (`ControlMaster`)
//! makes every further connection a channel of one session rather than a new login.
//! `BERTH_SSH_COMMAND` replaces the `ssh` program and its options (e.g. `ssh -F cfg`), as
//! `GIT_SSH_COMMAND` does for git.

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::stream::BoxFuture;
use super::stream::Conn;

/// An `ssh://` address, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl SshTarget {
    pub fn parse(addr: &str) -> anyhow::Result<SshTarget> {
        let rest = addr.strip_prefix("ssh://").ok_or_else(|| anyhow::anyhow!("'{addr}' is not an ssh:// address"))?;
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('?') {
            anyhow::bail!("engine address '{addr}': an ssh:// address takes no path (the remote docker's own default socket is used)");
        }
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
            Some(_) => anyhow::bail!("engine address '{addr}': empty user"),
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !hostport.ends_with(']') => (h, Some(p.parse::<u16>().map_err(|_| anyhow::anyhow!("engine address '{addr}': bad port '{p}'"))?)),
            _ => (hostport, None),
        };
        if host.is_empty() || host.starts_with('-') {
            anyhow::bail!("engine address '{addr}' needs a host (ssh://user@host[:port])");
        }
        Ok(SshTarget { user, host: host.to_string(), port })
    }
}

#[derive(Clone)]
pub struct SshConnector {
    target: SshTarget,
    program: Vec<String>,
    addr: String,
    control_dir: Arc<tempfile::TempDir>,
    connect_timeout: Duration,
}

impl SshConnector {
    pub fn new(target: SshTarget, addr: &str, connect_timeout: Duration) -> anyhow::Result<Self> {
        let program = match std::env::var("BERTH_SSH_COMMAND") {
            Ok(c) if !c.trim().is_empty() => c.split_whitespace().map(str::to_string).collect(),
            _ => vec!["ssh".to_string()],
        };
        // ssh's ControlPath must be short (a unix socket path): a private dir under /tmp.
        let control_dir = tempfile::Builder::new().prefix("berth-ssh-").tempdir_in("/tmp")?;
        Ok(SshConnector { target, program, addr: addr.to_string(), control_dir: Arc::new(control_dir), connect_timeout })
    }

    fn command(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.program[0]);
        c.args(&self.program[1..])
            .args(["-o", "BatchMode=yes"])
            .args(["-o", &format!("ConnectTimeout={}", self.connect_timeout.as_secs().max(1))])
            .args(["-o", "ControlMaster=auto"])
            .args(["-o", &format!("ControlPath={}/%C", self.control_dir.path().display())])
            // The master outlives its last channel briefly: a pooled connection keeps it up in
            // `berth serve`; a one-shot CLI run leaves no long-lived ssh behind.
            .args(["-o", "ControlPersist=5"]);
        if let Some(p) = self.target.port {
            c.args(["-p", &p.to_string()]);
        }
        if let Some(u) = &self.target.user {
            c.args(["-l", u]);
        }
        c.arg("--").arg(&self.target.host).args(["docker", "system", "dial-stdio"]);
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        c
    }
}

impl tower_service::Service<hyper::Uri> for SshConnector {
    type Response = hyper_util::rt::TokioIo<Conn<SshIo>>;
    type Error = std::io::Error;
    type Future = BoxFuture<'static, Result<Self::Response, std::io::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let mut cmd = self.command();
        let addr = self.addr.clone();
        let program = self.program[0].clone();
        Box::pin(async move {
            let mut child = cmd.spawn().map_err(|e| std::io::Error::other(format!("cannot run {program} for {addr}: {e}")))?;
            let stdin = child.stdin.take().expect("piped");
            let stdout = child.stdout.take().expect("piped");
            let mut stderr = child.stderr.take().expect("piped");
            let errors = Arc::new(Mutex::new(String::new()));
            let sink = errors.clone();
            let stderr_read = tokio::spawn(async move {
                let mut buf = Vec::new();
                let _ = stderr.read_to_end(&mut buf).await;
                sink.lock().unwrap().push_str(String::from_utf8_lossy(&buf).trim());
            });
            let io = SshIo { child, stdin, stdout, errors, stderr_read: Some(stderr_read), addr, got: false };
            Ok(hyper_util::rt::TokioIo::new(Conn::new(io, None)))
        })
    }
}

/// The ssh process's stdout and stdin as one stream.
pub struct SshIo {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    errors: Arc<Mutex<String>>,
    /// The task reading ssh's stderr into `errors`, until it has.
    stderr_read: Option<tokio::task::JoinHandle<()>>,
    addr: String,
    got: bool,
}

impl AsyncRead for SshIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.stdout).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            if buf.filled().len() > before {
                self.got = true;
            } else if !self.got {
                // ssh ended before the engine said anything: say why, from ssh's stderr, once
                // it has all been read.
                if let Some(reading) = &mut self.stderr_read {
                    if Pin::new(reading).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.stderr_read = None;
                }
                let status = self.child.try_wait().ok().flatten().map(|s| format!(" ({s})")).unwrap_or_default();
                let why = self.errors.lock().unwrap().clone();
                let why = if why.is_empty() { "no output from ssh".to_string() } else { why };
                return Poll::Ready(Err(std::io::Error::other(format!("ssh to {} ended before the engine answered{status}: {why}", self.addr))));
            }
        }
        r
    }
}

impl AsyncWrite for SshIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(SshTarget::parse("ssh://alice@h:2222").unwrap(), SshTarget { user: Some("alice".into()), host: "h".into(), port: Some(2222) });
        assert_eq!(SshTarget::parse("ssh://h").unwrap(), SshTarget { user: None, host: "h".into(), port: None });
        assert!(SshTarget::parse("ssh://h/var/run/docker.sock").is_err());
        assert!(SshTarget::parse("ssh://-oProxyCommand=x").is_err(), "an option is never taken as the host");
        assert!(SshTarget::parse("ssh://h:port").is_err());
    }
}
