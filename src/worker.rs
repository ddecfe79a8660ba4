//! The runtime every long-running role runs in (the resource provider, the mediator, the
//! on-chain job creator, and whatever role comes next). A role says only what it looks at
//! ([`Worker::find_work`]) and what one step on one item does ([`Worker::step`]); the runtime
//! owns the rest, the same for every role:
//!
//! - a tick: look for work every poll interval, sooner when the solver announces an event;
//! - claims: one task per item at a time (a deal, a job request), freed when the task ends,
//!   fails, panics or is aborted;
//! - a tracing span per task carrying `role` and the item's id (`deal_id` or `job_id`), so
//!   every line a step logs says what it was about;
//! - backoff: when looking for work fails (the solver or the node is down), wait twice as
//!   long each time, up to 30 s, and say so once per attempt;
//! - failures are per item: a step that fails is logged and retried on a later tick; it never
//!   stops the role or the other items;
//! - one shutdown rule: stop taking work, give running steps [`STOP_GRACE`] to finish, then
//!   abort them (every step is idempotent from on-chain state, so an aborted step is redone
//!   on the next start).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::inflight::InFlight;

/// How long running steps may take to finish once a role is told to stop.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// The longest wait between looks for work while looking keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What an item is, for claims and log spans.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WorkId {
    /// A deal, by its id.
    Deal(String),
    /// An on-chain job request, by its job id.
    Job(String),
}

impl WorkId {
    fn key(&self) -> String {
        match self {
            WorkId::Deal(id) => format!("deal:{id}"),
            WorkId::Job(id) => format!("job:{id}"),
        }
    }

    fn span(&self, role: &'static str) -> tracing::Span {
        match self {
            WorkId::Deal(id) => tracing::info_span!("step", role, deal_id = %id),
            WorkId::Job(id) => tracing::info_span!("step", role, job_id = %id),
        }
    }
}

/// A role, as the runtime sees it.
pub trait Worker: Send + Sync + 'static {
    /// One unit of work (a deal, a job request).
    type Item: Send + 'static;

    /// The role's name in logs ("rp", "mediator", "jc").
    const ROLE: &'static str;

    /// Upkeep before each look for work (post offers, read chain logs into the ledger). A
    /// failure is logged and retried next tick; it does not stop the look for work.
    fn prepare(&self) -> impl Future<Output = anyhow::Result<()>> + Send {
        async { Ok(()) }
    }

    /// Looks at the world (chain, solver, own ledger) and lists the items that need a step.
    /// Called on every tick; an item already being stepped is skipped by the runtime.
    fn find_work(&self) -> impl Future<Output = anyhow::Result<Vec<Self::Item>>> + Send;

    /// Which item this is.
    fn id(item: &Self::Item) -> WorkId;

    /// Moves one item forward as far as it can go now. An error is logged and the item is
    /// looked at again on a later tick.
    fn step(&self, item: Self::Item) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// When to look for work.
pub struct Ticks {
    /// Look at least this often.
    pub poll: Duration,
    /// Also look when this yields (the solver's event stream), if given.
    pub wake: Option<mpsc::Receiver<crate::bus::Event>>,
    /// Also look when the chain makes a block (a WebSocket subscription), if given.
    pub heads: Option<mpsc::Receiver<u64>>,
}

/// Runs `worker` until `shutdown`, then stops as the module doc says.
pub async fn run<W: Worker>(worker: Arc<W>, mut ticks: Ticks, shutdown: CancellationToken) {
    let claims = InFlight::default();
    let mut tasks = JoinSet::new();
    let mut wait = ticks.poll;
    loop {
        if let Err(error) = worker.prepare().await {
            tracing::warn!(role = W::ROLE, error = format!("{error:#}"), "will retry");
        }
        match worker.find_work().await {
            Ok(items) => {
                wait = ticks.poll;
                crate::metrics::global()
                    .work_items
                    .set(i64::try_from(items.len()).unwrap_or(i64::MAX));
                for item in items {
                    let id = W::id(&item);
                    let Some(claim) = claims.claim(&id.key()) else {
                        continue;
                    };
                    let worker = worker.clone();
                    let step = async move {
                        let _claim = claim;
                        let _running = crate::metrics::Running::start();
                        let outcome = match worker.step(item).await {
                            Ok(()) => "ok",
                            Err(error) => {
                                tracing::warn!(
                                    error = format!("{error:#}"),
                                    "step failed; will retry"
                                );
                                "failed"
                            }
                        };
                        crate::metrics::global()
                            .steps
                            .get_or_create(&crate::metrics::Outcome { outcome })
                            .inc();
                    };
                    tasks.spawn(step.instrument(id.span(W::ROLE)));
                }
            }
            Err(error) => {
                wait = (wait * 2).min(MAX_BACKOFF);
                tracing::warn!(
                    role = W::ROLE,
                    error = format!("{error:#}"),
                    "cannot look for work; retrying in {} ms",
                    wait.as_millis()
                );
            }
        }
        while let Some(Some(done)) = tasks.join_next().now_or_never() {
            report_abnormal::<W>(done);
        }
        if !ticks.wait(wait, &shutdown).await {
            break;
        }
    }
    stop::<W>(tasks).await;
}

