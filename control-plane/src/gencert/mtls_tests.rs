//! The cluster channel's mutual TLS, accepted and refused as DESIGN §5 and §9 promise, with
//! the certificates `gen-cert` makes: real TLS handshakes over real loopback sockets, through
//! the configurations [`license_shared::tls`] builds for both ends.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use license_shared::tls::{self, TlsError};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use rustls::{CertificateError, ClientConfig, ProtocolVersion, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::authority::{Ca, Role, Validity, control_plane_sans, now};
use super::temp_dir::TempDir;
use super::*;

/// What the server sends once a handshake has succeeded.
const GREETING: &[u8] = b"hello, data plane";

fn server(certs: &ClusterCerts) -> ServerConfig {
    tls::server_config(
        certs.control_plane.cert_pem.as_bytes(),
        certs.control_plane.key_pem.as_bytes(),
        certs.ca.cert_pem.as_bytes(),
    )
    .expect("server config from generated certificates")
}

fn client(ca: &PemPair, identity: &PemPair) -> ClientConfig {
    tls::client_config(
        identity.cert_pem.as_bytes(),
        identity.key_pem.as_bytes(),
        ca.cert_pem.as_bytes(),
    )
    .expect("client config from generated certificates")
}

/// How one connection attempt ended on each side.
#[derive(Debug)]
struct Outcome {
    /// The server's handshake, with the negotiated version and ALPN on success.
    server: io::Result<(Option<ProtocolVersion>, Option<Vec<u8>>)>,
    /// Everything the client read, or why it could not connect or read.
    client: io::Result<Vec<u8>>,
}

impl Outcome {
    fn server_error(&self) -> &rustls::Error {
        let error = self.server.as_ref().expect_err("the server must refuse");
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .unwrap_or_else(|| panic!("not a TLS error: {error:?}"))
    }

    /// The alert the client received instead of application data. (In TLS 1.3 the client
    /// may finish its side before the server has checked its certificate, so a refusal
    /// reaches it as an alert on its first read rather than as an error from `connect`.)
    fn client_alert(&self) -> rustls::AlertDescription {
        let error = self
            .client
            .as_ref()
            .expect_err("the client must see the refusal");
        match error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::AlertReceived(alert)) => *alert,
            _ => panic!("not an alert: {error:?}"),
        }
    }
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    (listener, addr)
}

/// Accepts one connection, handshakes, and sends [`GREETING`] if that succeeded.
async fn serve_once(
    listener: TcpListener,
    config: ServerConfig,
) -> io::Result<(Option<ProtocolVersion>, Option<Vec<u8>>)> {
    let (tcp, _) = listener.accept().await?;
    let mut stream = TlsAcceptor::from(Arc::new(config)).accept(tcp).await?;
    let (_, connection) = stream.get_ref();
    let negotiated = (
        connection.protocol_version(),
        connection.alpn_protocol().map(<[u8]>::to_vec),
    );
    stream.write_all(GREETING).await?;
    stream.shutdown().await?;
    Ok(negotiated)
}

/// One TLS connection from `client` to `server`, addressed to `server_name`.
async fn connect(server: ServerConfig, client: ClientConfig, server_name: &str) -> Outcome {
    let (listener, addr) = bind().await;
    let server = tokio::spawn(serve_once(listener, server));
    let server_name = ServerName::try_from(server_name.to_owned()).expect("server name");
    let client = async {
        let tcp = TcpStream::connect(addr).await?;
        let mut stream = TlsConnector::from(Arc::new(client))
            .connect(server_name, tcp)
            .await?;
        let mut data = Vec::new();
        stream.read_to_end(&mut data).await?;
        Ok(data)
    };
    let client = tokio::time::timeout(Duration::from_secs(10), client)
        .await
        .expect("client finished in time");
    let server = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server finished in time")
        .expect("server task");
    Outcome { server, client }
}

#[tokio::test]
async fn handshake_succeeds_with_cluster_certificates() {
    let certs = generate(&[], 1).expect("generate");

    let outcome = connect(
        server(&certs),
        client(&certs.ca, &certs.data_plane),
        "localhost",
    )
    .await;

    let (version, alpn) = outcome.server.expect("server handshake");
    assert_eq!(version, Some(ProtocolVersion::TLSv1_3));
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(outcome.client.expect("client read"), GREETING);
}

