//! The development cluster CA and the two leaf certificates it signs: the control plane's
//! (`serverAuth`, with its host names) and the data planes' (`clientAuth`). Keys are ECDSA
//! P-256; everything is PEM.

use std::fmt;
use std::net::IpAddr;
use std::time::SystemTime;

use anyhow::{Context, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::DnsName;
use time::OffsetDateTime;

/// Names the control plane's certificate always holds, so a local cluster works out of the box.
const DEFAULT_CP_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Certificates start a few minutes in the past, so that a node whose clock is slightly behind
/// the one that ran `gen-cert` does not reject them as not yet valid.
const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

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

/// The SANs of the control plane's certificate: the defaults, then `extra` without repeats.
pub(super) fn control_plane_sans(extra: &[String]) -> anyhow::Result<Vec<SanType>> {
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
pub(super) struct Validity {
    pub(super) not_before: OffsetDateTime,
    pub(super) not_after: OffsetDateTime,
}

impl Validity {
    /// From a few minutes ago (see [`CLOCK_SKEW`]) until `days` days from now.
    pub(super) fn days_from_now(days: u32) -> anyhow::Result<Self> {
        let now = now()?;
        Ok(Self {
            not_before: now - CLOCK_SKEW,
            not_after: now + time::Duration::days(i64::from(days)),
        })
    }
}

pub(super) fn now() -> anyhow::Result<OffsetDateTime> {
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    let seconds =
        i64::try_from(since_epoch.as_secs()).context("the system clock is too far ahead")?;
    OffsetDateTime::from_unix_timestamp(seconds).context("the system clock is too far ahead")
}

/// What a leaf certificate is for; decides its name and extended key usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    ControlPlane,
    DataPlane,
}

/// A CA that can sign leaf certificates.
pub(super) struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    pub(super) fn new(common_name: &str, validity: Validity) -> anyhow::Result<Self> {
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

    pub(super) fn pem(&self) -> PemPair {
        PemPair {
            cert_pem: self.cert.pem(),
            key_pem: self.key.serialize_pem(),
        }
    }

    /// A new key and a certificate for it, signed by this CA.
    pub(super) fn issue(
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
    use super::*;

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
}