impl Ticks {
    /// Waits for the next reason to look (a wake-up or `wait` passing); false at shutdown.
    /// A channel that closes is dropped, not taken for a wake-up.
    pub async fn wait(&mut self, wait: Duration, shutdown: &CancellationToken) -> bool {
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                alive = next(&mut self.wake) => if alive { return true } else { self.wake = None },
                alive = next(&mut self.heads) => if alive { return true } else { self.heads = None },
                _ = &mut sleep => return true,
            }
        }
    }
}

/// Waits for the next message of an optional channel: false once it closed; never, without one.
async fn next<T>(channel: &mut Option<mpsc::Receiver<T>>) -> bool {
    match channel.as_mut() {
        Some(channel) => channel.recv().await.is_some(),
        None => std::future::pending().await,
    }
}

/// Gives running steps [`STOP_GRACE`] to finish, then aborts the rest.
async fn stop<W: Worker>(mut tasks: JoinSet<()>) {
    if tasks.is_empty() {
        tracing::info!(role = W::ROLE, "stopped");
        return;
    }
    tracing::info!(
        role = W::ROLE,
        running = tasks.len(),
        "stopping: waiting up to {} s for running steps",
        STOP_GRACE.as_secs()
    );
    let finished = tokio::time::timeout(STOP_GRACE, async {
        while let Some(done) = tasks.join_next().await {
            report_abnormal::<W>(done);
        }
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            role = W::ROLE,
            aborted = tasks.len(),
            "steps still running after the grace period were aborted; they resume on the next start"
        );
        tasks.shutdown().await;
    }
    tracing::info!(role = W::ROLE, "stopped");
}

fn report_abnormal<W: Worker>(done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done {
        if error.is_panic() {
            tracing::error!(role = W::ROLE, %error, "a step panicked; its item will be retried");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;

    /// A role over numbers: each step records its item; item 3 fails once, item 4 never ends.
    #[derive(Default)]
    struct Counting {
        looked: AtomicUsize,
        stepped: Mutex<Vec<u32>>,
        failed_once: Mutex<bool>,
    }

    impl Worker for Counting {
        type Item = u32;
        const ROLE: &'static str = "test";

        async fn find_work(&self) -> anyhow::Result<Vec<u32>> {
            if self.looked.fetch_add(1, Ordering::SeqCst) == 0 {
                anyhow::bail!("the solver is down");
            }
            Ok(vec![1, 2, 3, 4])
        }

        fn id(item: &u32) -> WorkId {
            WorkId::Deal(item.to_string())
        }

        async fn step(&self, item: u32) -> anyhow::Result<()> {
            if item == 4 {
                std::future::pending::<()>().await;
            }
            if item == 3 {
                let mut failed = self.failed_once.lock().unwrap();
                if !*failed {
                    *failed = true;
                    anyhow::bail!("a transient failure");
                }
            }
            self.stepped.lock().unwrap().push(item);
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn steps_each_item_once_at_a_time_retries_failures_and_stops_within_the_grace() {
        let worker = Arc::new(Counting::default());
        let shutdown = CancellationToken::new();
        let ticks = Ticks {
            poll: Duration::from_millis(100),
            wake: None,
            heads: None,
        };
        let running = tokio::spawn(run(worker.clone(), ticks, shutdown.clone()));
        tokio::time::sleep(Duration::from_secs(2)).await;
        shutdown.cancel();
        let started = tokio::time::Instant::now();
        running.await.unwrap();
        // Item 4 never finishes: the runtime waited the grace period, then aborted it.
        assert!(started.elapsed() >= STOP_GRACE);
        assert!(worker.looked.load(Ordering::SeqCst) > 2);
        let stepped = worker.stepped.lock().unwrap().clone();
        assert!(stepped.contains(&1) && stepped.contains(&2));
        assert!(stepped.contains(&3), "the failed item was retried");
        assert!(!stepped.contains(&4));
    }

    /// A role that only counts its looks.
    #[derive(Default)]
    struct Looking(AtomicUsize);

    impl Worker for Looking {
        type Item = u32;
        const ROLE: &'static str = "test";

        async fn find_work(&self) -> anyhow::Result<Vec<u32>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Vec::new())
        }

        fn id(item: &u32) -> WorkId {
            WorkId::Job(item.to_string())
        }

        async fn step(&self, _: u32) -> anyhow::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_block_wakes_the_role_before_its_next_poll() {
        let worker = Arc::new(Looking::default());
        let (blocks, heads) = mpsc::channel(4);
        let ticks = Ticks {
            poll: Duration::from_secs(3600),
            wake: None,
            heads: Some(heads),
        };
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(run(worker.clone(), ticks, shutdown.clone()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(worker.0.load(Ordering::SeqCst), 1, "the first look");
        blocks.send(7).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(worker.0.load(Ordering::SeqCst), 2, "woken by the block");
        drop(blocks);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            worker.0.load(Ordering::SeqCst),
            2,
            "a closed channel is not a wake-up"
        );
        shutdown.cancel();
        running.await.unwrap();
    }
}
