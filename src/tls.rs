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

/// Adds the PEM certificates in `path` to what this process trusts. Refuses a file that
/// cannot be read or holds no certificate, so a wrong path is not silently ignored.
pub fn trust_file(path: &Path) -> anyhow::Result<()> {
    let text = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("TLS_CA_FILE {}: cannot read it: {e}", path.display()))?;
    let certificates = rustls_pemfile::certs(&mut text.as_slice()).map_err(|e| {
        anyhow::anyhow!("TLS_CA_FILE {}: not PEM certificates: {e}", path.display())
    })?;
    if certificates.is_empty() {
        anyhow::bail!(
            "TLS_CA_FILE {}: holds no certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    let mut roots = rustls::RootCertStore::empty();
    for der in &certificates {
        roots
            .add(&rustls::Certificate(der.clone()))
            .map_err(|e| anyhow::anyhow!("TLS_CA_FILE {}: {e}", path.display()))?;
    }
    if EXTRA.set(certificates).is_err() {
        anyhow::bail!("TLS_CA_FILE was already loaded");
    }
    Ok(())
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

/// The TLS set-up of WebSocket connections (`wss://`); None: the library's own (public roots).
pub fn ws_connector() -> Option<tokio_tungstenite::Connector> {
    if extra().is_empty() {
        return None;
    }
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
    Some(tokio_tungstenite::Connector::Rustls(Arc::new(config)))
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
