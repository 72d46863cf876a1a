//! The control plane's signing key: read from `--signing-key`, or written fresh by
//! `control-plane gen-signing-key`. Which key is active cluster-wide is settled in the
//! database ([`crate::db::signing_keys`]).

use std::path::Path;

use anyhow::Context;
use license_shared::signing::{
    self,
    ed25519_dalek::{SigningKey, VerifyingKey},
};

use crate::cli::GenSigningKeyArgs;
use crate::gencert::write_file;

/// Reads a PKCS#8 PEM Ed25519 key file.
pub(crate) fn load_key_file(path: &Path) -> anyhow::Result<SigningKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("reading the signing key {}", path.display()))?;
    signing::key_from_pem(&pem).with_context(|| format!("the signing key {}", path.display()))
}

/// Reads trusted issuers' public keys (SPKI PEM files).
pub(crate) fn load_trusted_keys(paths: &[std::path::PathBuf]) -> anyhow::Result<Vec<VerifyingKey>> {
    paths
        .iter()
        .map(|path| {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("reading the trusted issuer key {}", path.display()))?;
            signing::public_key_from_pem(&pem)
                .with_context(|| format!("the trusted issuer key {}", path.display()))
        })
        .collect()
}

/// `control-plane gen-signing-key`: writes a new key with mode 0600 and prints its key id.
pub fn generate_key_file(args: &GenSigningKeyArgs) -> anyhow::Result<()> {
    let key = signing::generate_key();
    let pem = signing::key_to_pem(&key)?;
    if args.out.exists() && !args.force {
        anyhow::bail!("{} exists; pass --force to replace it", args.out.display());
    }
    write_file(&args.out, pem.as_bytes(), 0o600, args.force)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let public = args.out.with_extension("pub.pem");
    let public_pem = signing::public_key_to_pem(&key.verifying_key())?;
    write_file(&public, public_pem.as_bytes(), 0o644, args.force)
        .with_context(|| format!("writing {}", public.display()))?;
    println!("{}", signing::key_id(&key.verifying_key()));
    eprintln!(
        "wrote the signing key {} and its public key {}",
        args.out.display(),
        public.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_file_loads_back_and_is_not_overwritten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("key.pem");
        let args = GenSigningKeyArgs {
            out: out.clone(),
            force: false,
        };
        generate_key_file(&args).expect("writes");
        let key = load_key_file(&out).expect("loads");
        assert!(generate_key_file(&args).is_err(), "refuses to overwrite");
        generate_key_file(&GenSigningKeyArgs {
            force: true,
            ..args
        })
        .expect("replaces");
        assert_ne!(
            load_key_file(&out).expect("loads").to_bytes(),
            key.to_bytes()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&out)
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
