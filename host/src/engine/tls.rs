//! TLS and mutual TLS to the engine, with rustls, the way the docker CLI means its flags:
//! `--tlsverify` checks the engine's certificate against the given CA — the only trust root —
//! and its name; `--tls` alone encrypts without checking (as the docker CLI does); a client
//! certificate is sent whenever one is given.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// PEM from a file or given inline (tenant configs may hold either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    File(PathBuf),
    Inline(String),
}

impl Pem {
    /// A config value: inline when it holds a PEM block, else a path.
    pub fn from_config(v: &str) -> Pem {
        if v.contains("-----BEGIN") {
            Pem::Inline(v.to_string())
        } else {
            Pem::File(PathBuf::from(v))
        }
    }

    fn bytes(&self, what: &str) -> anyhow::Result<Vec<u8>> {
        match self {
            Pem::Inline(s) => Ok(s.as_bytes().to_vec()),
            Pem::File(p) => std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read the {what} {}: {e}", p.display())),
        }
    }

    fn describe(&self) -> String {
        match self {
            Pem::Inline(_) => "(inline PEM)".into(),
            Pem::File(p) => p.display().to_string(),
        }
    }
}

/// The TLS side of an engine endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// Check the engine's certificate (chain to `ca`, and name).
    pub verify: bool,
    pub ca: Option<Pem>,
    pub cert: Option<Pem>,
    pub key: Option<Pem>,
    /// The name to verify instead of the address's host (engines reached by IP).
    pub server_name: Option<String>,
}

impl TlsSettings {
    /// `ca.pem`, `cert.pem` and `key.pem` of a directory, each only if present
    /// (`DOCKER_CERT_PATH`, a context's TLS directory).
    pub fn from_dir(dir: &Path, verify: bool) -> TlsSettings {
        let f = |n: &str| Some(dir.join(n)).filter(|p| p.exists()).map(Pem::File);
        TlsSettings { verify, ca: f("ca.pem"), cert: f("cert.pem"), key: f("key.pem"), server_name: None }
    }

    /// The rustls client config these settings describe.
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().map_err(|e| anyhow::anyhow!("TLS: {e}"))?;
        let builder = if self.verify {
            let ca = self.ca.as_ref().ok_or_else(|| anyhow::anyhow!("TLS verification needs a CA certificate (--tlscacert, or ca.pem in DOCKER_CERT_PATH)"))?;
            let mut roots = RootCertStore::empty();
            let certs = certs(ca, "CA certificate")?;
            for c in certs {
                roots.add(c).map_err(|e| anyhow::anyhow!("the CA certificate {} is not usable: {e}", ca.describe()))?;
            }
            builder.with_root_certificates(roots)
        } else {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        };
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = certs(cert, "client certificate")?;
                let k = private_key(key, "client key")?;
                builder.with_client_auth_cert(chain, k).map_err(|e| anyhow::anyhow!("the client certificate and key do not go together: {e}"))
            }
            (None, None) => Ok(builder.with_no_client_auth()),
            (Some(_), None) => anyhow::bail!("a client certificate needs its key (--tlskey)"),
            (None, Some(_)) => anyhow::bail!("a client key needs its certificate (--tlscert)"),
        }
    }

    /// The name the engine's certificate must carry.
    pub fn name_for(&self, host: &str) -> anyhow::Result<ServerName<'static>> {
        let name = self.server_name.as_deref().unwrap_or(host);
        ServerName::try_from(name.to_string()).map_err(|e| anyhow::anyhow!("'{name}' is not a valid TLS server name: {e}"))
    }
}

/// The private key in `pem`.
pub(crate) fn private_key(pem: &Pem, what: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(&pem.bytes(what)?).map_err(|e| anyhow::anyhow!("the {what} {} holds no usable private key: {e}", pem.describe()))
}

/// The certificates in `pem` (at least one).
pub(crate) fn certs(pem: &Pem, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let bytes = pem.bytes(what)?;
    let list: Vec<_> =
        CertificateDer::pem_slice_iter(&bytes).collect::<Result<_, _>>().map_err(|e| anyhow::anyhow!("the {what} {} is not PEM: {e}", pem.describe()))?;
    if list.is_empty() {
        anyhow::bail!("the {what} {} holds no certificate", pem.describe());
    }
    Ok(list)
}

/// `--tls` without `--tlsverify`: encrypted, not authenticated (the docker CLI's meaning).
/// Signatures are still checked, so the handshake itself is sound.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub use super::stream::TlsInfo;

