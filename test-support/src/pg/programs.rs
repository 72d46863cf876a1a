//! Finding PostgreSQL's server programs and the user that may run them: PostgreSQL refuses to
//! run as root, so as root `initdb` and `postgres` run as the `postgres` user, through
//! `runuser`, else `su`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The directory holding both `initdb` and `postgres`: the first on `PATH` (following a link
/// such as `/usr/local/bin/initdb` into the real directory), else the highest version under
/// `/usr/lib/postgresql/*/bin`.
pub(crate) fn find_binaries() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in on_path {
        let initdb = dir.join("initdb");
        if !initdb.is_file() {
            continue;
        }
        let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        if let Some(real_dir) = real.parent().filter(|dir| holds_both(dir)) {
            return Ok(real_dir.to_owned());
        }
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(str::parse)
                .collect::<Result<Vec<u32>, _>>()
                .ok()?;
            let bin = entry.path().join("bin");
            holds_both(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "no initdb and postgres on PATH nor under /usr/lib/postgresql/*/bin: install \
             PostgreSQL's server programs, or set DATABASE_URL to a server to use"
        ),
    }
}

fn holds_both(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("postgres").is_file()
}

/// `postgres --version`, or empty if it does not say.
pub(crate) fn version(bin: &Path) -> String {
    Command::new(bin.join("postgres"))
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Who runs `initdb` and `postgres`, and how to become them.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ServerUser {
    /// This process's user, which is not root.
    Myself,
    /// The `postgres` user, reached from root with `runuser`.
    Runuser,
    /// The `postgres` user, reached from root with `su`.
    Su,
}

impl ServerUser {
    pub(crate) fn detect() -> anyhow::Result<Self> {
        if id(&["-u"])? != "0" {
            return Ok(ServerUser::Myself);
        }
        id(&["-u", "postgres"]).context(
            "PostgreSQL refuses to run as root, and there is no `postgres` user to run it as",
        )?;
        if on_path("runuser") {
            Ok(ServerUser::Runuser)
        } else if on_path("su") {
            Ok(ServerUser::Su)
        } else {
            bail!("running as root, and neither runuser nor su is there to become `postgres`")
        }
    }

    /// `sh -c script`, as this user.
    pub(crate) fn command(self, script: &str) -> Command {
        let mut command;
        match self {
            ServerUser::Myself => {
                command = Command::new("sh");
                command.arg("-c").arg(script);
            }
            ServerUser::Runuser => {
                command = Command::new("runuser");
                command.args(["-u", "postgres", "--", "sh", "-c", script]);
            }
            ServerUser::Su => {
                command = Command::new("su");
                command.args(["postgres", "-s", "/bin/sh", "-c", script]);
            }
        }
        command
    }

    /// Makes `dir` (and what it holds) this user's, so `initdb` can create the cluster in it
    /// and the wrapper can remove it.
    pub(crate) fn take_ownership(self, dir: &Path) -> anyhow::Result<()> {
        if matches!(self, ServerUser::Myself) {
            return Ok(());
        }
        let status = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(dir)
            .status()
            .context("running chown")?;
        if !status.success() {
            bail!("chown postgres {} failed ({status})", dir.display());
        }
        Ok(())
    }
}

/// The output of `id` with `args`, trimmed.
fn id(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("id")
        .args(args)
        .output()
        .context("running id")?;
    if !output.status.success() {
        bail!(
            "id {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// `path` as one single-quoted shell word.
pub(crate) fn quote(path: &Path) -> anyhow::Result<String> {
    let path = path
        .to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))?;
    Ok(format!("'{}'", path.replace('\'', r"'\''")))
}