#[tokio::test]
async fn handshake_succeeds_on_ip_and_extra_host_names() {
    let hosts = vec![
        "cp.internal".to_owned(),
        " 10.1.2.3 ".to_owned(),
        String::new(),
    ];
    let certs = generate(&hosts, 1).expect("generate");

    for name in ["127.0.0.1", "::1", "cp.internal", "10.1.2.3"] {
        let outcome = connect(server(&certs), client(&certs.ca, &certs.data_plane), name).await;
        assert_eq!(
            outcome.client.expect("client read"),
            GREETING,
            "connecting as {name}"
        );
    }
}

#[tokio::test]
async fn client_refuses_a_name_the_control_plane_certificate_lacks() {
    let certs = generate(&[], 1).expect("generate");

    let outcome = connect(
        server(&certs),
        client(&certs.ca, &certs.data_plane),
        "cp.example.com",
    )
    .await;

    let error = outcome.client.expect_err("client must refuse");
    let tls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .expect("a TLS error");
    assert!(
        matches!(
            tls_error,
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })
                | rustls::Error::InvalidCertificate(CertificateError::NotValidForName)
        ),
        "{tls_error:?}"
    );
    assert!(
        outcome.server.is_err(),
        "server must see the handshake fail"
    );
}

#[tokio::test]
async fn client_certificate_from_another_ca_is_refused() {
    let certs = generate(&[], 1).expect("generate");
    let intruder = generate(&[], 1).expect("generate another CA");

    // The intruder trusts the real CA (so it gets as far as presenting its certificate)
    // but its own certificate was signed by a different CA.
    let outcome = connect(
        server(&certs),
        client(&certs.ca, &intruder.data_plane),
        "localhost",
    )
    .await;

    assert!(
        matches!(
            outcome.server_error(),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        ),
        "{:?}",
        outcome.server_error()
    );
    assert_eq!(outcome.client_alert(), rustls::AlertDescription::UnknownCA);
}

#[tokio::test]
async fn client_certificate_from_a_ca_forging_the_cluster_ca_name_is_refused() {
    let validity = Validity::days_from_now(1).expect("now");
    let real = Ca::new("license-cluster CA 00000000", validity).expect("CA");
    let forged = Ca::new("license-cluster CA 00000000", validity).expect("forged CA");
    let control_plane = real
        .issue(
            Role::ControlPlane,
            control_plane_sans(&[]).expect("SANs"),
            validity,
        )
        .expect("control-plane certificate");
    let forged_dp = forged
        .issue(Role::DataPlane, Vec::new(), validity)
        .expect("certificate of the forged CA");
    let server = tls::server_config(
        control_plane.cert_pem.as_bytes(),
        control_plane.key_pem.as_bytes(),
        real.pem().cert_pem.as_bytes(),
    )
    .expect("server config");

    let outcome = connect(server, client(&real.pem(), &forged_dp), "localhost").await;

    // Same issuer name, so webpki picks the real CA, whose signature check then fails.
    assert!(
        matches!(
            outcome.server_error(),
            rustls::Error::InvalidCertificate(CertificateError::BadSignature)
        ),
        "{:?}",
        outcome.server_error()
    );
    assert_eq!(
        outcome.client_alert(),
        rustls::AlertDescription::DecryptError
    );
}

#[tokio::test]
async fn expired_client_certificate_is_refused() {
    let certs = generate(&[], 1).expect("generate");
    let ca = Ca::new(
        "license-cluster CA",
        Validity::days_from_now(1).expect("now"),
    )
    .expect("CA");
    let now = now().expect("now");
    let expired = Validity {
        not_before: now - time::Duration::days(30),
        not_after: now - time::Duration::days(1),
    };
    let expired_dp = ca
        .issue(Role::DataPlane, Vec::new(), expired)
        .expect("expired certificate");
    let server = tls::server_config(
        certs.control_plane.cert_pem.as_bytes(),
        certs.control_plane.key_pem.as_bytes(),
        ca.pem().cert_pem.as_bytes(),
    )
    .expect("server trusting the CA of the expired certificate");

    let outcome = connect(server, client(&certs.ca, &expired_dp), "localhost").await;

    assert!(
        matches!(
            outcome.server_error(),
            rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            )
        ),
        "{:?}",
        outcome.server_error()
    );
    assert_eq!(
        outcome.client_alert(),
        rustls::AlertDescription::CertificateExpired
    );
}

