//! Which servers this process trusts over TLS (`https://` and `wss://`: the solver behind a
//! reverse proxy, the chain's RPC): the web's public roots, plus the certificates in
//! `TLS_CA_FILE` when set (a private CA, as a test network or a company network has).
//!
//! The extra certificates are process-wide: [`trust_file`] runs once at start, before any
//! client is built; every HTTP and WebSocket client takes its trust from here.

use std::path::Path;
use std::sync::{Arc, OnceLock};

/// DER certificates trusted besides the public roots.
static EXTRA: OnceLock<Vec<Vec<u8>>> = OnceLock::new();

/// The PEM certificates in `path` (`TLS_CA_FILE`). Refuses a file that cannot be read or
/// holds no certificate, so a wrong path is not silently ignored.
pub fn read_file(path: &Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let text = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("TLS_CA_FILE {}: cannot read it: {e}", path.display()))?;
    parse_pem(&text, &format!("TLS_CA_FILE {}", path.display()))
}

/// The certificates (DER) in PEM `text`; `origin` names where it came from in errors.
pub fn parse_pem(text: &[u8], origin: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut reader = text;
    let certificates = rustls_pemfile::certs(&mut reader)
        .map_err(|e| anyhow::anyhow!("{origin}: not PEM certificates: {e}"))?;
    if certificates.is_empty() {
        anyhow::bail!("{origin}: holds no certificate (expected -----BEGIN CERTIFICATE-----)");
    }
    let mut roots = rustls::RootCertStore::empty();
    for der in &certificates {
        roots
            .add(&rustls::Certificate(der.clone()))
            .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    }
    Ok(certificates)
}

/// Trusts `certificates` (DER) from now on, besides the public roots; once per process.
pub fn trust(certificates: Vec<Vec<u8>>) -> anyhow::Result<()> {
    EXTRA
        .set(certificates)
        .map_err(|_| anyhow::anyhow!("extra TLS certificates were already loaded"))
}

/// Trusts the PEM certificates in `path` (see [`read_file`]).
pub fn trust_file(path: &Path) -> anyhow::Result<()> {
    trust(read_file(path)?)
}

/// What `settings` say to trust: TLS_CA_FILE's certificates and the network profile's CA.
pub fn trust_settings(settings: &crate::config::Settings) -> anyhow::Result<()> {
    let mut certificates = Vec::new();
    if let Some(path) = &settings.tls_ca_file {
        certificates.extend(read_file(path)?);
    }
    if let Some(profile) = &settings.network_profile {
        if let Some(pem) = &profile.tls_ca {
            let origin = format!("network {:?}: tls_ca", profile.name);
            certificates.extend(parse_pem(pem.as_bytes(), &origin)?);
        }
    }
    if certificates.is_empty() {
        return Ok(());
    }
    trust(certificates)
}

fn extra() -> &'static [Vec<u8>] {
    EXTRA.get().map(Vec::as_slice).unwrap_or(&[])
}

/// An HTTP client builder that trusts what this process trusts.
pub fn http_client() -> reqwest::ClientBuilder {
    extra()
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der).ok())
        .fold(reqwest::Client::builder(), |builder, certificate| {
            builder.add_root_certificate(certificate)
        })
}

/// The TLS set-up of WebSocket connections (`wss://`), built once the extra certificates
/// are loaded; None: the library's own (public roots).
pub fn ws_connector() -> Option<tokio_tungstenite::Connector> {
    static CONNECTOR: OnceLock<tokio_tungstenite::Connector> = OnceLock::new();
    if extra().is_empty() {
        return None;
    }
    Some(CONNECTOR.get_or_init(build_ws_connector).clone())
}

fn build_ws_connector() -> tokio_tungstenite::Connector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_trust_anchors(webpki_roots::TLS_SERVER_ROOTS.iter().map(|anchor| {
        rustls::OwnedTrustAnchor::from_subject_spki_name_constraints(
            anchor.subject,
            anchor.spki,
            anchor.name_constraints,
        )
    }));
    for der in extra() {
        // Each was added once already in trust_file, so none fails here.
        let _ = roots.add(&rustls::Certificate(der.clone()));
    }
    let config = rustls::ClientConfig::builder()
        .with_safe_defaults()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_tungstenite::Connector::Rustls(Arc::new(config))
}

/// Opens a WebSocket to `url` (`ws://` or `wss://`) with this process's trust.
pub async fn connect_ws(
    url: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    let (stream, _) =
        tokio_tungstenite::connect_async_tls_with_config(url, None, false, ws_connector()).await?;
    Ok(stream)
}