impl TlsInfo {
    pub fn of(conn: &rustls::ClientConnection) -> TlsInfo {
        let version = conn.protocol_version().map(|v| format!("{v:?}").replace("TLSv1_", "TLS 1.").replace("TLSv1", "TLS 1.0")).unwrap_or_default();
        let cipher = conn.negotiated_cipher_suite().map(|c| format!("{:?}", c.suite())).unwrap_or_default();
        let (mut peer_subject, mut peer_not_after) = (String::new(), String::new());
        if let Some(cert) = conn.peer_certificates().and_then(|c| c.first()) {
            if let Ok((_, x)) = x509_parser::parse_x509_certificate(cert.as_ref()) {
                peer_subject = x.subject().to_string();
                peer_not_after = x.validity().not_after.to_datetime().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
            }
        }
        TlsInfo { version, cipher, peer_subject, peer_not_after }
    }
}

/// What went wrong in a handshake, in the words of the docker CLI user who has to fix it.
pub fn explain(e: &std::io::Error, addr: &str, name: &str) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(r) => explain_rustls(r, addr, name),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("TLS: the engine at {addr} closed the connection during the handshake (it may have refused our client certificate)")
        }
        None => format!("TLS handshake with the engine at {addr} failed: {e}"),
    }
}

/// [`explain`] for a rustls error (also seen after the handshake: with TLS 1.3 the engine
/// refuses a client certificate on the first read).
pub fn explain_rustls(e: &rustls::Error, addr: &str, name: &str) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(C::UnknownIssuer) | E::InvalidCertificate(C::BadSignature) => {
            format!("TLS: the engine's certificate at {addr} is not signed by the given CA (unknown issuer)")
        }
        E::InvalidCertificate(C::NotValidForName) | E::InvalidCertificate(C::NotValidForNameContext { .. }) => {
            format!("TLS: the engine's certificate at {addr} is not valid for the name '{name}' (hostname mismatch; set --tls-server-name / tls.server_name to the name it carries)")
        }
        E::InvalidCertificate(C::Expired) | E::InvalidCertificate(C::ExpiredContext { .. }) => format!("TLS: the engine's certificate at {addr} has expired"),
        E::InvalidCertificate(C::NotValidYet) | E::InvalidCertificate(C::NotValidYetContext { .. }) => {
            format!("TLS: the engine's certificate at {addr} is not valid yet (check the clocks)")
        }
        E::AlertReceived(
            A::BadCertificate | A::CertificateRequired | A::UnknownCA | A::CertificateUnknown | A::DecryptError | A::AccessDenied | A::HandshakeFailure,
        ) => {
            format!("TLS: the engine at {addr} refused our client certificate (missing, or not signed by a CA it trusts)")
        }
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => {
            format!("TLS: the engine at {addr} did not answer with TLS (plain HTTP on this port? use tcp:// without --tls)")
        }
        other => format!("TLS with the engine at {addr} failed: {other}"),
    }
}

/// Connects TCP, then TLS, for hyper's pooled client; each connection's [`TlsInfo`] rides
/// on the responses it carries.
#[derive(Clone)]
pub struct TlsConnector {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) addr: String,
    pub(super) name: ServerName<'static>,
    /// The name as given, for messages.
    pub(super) name_text: String,
    pub(super) tls: tokio_rustls::TlsConnector,
}

impl TlsConnector {
    pub fn new(host: &str, port: u16, addr: &str, settings: &TlsSettings) -> anyhow::Result<Self> {
        let config = settings.client_config()?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        Ok(TlsConnector {
            host: host.to_string(),
            port,
            addr: addr.to_string(),
            name: settings.name_for(bare)?,
            name_text: settings.server_name.clone().unwrap_or_else(|| bare.to_string()),
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }
}

impl tower_service::Service<hyper::Uri> for TlsConnector {
    type Response = hyper_util::rt::TokioIo<super::stream::Conn<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>>;
    type Error = std::io::Error;
    type Future = super::stream::BoxFuture<'static, Result<Self::Response, std::io::Error>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), std::io::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let me = self.clone();
        Box::pin(async move {
            let tcp = tokio::net::TcpStream::connect((me.host.trim_start_matches('[').trim_end_matches(']'), me.port)).await?;
            tcp.set_nodelay(true)?;
            let stream = me.tls.connect(me.name.clone(), tcp).await.map_err(|e| std::io::Error::other(explain(&e, &me.addr, &me.name_text)))?;
            let info = TlsInfo::of(stream.get_ref().1);
            Ok(hyper_util::rt::TokioIo::new(super::stream::Conn::new(stream, Some(info))))
        })
    }
}
