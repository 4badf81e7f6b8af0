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

/// The open tar behind a handle (the table's entry, found by field so the artifacts can be
/// borrowed beside it).
fn open_file<'a>(table: &'a mut wasmtime::component::ResourceTable, w: &Resource<TarWriter>) -> Result<&'a mut TarFile, WitError> {
    let tar = table.get_mut(w).map_err(|e| WitError::Invalid(format!("bad tar-writer handle: {e}")))?;
    tar.file.as_mut().ok_or_else(|| WitError::Invalid("this tar is finished".into()))
}

impl HostState {
    pub(super) fn open_tar_impl(&mut self, artifact: String) -> Result<Resource<TarWriter>, WitError> {
        let file = self.artifacts.open_tar(&artifact).map_err(WitError::Invalid)?;
        self.table.push(TarWriter { artifact, file: Some(file) }).map_err(|e| WitError::Limit(format!("too many open tar-writers: {e}")))
    }

    fn tar_error(&mut self, e: String) -> WitError {
        if e.starts_with(super::artifacts::ARTIFACT_LIMIT) {
            WitError::Limit(self.violate_limit(e))
        } else {
            WitError::Transport(e)
        }
    }

    async fn add_response_on_host(&mut self, w: &Resource<TarWriter>, name: String, req: Request) -> Result<engine::MemberInfo, WitError> {
        // The name is checked before anything is sent.
        open_file(&mut self.table, w)?.check_name(&name).map_err(WitError::Invalid)?;
        let (parts, body) = self.send(&req).await?.into_parts();
        let status = parts.status.as_u16();
        if !parts.status.is_success() {
            let error_body = Vec::from(self.read_whole(body).await?);
            return Ok(engine::MemberInfo { name, status, size: 0, sha256: String::new(), error_body });
        }
        let idle = self.ctx.body_timeout();
        let added = open_file(&mut self.table, w)?.add_body(&self.artifacts, &name, body, idle).await;
        let (size, sha256) = added.map_err(|e| self.tar_error(e))?;
        if let Some(c) = self.record.calls.last_mut() {
            c.bytes += size;
        }
        Ok(engine::MemberInfo { name, status, size, sha256, error_body: Vec::new() })
    }
}

impl engine::HostTarWriter for HostState {
    async fn add_bytes(&mut self, w: Resource<TarWriter>, name: String, data: Vec<u8>) -> Result<engine::MemberInfo, WitError> {
        let (size, sha256) = open_file(&mut self.table, &w)?.add_bytes(&self.artifacts, &name, &data).map_err(WitError::Invalid)?;
        Ok(engine::MemberInfo { name, status: 200, size, sha256, error_body: Vec::new() })
    }

    // Guest CPU slots are given up while the host waits for the engine (server mode).
    async fn add_response(&mut self, w: Resource<TarWriter>, name: String, req: Request) -> Result<engine::MemberInfo, WitError> {
        super::host::off_cpu!(self, self.add_response_on_host(&w, name, req))
    }

    async fn finish(&mut self, w: Resource<TarWriter>) -> Result<ArtifactInfo, WitError> {
        let tar = self.table.get_mut(&w).map_err(|e| WitError::Invalid(format!("bad tar-writer handle: {e}")))?;
        let artifact = tar.artifact.clone();
        let file = tar.file.take().ok_or_else(|| WitError::Invalid("this tar is already finished".into()))?;
        let written = file.finish(&self.artifacts).map_err(|e| self.tar_error(e))?;
        let info = ArtifactInfo { name: artifact, size: written.size, sha256: written.sha256.clone() };
        self.record.written.push(written);
        Ok(info)
    }

    async fn drop(&mut self, w: Resource<TarWriter>) -> wasmtime::Result<()> {
        // An unfinished tar's temp file goes with it.
        self.table.delete(w)?;
        Ok(())
    }
}
