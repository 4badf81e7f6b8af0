//! The `tar-writer` resource (contract 0.2): one output artifact written as a tar, member by
//! member, from guest bytes or from engine responses streamed straight to disk (a forensic
//! bundle holds a container's whole filesystem: it never passes through memory). Each member
//! is hashed as it is written; the finished tar is renamed into place, or nothing is left.

use wasmtime::component::Resource;

use super::artifacts::TarFile;
use super::bindings::berth::connector::{engine, types};
use super::host::HostState;

use types::{ArtifactInfo, EngineError as WitError, Request};

/// A tar being written for the guest.
pub struct TarWriter {
    pub(super) artifact: String,
    pub(super) file: Option<TarFile>,
}

impl HostState {
    fn tar(&mut self, w: &Resource<TarWriter>) -> Result<&mut TarWriter, WitError> {
        self.table.get_mut(w).map_err(|e| WitError::Invalid(format!("bad tar-writer handle: {e}")))
    }

    pub(super) fn open_tar_impl(&mut self, artifact: String) -> Result<Resource<TarWriter>, WitError> {
        let file = self.artifacts.open_tar(&artifact).map_err(WitError::Invalid)?;
        self.table
            .push(TarWriter { artifact, file: Some(file) })
            .map_err(|e| WitError::Limit(format!("too many open tar-writers: {e}")))
    }

    fn tar_error(&mut self, e: String) -> WitError {
        if e.starts_with(super::artifacts::ARTIFACT_LIMIT) {
            WitError::Limit(self.violate_limit(e))
        } else {
            WitError::Transport(e)
        }
    }
}

impl engine::HostTarWriter for HostState {
    async fn add_bytes(&mut self, w: Resource<TarWriter>, name: String, data: Vec<u8>) -> Result<engine::MemberInfo, WitError> {
        let arts = self.artifacts.clone();
        let tar = self.tar(&w)?;
        let file = tar.file.as_mut().ok_or_else(|| WitError::Invalid("this tar is finished".into()))?;
        let (size, sha256) = file.add_bytes(&arts, &name, &data).map_err(WitError::Invalid)?;
        Ok(engine::MemberInfo { name, status: 200, size, sha256, error_body: Vec::new() })
    }

    async fn add_response(&mut self, w: Resource<TarWriter>, name: String, req: Request) -> Result<engine::MemberInfo, WitError> {
        // The name is checked before anything is sent.
        {
            let tar = self.tar(&w)?;
            let file = tar.file.as_ref().ok_or_else(|| WitError::Invalid("this tar is finished".into()))?;
            file.check_name(&name).map_err(WitError::Invalid)?;
        }
        self.cpu_off();
        let sent = self.send(&req).await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                self.cpu_on().await;
                return Err(e);
            }
        };
        let (parts, body) = resp.into_parts();
        let status = parts.status.as_u16();
        if !parts.status.is_success() {
            let error_body = self.read_whole(body).await;
            self.cpu_on().await;
            return Ok(engine::MemberInfo { name, status, size: 0, sha256: String::new(), error_body: error_body?.to_vec() });
        }
        let idle = self.ctx.body_timeout();
        let arts = self.artifacts.clone();
        let mut file = self.tar(&w)?.file.take().expect("checked above");
        let added = file.add_body(&arts, &name, body, idle).await;
        self.tar(&w)?.file = Some(file);
        self.cpu_on().await;
        let (size, sha256) = added.map_err(|e| self.tar_error(e))?;
        if let Some(c) = self.calls.last_mut() {
            c.bytes += size;
        }
        Ok(engine::MemberInfo { name, status, size, sha256, error_body: Vec::new() })
    }

    async fn finish(&mut self, w: Resource<TarWriter>) -> Result<ArtifactInfo, WitError> {
        let arts = self.artifacts.clone();
        let tar = self.tar(&w)?;
        let artifact = tar.artifact.clone();
        let file = tar.file.take().ok_or_else(|| WitError::Invalid("this tar is already finished".into()))?;
        let written = file.finish(&arts).map_err(|e| self.tar_error(e))?;
        let info = ArtifactInfo { name: artifact, size: written.size, sha256: written.sha256.clone() };
        self.written.push(written);
        Ok(info)
    }

    async fn drop(&mut self, w: Resource<TarWriter>) -> wasmtime::Result<()> {
        // An unfinished tar's temp file goes with it.
        self.table.delete(w)?;
        Ok(())
    }
}
