//! The state of one shard, shared by its tasks: the one type every file of
//! the request path reads (settings, clock, cache, counters, connections).
//! A leaf: it imports none of the files that use it; the run loop that
//! builds it lives in `shard/run.rs`.
//!
//! Everything here is `Rc`/`Cell`/`RefCell`: a shard is one thread and never
//! touches another shard's memory.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use futures_lite::future;
use glommio::channels::local_channel::{self, LocalSender};
use glommio::channels::shared_channel::ConnectedSender;

use crate::clock::Clock;
use crate::config::Config;
use crate::control::messages::ToControl;
use crate::metrics::stats::ShardStats;
use crate::shard::cache::Cache;
use crate::shard::payload::Rng;
use crate::shard::registry::Registry;
use crate::shard::routes::MetricsFormat;

/// Longest a request waits for a metrics report from the control executor.
const METRICS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The state of one shard, shared by its tasks.
pub struct Shard {
    /// Shard id, 0-based; also the `workerId` of `/api/data` bodies.
    pub id: usize,
    /// The core this shard is pinned to.
    pub core: usize,
    /// The settings (this shard's own copy).
    pub config: Config,
    /// Connections this shard accepts before answering 503.
    pub max_connections: usize,
    /// Cached time and `Date` header.
    pub clock: RefCell<Clock>,
    /// Cached `/api/data` bodies.
    pub cache: RefCell<Cache>,
    /// Counters and latency histogram.
    pub stats: ShardStats,
    /// Source of the bodies' random `value`.
    pub rng: RefCell<Rng>,
    /// Reused buffer for bodies that are not cached (health, errors, metrics).
    pub scratch: RefCell<Vec<u8>>,
    /// Set once shutdown began: responses carry `Connection: close`.
    pub draining: Cell<bool>,
    /// Open connections.
    pub conns: RefCell<Registry>,
    /// Messages to the control executor (metrics requests, snapshots).
    pub(crate) to_control: ConnectedSender<ToControl>,
    /// Requests waiting for a metrics report, in the order they asked.
    pub(crate) metrics_waiters: RefCell<VecDeque<LocalSender<Vec<u8>>>>,
}

impl Shard {
    /// Asks the control executor for a metrics report rendered in `format`;
    /// `None` if the control executor is gone.
    pub async fn metrics(&self, format: MetricsFormat) -> Option<Vec<u8>> {
        let (tx, rx) = local_channel::new_bounded(1);
        self.to_control
            .send(ToControl::Metrics {
                shard_id: self.id,
                format,
            })
            .await
            .ok()?;
        // Pushed after the send completed: the reply is handled by another
        // task of this thread, which cannot run before this one yields.
        self.metrics_waiters.borrow_mut().push_back(tx);
        // A report that does not come in time is a 503, not a hung client.
        // The waiter stays queued, so later replies still match their requests.
        future::or(rx.recv(), async {
            glommio::timer::sleep(METRICS_TIMEOUT).await;
            None
        })
        .await
    }
}
