//! Fault injection for the process-level tests (a test-only hook): `LICENSE_FAULTS` is a
//! comma-separated list of named points, and [`point`] panics the first time a listed point is
//! reached, so a test can prove that a panic in, say, the cluster client makes the process
//! recover or exit instead of hang. Unset (always, outside tests) it costs one check of a
//! static after the first call.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// The environment variable naming the points that panic once.
pub const ENV: &str = "LICENSE_FAULTS";

/// Panics if `name` is listed in [`ENV`] and has not panicked yet in this process.
pub fn point(name: &str) {
    static ARMED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| {
        let listed = std::env::var(ENV).unwrap_or_default();
        Mutex::new(
            listed
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    });
    let fire = armed
        .lock()
        .map(|mut armed| armed.remove(name))
        .unwrap_or(false);
    if fire {
        panic!("fault injected at {name}");
    }
}
