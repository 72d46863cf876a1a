//! One supervisor per process (in the spirit of quilkin's `ShutdownHandler`): every long-lived
//! task is registered by name, and SIGTERM/SIGINT, or any service ending on its own (an error,
//! a panic, or a plain return nobody asked for), stops all of them, in order, within one
//! deadline.
//!
//! - A **service** is a task the process cannot do without (a listener, the cluster client,
//!   the revision follower, the cache writer …). Its ending before it was asked to stop is a
//!   failure: the supervisor logs it and stops the process, whose exit code is then non-zero.
//! - A **worker** is a task that may end on its own (one data plane's session): its ending is
//!   not a failure, but it is tracked, told to stop with its stage, and waited for.
//!
//! Stop order: each task belongs to a [`Stage`]; on shutdown the stages are told to stop one
//! after the other (lowest first), each once every task of the stage before it has ended, so
//! listeners stop accepting before the cluster link goes, and the disk cache is written last.
//! What is still running at the deadline is aborted and named in the log. Each task receives
//! its stage's [`CancellationToken`] and must return soon after it fires.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// When a task is told to stop: lower stages first.
pub type Stage = u8;

/// Why a supervised process stopped with a failure.
#[derive(Debug, thiserror::Error)]
#[error("{}", .failed.join("; "))]
pub struct Failed {
    /// One line per task that failed: its name and how it ended.
    pub failed: Vec<String>,
}

/// How a task ended.
#[derive(Debug)]
enum Outcome {
    Returned,
    Failed(String),
    Panicked(String),
}

#[derive(Debug)]
struct Ended {
    id: u64,
    outcome: Outcome,
}

#[derive(Debug)]
struct Registered {
    name: String,
    stage: Stage,
    service: bool,
    handle: JoinHandle<()>,
}

#[derive(Debug)]
struct Inner {
    /// One token per stage, made on first use.
    stages: Mutex<BTreeMap<Stage, CancellationToken>>,
    tasks: Mutex<HashMap<u64, Registered>>,
    next_id: AtomicU64,
    ended: mpsc::UnboundedSender<Ended>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Ended>>>,
    /// Fires when shutdown begins (for tasks that must not start anything new).
    stopping: CancellationToken,
}

/// The handle tasks are registered with; cheap to clone.
#[derive(Debug, Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    pub fn new() -> Self {
        let (ended, receiver) = mpsc::unbounded_channel();
        Supervisor {
            inner: Arc::new(Inner {
                stages: Mutex::new(BTreeMap::new()),
                tasks: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(0),
                ended,
                receiver: Mutex::new(Some(receiver)),
                stopping: CancellationToken::new(),
            }),
        }
    }

    /// The token that fires when `stage` is told to stop.
    pub fn stage_token(&self, stage: Stage) -> CancellationToken {
        lock(&self.inner.stages)
            .entry(stage)
            .or_insert_with(|| {
                if self.inner.stopping.is_cancelled() {
                    // Shutdown is under way: a stage first named now stops at once.
                    let token = CancellationToken::new();
                    token.cancel();
                    token
                } else {
                    CancellationToken::new()
                }
            })
            .clone()
    }

    /// Fires as soon as shutdown begins, before any stage is told to stop.
    pub fn stopping(&self) -> CancellationToken {
        self.inner.stopping.clone()
    }

    /// Registers a service: `task` gets its stage's token and runs until that token fires.
    /// Ending on its own (error, panic, or return) stops the process with a failure.
    pub fn service<F, Fut>(&self, name: impl Into<String>, stage: Stage, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.register(name.into(), stage, true, task);
    }

    /// Registers a worker: like a service, but ending on its own is not a failure.
    pub fn worker<F, Fut>(&self, name: impl Into<String>, stage: Stage, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.register(name.into(), stage, false, task);
    }

    fn register<F, Fut>(&self, name: String, stage: Stage, service: bool, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let future = task(self.stage_token(stage));
        let ended = self.inner.ended.clone();
        // The task's entry is inserted before it can end: the lock is held across the spawn.
        let mut tasks = lock(&self.inner.tasks);
        let handle = tokio::spawn(async move {
            let outcome = match AssertUnwindSafe(future).catch_unwind().await {
                Ok(Ok(())) => Outcome::Returned,
                Ok(Err(error)) => Outcome::Failed(format!("{error:#}")),
                Err(panic) => Outcome::Panicked(crate::error::panic_message(panic.as_ref())),
            };
            ended.send(Ended { id, outcome }).ok();
        });
        tasks.insert(
            id,
            Registered {
                name,
                stage,
                service,
                handle,
            },
        );
    }

    /// Runs until `signal` resolves or a service ends on its own, then stops every task in
    /// stage order within `deadline`. Err names the tasks that failed.
    pub async fn run(
        &self,
        signal: impl Future<Output = ()>,
        deadline: Duration,
    ) -> Result<(), Failed> {
        let Some(mut ended) = lock(&self.inner.receiver).take() else {
            return Err(Failed {
                failed: vec!["the supervisor was run twice".into()],
            });
        };
        let mut failed = Vec::new();
        tokio::pin!(signal);
        loop {
            tokio::select! {
                () = &mut signal => break,
                Some(end) = ended.recv() => {
                    if self.record(end, false, &mut failed) {
                        break;
                    }
                }
            }
        }
        self.inner.stopping.cancel();
        let deadline = tokio::time::Instant::now() + deadline;
        let stages: Vec<Stage> = {
            let mut stages: Vec<Stage> = lock(&self.inner.tasks)
                .values()
                .map(|task| task.stage)
                .collect();
            stages.extend(lock(&self.inner.stages).keys());
            stages.sort_unstable();
            stages.dedup();
            stages
        };
        for stage in stages {
            self.stage_token(stage).cancel();
            while self.running_in(stage) > 0 {
                match tokio::time::timeout_at(deadline, ended.recv()).await {
                    Ok(Some(end)) => {
                        self.record(end, true, &mut failed);
                    }
                    Ok(None) => break,
                    Err(_) => {
                        self.abort_all();
                        return finish(failed);
                    }
                }
            }
        }
        finish(failed)
    }

    fn running_in(&self, stage: Stage) -> usize {
        lock(&self.inner.tasks)
            .values()
            .filter(|task| task.stage <= stage)
            .count()
    }

    /// Logs how a task ended; says whether that must stop the process.
    fn record(&self, end: Ended, stopping: bool, failed: &mut Vec<String>) -> bool {
        let Some(task) = lock(&self.inner.tasks).remove(&end.id) else {
            return false;
        };
        let name = task.name.as_str();
        match (&end.outcome, task.service, stopping) {
            (Outcome::Returned, _, true) | (Outcome::Returned, false, false) => {
                if task.service {
                    tracing::info!(task = name, "stopped");
                } else {
                    tracing::debug!(task = name, "ended");
                }
                false
            }
            (Outcome::Failed(error), false, _) => {
                tracing::debug!(task = name, %error, "ended with an error");
                false
            }
            (Outcome::Panicked(panic), false, _) => {
                tracing::error!(task = name, %panic, "panicked");
                false
            }
            (Outcome::Returned, true, false) => {
                tracing::error!(task = name, "ended on its own; stopping the process");
                failed.push(format!("{name} ended on its own"));
                true
            }
            (Outcome::Failed(error), true, _) => {
                tracing::error!(task = name, %error, "failed; stopping the process");
                failed.push(format!("{name} failed: {error}"));
                true
            }
            (Outcome::Panicked(panic), true, _) => {
                tracing::error!(task = name, %panic, "panicked; stopping the process");
                failed.push(format!("{name} panicked: {panic}"));
                true
            }
        }
    }

    fn abort_all(&self) {
        for (_, task) in lock(&self.inner.tasks).drain() {
            tracing::warn!(
                task = task.name.as_str(),
                "did not stop within the shutdown deadline; aborted"
            );
            task.handle.abort();
        }
    }
}