#[tokio::test]
async fn client_without_a_certificate_is_refused() {
    let certs = generate(&[], 1).expect("generate");
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(certs.ca.cert_pem.as_bytes()).expect("CA PEM"))
        .expect("CA");
    let anonymous =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();

    let outcome = connect(server(&certs), anonymous, "localhost").await;

    assert!(
        matches!(
            outcome.server_error(),
            rustls::Error::NoCertificatesPresented
        ),
        "{:?}",
        outcome.server_error()
    );
    assert_eq!(
        outcome.client_alert(),
        rustls::AlertDescription::CertificateRequired
    );
}

#[tokio::test]
async fn control_plane_certificate_cannot_log_in_as_a_data_plane() {
    let certs = generate(&[], 1).expect("generate");

    let outcome = connect(
        server(&certs),
        client(&certs.ca, &certs.control_plane),
        "localhost",
    )
    .await;

    // serverAuth only: webpki refuses it for client authentication.
    assert!(
        matches!(
            outcome.server_error(),
            rustls::Error::InvalidCertificate(
                CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. }
            )
        ),
        "{:?}",
        outcome.server_error()
    );
    assert_eq!(
        outcome.client_alert(),
        rustls::AlertDescription::UnsupportedCertificate
    );
}

#[tokio::test]
async fn data_plane_certificate_cannot_serve_the_cluster_listener() {
    let certs = generate(&[], 1).expect("generate");
    // A stolen data-plane certificate used to impersonate the control plane.
    let impostor = tls::server_config(
        certs.data_plane.cert_pem.as_bytes(),
        certs.data_plane.key_pem.as_bytes(),
        certs.ca.cert_pem.as_bytes(),
    )
    .expect("server config");

    let outcome = connect(impostor, client(&certs.ca, &certs.data_plane), "localhost").await;

    let error = outcome.client.expect_err("client must refuse");
    let tls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .expect("a TLS error");
    // clientAuth only, and no SANs: refused for its purpose or its name.
    assert!(
        matches!(
            tls_error,
            rustls::Error::InvalidCertificate(
                CertificateError::InvalidPurpose
                    | CertificateError::InvalidPurposeContext { .. }
                    | CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{tls_error:?}"
    );
}

#[tokio::test]
async fn plaintext_client_gets_no_handshake() {
    let certs = generate(&[], 1).expect("generate");
    let (listener, addr) = bind().await;
    let server = tokio::spawn(serve_once(listener, server(&certs)));

    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("send plaintext");
    let mut answer = Vec::new();
    // The server answers with at most a TLS alert and closes; a reset is fine too.
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
        .await
        .expect("server closed the connection in time");
    let outcome = server.await.expect("server task");

    let error = outcome.expect_err("plaintext must not complete a handshake");
    assert!(
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(|e| matches!(e, rustls::Error::InvalidMessage(_))),
        "{error:?}"
    );
    assert!(
        !answer.windows(GREETING.len()).any(|w| w == GREETING),
        "plaintext client read {answer:?}"
    );
    assert!(
        !answer.starts_with(b"HTTP/"),
        "answered in plaintext: {answer:?}"
    );
}

#[tokio::test]
async fn written_files_build_working_configurations() {
    let dir = TempDir::new();
    let certs = generate(&["cp.internal".to_owned()], 1).expect("generate");
    let written = write(&dir.0, &certs, false).expect("write");
    assert_eq!(written.len(), 6);

    let file = |name| dir.0.join(name);
    let server = tls::server_config_from_files(&file(CP_CERT), &file(CP_KEY), &file(CA_CERT))
        .expect("server config from files");
    let client = tls::client_config_from_files(&file(DP_CERT), &file(DP_KEY), &file(CA_CERT))
        .expect("client config from files");

    let outcome = connect(server, client, "cp.internal").await;
    assert_eq!(outcome.client.expect("client read"), GREETING);
}

#[test]
fn file_errors_name_the_file() {
    let dir = TempDir::new();
    let certs = generate(&[], 1).expect("generate");
    write(&dir.0, &certs, false).expect("write");

    // A key where the certificate should be.
    let file = |name| dir.0.join(name);
    let error = tls::server_config_from_files(&file(CP_KEY), &file(CP_KEY), &file(CA_CERT))
        .expect_err("a key is not a certificate");
    assert!(matches!(error, TlsError::InFile { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("{}: no certificate found in PEM", file(CP_KEY).display())
    );

    // A certificate that does not belong to the key.
    let error = tls::server_config_from_files(&file(DP_CERT), &file(CP_KEY), &file(CA_CERT))
        .expect_err("mismatched key");
    assert!(matches!(error, TlsError::KeyPair(_)), "{error:?}");
}
