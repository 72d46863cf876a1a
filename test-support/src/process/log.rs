//! Reading a process's log back: the binaries log JSON lines (flattened: `message` and the
//! fields side by side) when their output is not a terminal, and report the addresses they
//! bound there, so a process started on port 0 tells us its ports.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

use super::Process;

/// How often [`Process::wait_for_log`] reads the log again.
const LOG_POLL: Duration = Duration::from_millis(10);

impl Process {
    /// Everything it has logged so far, over all its runs.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What it has logged since it was last started.
    pub fn log_of_this_run(&self) -> String {
        let text = self.log_text();
        let start = usize::try_from(self.log_start).unwrap_or(usize::MAX);
        text.get(start..).unwrap_or_default().to_owned()
    }

    /// The last JSON log line whose `message` is `message`, if any.
    pub fn last_log_line(&self, message: &str) -> Option<Value> {
        json_lines(&self.log_text())
            .rev()
            .find(|line| is_message(line, message))
    }

    /// The first JSON line with `message` logged since it was last started, waiting up to
    /// `timeout` for it; fails early, with the log, if the process exits.
    pub async fn wait_for_log(
        &mut self,
        message: &str,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let this_run = self.log_of_this_run();
            if let Some(line) = json_lines(&this_run).find(|line| is_message(line, message)) {
                return Ok(line);
            }
            if !self.is_running() {
                bail!(
                    "{} exited before logging {message:?}; its log:\n{this_run}",
                    self.name
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not log {message:?} within {timeout:?}; its log:\n{this_run}",
                    self.name
                );
            }
            tokio::time::sleep(LOG_POLL).await;
        }
    }
}

/// The socket address in `field` of a log line (`"127.0.0.1:41234"`).
pub fn address(line: &Value, field: &str) -> anyhow::Result<SocketAddr> {
    line[field]
        .as_str()
        .with_context(|| format!("no {field:?} in the log line {line}"))?
        .parse()
        .with_context(|| format!("{field:?} of the log line {line} is not an address"))
}

/// The lines of `text` that are JSON.
fn json_lines(text: &str) -> impl DoubleEndedIterator<Item = Value> + '_ {
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
}

/// Whether a log line says `message` (flattened, or nested under `fields`).
fn is_message(line: &Value, message: &str) -> bool {
    line["message"] == message || line["fields"]["message"] == message
}
