//! TLS settings of the cluster channel between the control plane and the data planes
//! (DESIGN §5): TLS 1.3 only, and both sides authenticated by certificates that the cluster CA
//! signed — the control plane requires a client certificate from every data plane, and a data
//! plane trusts no CA but the cluster's (Kong's `pki` mode).
//!
//! Configurations are built from PEM bytes by [`server_config`] and [`client_config`], or
//! straight from files by [`server_config_from_files`] and [`client_config_from_files`], whose
//! errors name the file at fault. Building is cheap and has no side effects, so rotating
//! certificates is a matter of building a new configuration from the new files and handing it
//! to the acceptor (or connector) for the connections that follow; established connections keep
//! the configuration they started with.
//!
//! The `ring` provider is named explicitly instead of relying on a process-wide default, so the
//! result does not depend on which other crates enable which rustls features.
//!
//! This module exists only with the `cluster` feature, and unlike the rest of this crate it may
//! read files ([`load_pem`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The one application protocol spoken on the cluster channel: the websocket upgrade.
pub const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The contents of a file were rejected. The message includes the inner error (rather than
    /// leaving it to the source chain) so that a plain `{}` already says what is wrong.
    #[error("{}: {error}", path.display())]
    InFile { path: PathBuf, error: Box<TlsError> },

    /// PEM text that does not parse (a missing END line, bad base64, …).
    #[error("malformed PEM: {0}")]
    Pem(#[source] pem::Error),

    /// The certificate PEM holds no `CERTIFICATE` section.
    #[error("no certificate found in PEM")]
    NoCertificate,

    /// The key PEM holds no PKCS#8, PKCS#1 or SEC1 private key.
    #[error("no private key found in PEM")]
    NoPrivateKey,

    /// The CA PEM holds no usable trust anchor.
    #[error("invalid CA certificate: {0}")]
    InvalidCa(String),

    /// The private key is unusable, or does not belong to the certificate.
    #[error("certificate and private key cannot be used together: {0}")]
    KeyPair(#[source] rustls::Error),

    /// rustls refused the configuration itself (not expected with the built-in provider).
    #[error("TLS configuration rejected: {0}")]
    Config(#[source] rustls::Error),
}

impl TlsError {
    /// Attributes this error to the file whose contents caused it.
    fn in_file(self, path: &Path) -> Self {
        Self::InFile {
            path: path.to_owned(),
            error: Box::new(self),
        }
    }
}

/// Reads a PEM file, naming the path if it cannot.
pub fn load_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The control plane's side: TLS 1.3 only, presents `cert_pem` (leaf first, then any
/// intermediates) with `key_pem`, and accepts only clients whose certificate chains to
/// `client_ca_pem` and is valid now. A client without a certificate is refused. ALPN
/// `http/1.1`.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: &[u8],
) -> Result<ServerConfig, TlsError> {
    let cert_chain = certificates(cert_pem)?;
    let key = private_key(key_pem)?;
    let verifier = client_verifier(client_ca_pem)?;
    server_config_from_parts(cert_chain, key, verifier)
}

/// [`server_config`] from files; an error names the file at fault.
pub fn server_config_from_files(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
) -> Result<ServerConfig, TlsError> {
    let cert_chain = certificates(&load_pem(cert)?).map_err(|e| e.in_file(cert))?;
    let key_der = private_key(&load_pem(key)?).map_err(|e| e.in_file(key))?;
    let verifier = client_verifier(&load_pem(client_ca)?).map_err(|e| e.in_file(client_ca))?;
    server_config_from_parts(cert_chain, key_der, verifier)
}

/// A data plane's side: TLS 1.3 only, trusts only the cluster CA in `ca_pem` (never the
/// system roots), and presents `cert_pem` with `key_pem` as its client certificate. ALPN
/// `http/1.1`.
pub fn client_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    ca_pem: &[u8],
) -> Result<ClientConfig, TlsError> {
    let cert_chain = certificates(cert_pem)?;
    let key = private_key(key_pem)?;
    let roots = ca_roots(ca_pem)?;
    client_config_from_parts(cert_chain, key, roots)
}

/// [`client_config`] from files; an error names the file at fault.
pub fn client_config_from_files(
    cert: &Path,
    key: &Path,
    ca: &Path,
) -> Result<ClientConfig, TlsError> {
    let cert_chain = certificates(&load_pem(cert)?).map_err(|e| e.in_file(cert))?;
    let key_der = private_key(&load_pem(key)?).map_err(|e| e.in_file(key))?;
    let roots = ca_roots(&load_pem(ca)?).map_err(|e| e.in_file(ca))?;
    client_config_from_parts(cert_chain, key_der, roots)
}

fn server_config_from_parts(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    verifier: Arc<dyn ClientCertVerifier>,
) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Config)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(cert_chain, key)
        .map_err(TlsError::KeyPair)?;
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(config)
}

fn client_config_from_parts(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: RootCertStore,
) -> Result<ClientConfig, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Config)?
        .with_root_certificates(roots)
        .with_client_auth_cert(cert_chain, key)
        .map_err(TlsError::KeyPair)?;
    config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    Ok(config)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Requires a client certificate that chains to the CA in `ca_pem` (the builder's default:
/// anonymous clients are refused).
fn client_verifier(ca_pem: &[u8]) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    WebPkiClientVerifier::builder_with_provider(Arc::new(ca_roots(ca_pem)?), provider())
        .build()
        .map_err(|error| TlsError::InvalidCa(error.to_string()))
}

/// Every certificate in `pem`, in order (leaf first for a chain).
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsError::Pem)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(certs)
}

/// The first private key in `pem`, in any of the encodings rustls accepts.
fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey,
        other => TlsError::Pem(other),
    })
}

/// A trust store holding every certificate in `ca_pem`, and nothing else.
fn ca_roots(ca_pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let certs = certificates(ca_pem).map_err(|error| TlsError::InvalidCa(error.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|error| TlsError::InvalidCa(error.to_string()))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    //! Parsing failures only; handshakes with real certificates are tested in the control
    //! plane's `gencert` module, which can make them.

    use super::*;

    #[test]
    fn empty_certificate_pem_is_reported() {
        let error = certificates(b"").expect_err("no certificate");
        assert_eq!(error.to_string(), "no certificate found in PEM");
    }

    #[test]
    fn a_key_is_not_a_certificate() {
        let key = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(certificates(key), Err(TlsError::NoCertificate)));
    }

    #[test]
    fn missing_private_key_is_reported() {
        let cert = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let error = private_key(cert).expect_err("no key");
        assert_eq!(error.to_string(), "no private key found in PEM");
    }

    #[test]
    fn truncated_pem_is_malformed() {
        let error = certificates(b"-----BEGIN CERTIFICATE-----\nAAAA\n").expect_err("truncated");
        assert!(matches!(error, TlsError::Pem(_)), "{error:?}");
    }

    #[test]
    fn garbage_ca_is_an_invalid_ca() {
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let error = ca_roots(garbage).expect_err("not a certificate");
        assert!(
            error.to_string().starts_with("invalid CA certificate: "),
            "{error}"
        );
        let error = ca_roots(b"").expect_err("empty");
        assert_eq!(
            error.to_string(),
            "invalid CA certificate: no certificate found in PEM"
        );
    }

    #[test]
    fn unreadable_file_names_its_path() {
        let path = Path::new("/nonexistent/cluster-ca.crt");
        let error = load_pem(path).expect_err("missing file");
        assert!(
            error.to_string().contains("/nonexistent/cluster-ca.crt"),
            "{error}"
        );
    }
}
