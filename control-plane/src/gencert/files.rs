//! Writing what `gen-cert` made: all six files or none, keys private (0600), replacements
//! atomic (a temporary file and a rename).

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::authority::ClusterCerts;
use super::{CA_CERT, CA_KEY, CP_CERT, CP_KEY, DP_CERT, DP_KEY};

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

#[cfg(test)]
mod tests {
    use super::super::generate;
    use super::super::temp_dir::TempDir;
    use super::*;

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
}
