//! `control-plane gen-cert`: makes a development cluster CA and the two certificates the
//! cluster channel needs (DESIGN §5), like `kong hybrid gen_cert`:
//!
//! | file | what | used by |
//! | --- | --- | --- |
//! | `cluster-ca.crt` / `.key` | the cluster CA (may sign leaf certificates only) | every node trusts the `.crt`; keep the `.key` away from them |
//! | `cluster-cp.crt` / `.key` | control plane, `serverAuth`, SANs `localhost`, `127.0.0.1`, `::1` and each `--cp-host` | the control plane's cluster listener |
//! | `cluster-dp.crt` / `.key` | data plane, `clientAuth` | every data plane |
//!
//! The extended key usages keep the roles apart: a data plane's certificate cannot serve the
//! cluster listener, and the control plane's cannot log in as a data plane. Keys are ECDSA
//! P-256, written with mode 0600; existing files are never replaced without `--force`.
//!
//! [`generate`] and [`write`] are public so that tests can make a cluster's certificates the
//! same way operators do.

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};
use clap::Args;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::DnsName;
use time::OffsetDateTime;

/// File name of the cluster CA's certificate.
pub const CA_CERT: &str = "cluster-ca.crt";
/// File name of the cluster CA's private key.
pub const CA_KEY: &str = "cluster-ca.key";
/// File name of the control plane's certificate.
pub const CP_CERT: &str = "cluster-cp.crt";
/// File name of the control plane's private key.
pub const CP_KEY: &str = "cluster-cp.key";
/// File name of the data planes' certificate.
pub const DP_CERT: &str = "cluster-dp.crt";
/// File name of the data planes' private key.
pub const DP_KEY: &str = "cluster-dp.key";

/// Names the control plane's certificate always holds, so a local cluster works out of the box.
const DEFAULT_CP_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Certificates start a few minutes in the past, so that a node whose clock is slightly behind
/// the one that ran `gen-cert` does not reject them as not yet valid.
const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// Flags of `control-plane gen-cert`.
#[derive(Debug, Clone, Args)]
pub struct GenCertArgs {
    /// Directory to write the CA, certificates and keys to (created if missing).
    #[arg(long, env = "CLUSTER_CERT_DIR", default_value = "./cluster-certs")]
    pub out_dir: PathBuf,

    /// Another DNS name or IP address data planes use to reach the control plane; repeatable,
    /// or comma-separated in the environment variable. `localhost`, `127.0.0.1` and `::1` are
    /// always included.
    #[arg(
        long = "cp-host",
        value_name = "NAME",
        env = "CLUSTER_CP_HOSTS",
        value_delimiter = ','
    )]
    pub cp_hosts: Vec<String>,

    /// How many days the CA and certificates are valid.
    #[arg(long, env = "CLUSTER_CERT_DAYS", default_value_t = 365,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub days: u32,

    /// Replace existing files. A new CA invalidates every certificate the old one signed.
    /// (Deliberately without an environment variable: a forgotten one would replace a CA.)
    #[arg(long)]
    pub force: bool,
}

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct PemPair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl fmt::Debug for PemPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PemPair")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// What `gen-cert` makes: the cluster CA and the two certificates it signed.
#[derive(Debug, Clone)]
pub struct ClusterCerts {
    pub ca: PemPair,
    pub control_plane: PemPair,
    pub data_plane: PemPair,
}

/// Runs `gen-cert`: generates, writes, and prints what it wrote and how to use it.
pub fn run(args: &GenCertArgs) -> anyhow::Result<()> {
    let certs = generate(&args.cp_hosts, args.days)?;
    let written = write(&args.out_dir, &certs, args.force)?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    let file = |name: &str| args.out_dir.join(name).display().to_string();
    println!(
        "\ncontrol plane: --cluster-cert {} --cluster-cert-key {} --cluster-ca-cert {}",
        file(CP_CERT),
        file(CP_KEY),
        file(CA_CERT)
    );
    println!(
        "data planes:   --cluster-cert {} --cluster-cert-key {} --cluster-ca-cert {}",
        file(DP_CERT),
        file(DP_KEY),
        file(CA_CERT)
    );
    println!("no node needs {}; keep it somewhere safe.", file(CA_KEY));
    Ok(())
}

