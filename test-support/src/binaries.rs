//! Where the workspace's binaries are: built by cargo on first use for the tests, or taken
//! from the release build next to the benchmark runner.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, bail};

/// The directory holding the `control-plane` and `data-plane` binaries of this build's profile
/// (`target/debug`, or `target/release` for `cargo test --release`), built once per process.
pub fn built() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build().map_err(|error| format!("{error:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec!["build", "-p", "control-plane", "-p", "data-plane", "--bins"];
    // A release test run (`cargo test --release`, for measurements) runs release binaries.
    if !cfg!(debug_assertions) {
        args.push("--release");
    }
    let output = Command::new(cargo)
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .context("running cargo build for the cluster binaries")?;
    if !output.status.success() {
        bail!(
            "building the cluster binaries failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // The test binary lives in target/<profile>/deps.
    let exe = std::env::current_exe().context("locating the test binary")?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("the test binary is not under target/<profile>/deps")?;
    Ok(dir.to_path_buf())
}

/// The directory of this program (the benchmark runner in `target/release`), provided it also
/// holds every one of `binaries`.
pub fn next_to_this_program(binaries: &[&str]) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("this program has no directory")?;
    for binary in binaries {
        if !dir.join(binary).exists() {
            bail!(
                "{} is missing; build first: cargo build --release -p control-plane -p data-plane -p bench",
                dir.join(binary).display()
            );
        }
    }
    Ok(dir.to_owned())
}