fn finish(failed: Vec<String>) -> Result<(), Failed> {
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failed { failed })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section here leaves the data consistent, even if it panicked midway.
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[tokio::test]
    async fn a_signal_stops_the_stages_in_order() {
        let supervisor = Supervisor::new();
        let first_stopped = Arc::new(AtomicBool::new(false));
        let seen_in_order = Arc::new(AtomicBool::new(false));
        let first = first_stopped.clone();
        supervisor.service("listener", 0, |stop| async move {
            stop.cancelled().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            first.store(true, Ordering::SeqCst);
            Ok(())
        });
        let (first, in_order) = (first_stopped.clone(), seen_in_order.clone());
        supervisor.service("cache", 1, |stop| async move {
            stop.cancelled().await;
            in_order.store(first.load(Ordering::SeqCst), Ordering::SeqCst);
            Ok(())
        });
        let result = supervisor
            .run(
                tokio::time::sleep(Duration::from_millis(10)),
                Duration::from_secs(5),
            )
            .await;
        assert!(result.is_ok(), "{result:?}");
        assert!(
            seen_in_order.load(Ordering::SeqCst),
            "stage 1 was told to stop before stage 0 had ended"
        );
    }

    #[tokio::test]
    async fn a_panicking_service_stops_everything_with_a_failure() {
        let supervisor = Supervisor::new();
        supervisor.service("steady", 0, |stop| async move {
            stop.cancelled().await;
            Ok(())
        });
        supervisor.service("fragile", 1, |_| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            panic!("injected");
        });
        let failed = supervisor
            .run(std::future::pending(), Duration::from_secs(5))
            .await
            .expect_err("a failure");
        assert_eq!(failed.failed, vec!["fragile panicked: injected".to_owned()]);
    }

    #[tokio::test]
    async fn a_worker_may_end_and_a_stuck_task_is_aborted_at_the_deadline() {
        let supervisor = Supervisor::new();
        supervisor.worker("session", 0, |_| async move {
            anyhow::bail!("the peer went away")
        });
        supervisor.service("stuck", 0, |_| async move {
            std::future::pending::<()>().await;
            Ok(())
        });
        let started = tokio::time::Instant::now();
        let result = supervisor
            .run(
                tokio::time::sleep(Duration::from_millis(50)),
                Duration::from_millis(100),
            )
            .await;
        assert!(result.is_ok(), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