/// Generates a new cluster CA and a control-plane and a data-plane certificate signed by it,
/// all valid from now for `days` days. The control plane's certificate names `localhost`,
/// `127.0.0.1`, `::1` and each of `cp_hosts` (DNS names, `*.` wildcards or IP addresses;
/// surrounding blanks and empty entries are ignored).
pub fn generate(cp_hosts: &[String], days: u32) -> anyhow::Result<ClusterCerts> {
    let validity = Validity::days_from_now(days)?;
    let sans = control_plane_sans(cp_hosts)?;
    // A random suffix tells apart the CAs of separate runs (during a rotation, for one).
    let ca = Ca::new(
        &format!("license-cluster CA {:08x}", rand::random::<u32>()),
        validity,
    )?;
    Ok(ClusterCerts {
        control_plane: ca.issue(Role::ControlPlane, sans, validity)?,
        data_plane: ca.issue(Role::DataPlane, Vec::new(), validity)?,
        ca: ca.pem(),
    })
}

/// Writes `certs` into `dir` (creating it) under the names of this module's constants and
/// returns the paths written. Refuses, before writing anything, if one of the files exists and
/// `force` is false; with `force` each file is replaced atomically. Keys get mode 0600,
/// certificates 0644.
pub fn write(dir: &Path, certs: &ClusterCerts, force: bool) -> anyhow::Result<Vec<PathBuf>> {
    let files = [
        (CA_CERT, &certs.ca.cert_pem, 0o644),
        (CA_KEY, &certs.ca.key_pem, 0o600),
        (CP_CERT, &certs.control_plane.cert_pem, 0o644),
        (CP_KEY, &certs.control_plane.key_pem, 0o600),
        (DP_CERT, &certs.data_plane.cert_pem, 0o644),
        (DP_KEY, &certs.data_plane.key_pem, 0o600),
    ];
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if !force {
        let existing: Vec<String> = files
            .iter()
            .map(|(name, _, _)| dir.join(name))
            .filter(|path| path.exists())
            .map(|path| path.display().to_string())
            .collect();
        if !existing.is_empty() {
            bail!(
                "{} already exist{}; pass --force to replace them (a new CA invalidates every \
                 certificate the old one signed)",
                existing.join(", "),
                if existing.len() == 1 { "s" } else { "" }
            );
        }
    }
    let mut written = Vec::with_capacity(files.len());
    for (name, contents, mode) in files {
        let path = dir.join(name);
        write_file(&path, contents.as_bytes(), mode, force)
            .with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Writes a new file with `mode`; with `replace`, through a temporary file and a rename, so an
/// existing file is swapped whole and never keeps its old (possibly wider) permissions.
pub(crate) fn write_file(
    path: &Path,
    contents: &[u8],
    mode: u32,
    replace: bool,
) -> std::io::Result<()> {
    if !replace {
        return create_new(path, contents, mode);
    }
    let file_name = path
        .file_name()
        .map_or_else(Default::default, |name| name.to_string_lossy().into_owned());
    let temporary = path.with_file_name(format!(".{file_name}.tmp"));
    match std::fs::remove_file(&temporary) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    create_new(&temporary, contents, mode)?;
    std::fs::rename(&temporary, path)
}

fn create_new(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// The SANs of the control plane's certificate: the defaults, then `extra` without repeats.
fn control_plane_sans(extra: &[String]) -> anyhow::Result<Vec<SanType>> {
    let mut names: Vec<&str> = DEFAULT_CP_HOSTS.to_vec();
    for name in extra.iter().map(|name| name.trim()) {
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    names.into_iter().map(san).collect()
}

/// One SAN: an IP address, or a DNS name (optionally a `*.` wildcard) that a data plane could
/// actually ask for.
fn san(name: &str) -> anyhow::Result<SanType> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let host = name.strip_prefix("*.").unwrap_or(name);
    if DnsName::try_from(host).is_err() {
        bail!(
            "--cp-host {name:?} is neither a DNS name nor an IP address \
             (give the bare host: no scheme, port or brackets)"
        );
    }
    let dns = name
        .to_owned()
        .try_into()
        .with_context(|| format!("--cp-host {name:?} is not an ASCII DNS name"))?;
    Ok(SanType::DnsName(dns))
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy)]
struct Validity {
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl Validity {
    /// From a few minutes ago (see [`CLOCK_SKEW`]) until `days` days from now.
    fn days_from_now(days: u32) -> anyhow::Result<Self> {
        let now = now()?;
        Ok(Self {
            not_before: now - CLOCK_SKEW,
            not_after: now + time::Duration::days(i64::from(days)),
        })
    }
}

fn now() -> anyhow::Result<OffsetDateTime> {
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    let seconds =
        i64::try_from(since_epoch.as_secs()).context("the system clock is too far ahead")?;
    OffsetDateTime::from_unix_timestamp(seconds).context("the system clock is too far ahead")
}

/// What a leaf certificate is for; decides its name and extended key usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    ControlPlane,
    DataPlane,
}

/// A CA that can sign leaf certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(common_name: &str, validity: Validity) -> anyhow::Result<Self> {
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(common_name);
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        // Path length 0: the CA signs leaf certificates, never another CA.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().context("generating the CA key")?;
        let cert = params
            .self_signed(&key)
            .context("signing the CA certificate")?;
        Ok(Self { cert, key })
    }

    fn pem(&self) -> PemPair {
        PemPair {
            cert_pem: self.cert.pem(),
            key_pem: self.key.serialize_pem(),
        }
    }

    /// A new key and a certificate for it, signed by this CA.
    fn issue(
        &self,
        role: Role,
        subject_alt_names: Vec<SanType>,
        validity: Validity,
    ) -> anyhow::Result<PemPair> {
        let (common_name, usage) = match role {
            Role::ControlPlane => (
                "license-cluster control plane",
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
            Role::DataPlane => (
                "license-cluster data plane",
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
        };
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(common_name);
        params.subject_alt_names = subject_alt_names;
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key =
            KeyPair::generate().with_context(|| format!("generating the {common_name} key"))?;
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .with_context(|| format!("signing the {common_name} certificate"))?;
        Ok(PemPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "license-server");
    name.push(DnType::CommonName, common_name);
    name
}

#[cfg(test)]
mod tests {
    //! Real certificates, real TLS handshakes over real loopback sockets.

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

    use super::*;

    /// What the server sends once a handshake has succeeded.
    const GREETING: &[u8] = b"hello, data plane";

    /// A directory removed when the test ends.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let path = std::env::temp_dir().join(format!("gencert-test-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path).expect("create a temporary directory");
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

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
                    CertificateError::InvalidPurpose
                        | CertificateError::InvalidPurposeContext { .. }
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
    fn refuses_to_overwrite_without_force() {
        let dir = TempDir::new();
        let first = generate(&[], 1).expect("generate");
        write(&dir.0, &first, false).expect("first write");

        let second = generate(&[], 1).expect("generate");
        let error = write(&dir.0, &second, false).expect_err("must refuse");
        assert!(error.to_string().contains("--force"), "{error}");
        assert!(error.to_string().contains(CA_KEY), "{error}");
        let on_disk = std::fs::read_to_string(dir.0.join(CA_CERT)).expect("read CA");
        assert_eq!(on_disk, first.ca.cert_pem, "the old CA must be untouched");

        write(&dir.0, &second, true).expect("forced write");
        let on_disk = std::fs::read_to_string(dir.0.join(CA_CERT)).expect("read CA");
        assert_eq!(on_disk, second.ca.cert_pem);
        let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
            .expect("list")
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn refuses_if_any_single_file_exists() {
        let dir = TempDir::new();
        std::fs::write(dir.0.join(DP_KEY), "precious").expect("write");

        let certs = generate(&[], 1).expect("generate");
        let error = write(&dir.0, &certs, false).expect_err("must refuse");
        assert!(error.to_string().contains(DP_KEY), "{error}");
        assert!(
            !dir.0.join(CA_CERT).exists(),
            "nothing may be written when refusing"
        );
    }

    #[cfg(unix)]
    #[test]
    fn keys_are_private_even_when_replacing() {
        use std::os::unix::fs::PermissionsExt;

        let dir = TempDir::new();
        std::fs::write(dir.0.join(CA_KEY), "old").expect("write");
        std::fs::set_permissions(dir.0.join(CA_KEY), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");

        let certs = generate(&[], 1).expect("generate");
        write(&dir.0, &certs, true).expect("forced write");

        for name in [CA_KEY, CP_KEY, DP_KEY] {
            let mode = std::fs::metadata(dir.0.join(name))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{name} has mode {mode:o}");
        }
    }

    #[test]
    fn rejects_host_names_a_data_plane_could_not_use() {
        for bad in [
            "https://cp.internal",
            "cp.internal:8005",
            "[::1]",
            "bad name",
            "ü.example",
        ] {
            let error = generate(&[bad.to_owned()], 1).expect_err(bad);
            assert!(error.to_string().contains("--cp-host"), "{bad}: {error}");
        }
        generate(&["*.cluster.internal".to_owned(), "fd00::1".to_owned()], 1)
            .expect("wildcards and IPv6 are fine");
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

    #[test]
    fn cli_parses_repeated_and_comma_separated_hosts() {
        use clap::Parser;

        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            args: GenCertArgs,
        }
        let cli = Cli::try_parse_from([
            "gen-cert",
            "--cp-host",
            "a.internal,b.internal",
            "--cp-host",
            "10.0.0.1",
        ])
        .expect("parses");
        assert_eq!(cli.args.cp_hosts, ["a.internal", "b.internal", "10.0.0.1"]);
        assert_eq!(cli.args.days, 365);
        assert!(!cli.args.force);
        assert!(Cli::try_parse_from(["gen-cert", "--days", "0"]).is_err());
    }
}
