//! The open-file limit: a control plane holding a thousand data-plane sessions needs a
//! thousand sockets, and so does the load tool holding the other ends. Raised in this process,
//! the limit is inherited by every child it starts afterwards.

use anyhow::Context;
use rustix::process::{Resource, getrlimit, setrlimit};

/// Raises this process's soft open-file limit (`RLIMIT_NOFILE`) to at least `wanted`, up to the
/// hard limit (or to `wanted` above it, which needs privileges); returns the soft limit now in
/// force.
pub fn raise_open_files(wanted: u64) -> anyhow::Result<u64> {
    let mut limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= wanted {
        return Ok(current);
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    if hard < wanted {
        limit.maximum = Some(wanted);
    }
    limit.current = Some(wanted);
    setrlimit(Resource::Nofile, limit).with_context(|| {
        format!(
            "raising the open-file limit from {current} to {wanted} (hard limit {hard}): \
             run `ulimit -n {wanted}` first"
        )
    })?;
    Ok(wanted)
}
