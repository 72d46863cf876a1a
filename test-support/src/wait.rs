//! Polling until a condition holds, for tests that wait for something to propagate.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::bail;

/// How often [`wait_for`] checks.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Polls `check` every 20 ms until it holds or `timeout` passes.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
