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
//!
//! [`args`] holds the flags, [`authority`] the CA and the certificates it issues, [`files`]
//! how they are written; [`mtls_tests`] checks, with real handshakes, that what this makes
//! gives the cluster channel the mutual authentication DESIGN §5 promises.

mod args;
mod authority;
mod files;
#[cfg(test)]
mod mtls_tests;
#[cfg(test)]
mod temp_dir;

pub use args::GenCertArgs;
pub use authority::{ClusterCerts, PemPair, generate};
pub use files::write;
pub(crate) use files::write_file;

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
