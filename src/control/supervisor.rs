//! Starting shards and restarting the ones that die.
//!
//! The control executor owns one [`Slot`] per shard id. A shard runs in its
//! own pinned executor thread; if it panics, the panic unwinds that thread
//! only, its channel to the control executor closes, and the supervisor
//! joins the dead thread and starts a fresh shard (new state, new
//! `SO_REUSEPORT` socket on the same port) on the same core, handing it the
//! connections the dead one had queued (see [`crate::shard::death`]). The
//! other shards never notice. Restarts are counted per shard.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;

use futures_lite::AsyncReadExt;
use glommio::channels::local_channel::LocalSender;
use glommio::channels::shared_channel::{self, ConnectedSender};
use glommio::net::UnixStream;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};

use crate::config::Config;
use crate::control::messages::{Event, ToControl, ToShard, CHANNEL_CAPACITY};
use crate::os::limits::IO_MEMORY_BYTES;
use crate::shard::run::{self as shard, ShardSetup};

/// What every shard is started with.
pub struct ShardPlan {
    /// Settings.
    pub config: Config,
    /// Core of each shard, by shard id.
    pub cores: Vec<usize>,
    /// The address all shards listen on (port already resolved).
    pub addr: SocketAddr,
    /// Connections allowed per shard.
    pub max_connections_per_shard: usize,
}

/// One shard id's current incarnation.
struct Slot {
    /// Bumped at each restart, so events of a dead incarnation are ignored.
    generation: u64,
    handle: Option<ExecutorJoinHandle<()>>,
    sender: Option<ConnectedSender<ToShard>>,
    restarts: u64,
}

/// A shard died with the restart budget (`MAX_SHARD_RESTARTS`) spent: the
/// server must drain and exit with a failure.
#[derive(Debug)]
pub struct BudgetSpent;

/// The shards and their restarts.
pub struct Supervisor {
    plan: ShardPlan,
    slots: Vec<Slot>,
    events: Rc<LocalSender<Event>>,
}

impl Supervisor {
    /// A supervisor with no shard started yet; `events` receives what the
    /// shards send and when they end.
    pub fn new(plan: ShardPlan, events: Rc<LocalSender<Event>>) -> Self {
        let slots = (0..plan.cores.len())
            .map(|_| Slot {
                generation: 0,
                handle: None,
                sender: None,
                restarts: 0,
            })
            .collect();
        Supervisor {
            plan,
            slots,
            events,
        }
    }

    /// Shards in the plan.
    pub fn shard_count(&self) -> usize {
        self.slots.len()
    }

    /// Is `(id, generation)` the running incarnation of shard `id`?
    pub fn is_current(&self, id: usize, generation: u64) -> bool {
        self.slots
            .get(id)
            .is_some_and(|s| s.generation == generation && s.sender.is_some())
    }

    /// Shard ids running now.
    pub fn alive(&self) -> Vec<bool> {
        self.slots.iter().map(|s| s.sender.is_some()).collect()
    }

    /// The channel to shard `id`, while it runs.
    pub fn sender(&self, id: usize) -> Option<&ConnectedSender<ToShard>> {
        self.slots.get(id)?.sender.as_ref()
    }

    /// Times shard `id` was restarted.
    pub fn restarts(&self, id: usize) -> u64 {
        self.slots.get(id).map_or(0, |s| s.restarts)
    }

    /// Starts shard `id` on its core with `listener`; it serves `orphans`
    /// (connections a dead incarnation left) first.
    pub async fn start(
        &mut self,
        id: usize,
        listener: std::net::TcpListener,
        orphans: Vec<OwnedFd>,
    ) -> Result<(), String> {
        let core = self.plan.cores[id];
        let (to_control, from_shard) = shared_channel::new_bounded::<ToControl>(CHANNEL_CAPACITY);
        let (to_shard, from_control) = shared_channel::new_bounded::<ToShard>(CHANNEL_CAPACITY);
        let (death_watch, death_notice) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| format!("cannot create a socket pair for shard {id}: {e}"))?;
        let setup = ShardSetup {
            id,
            core,
            config: self.plan.config.clone(),
            max_connections: self.plan.max_connections_per_shard,
            listener,
            orphans,
            to_control,
            from_control,
            death_notice,
        };
        let builder = LocalExecutorBuilder::new(Placement::Fixed(core))
            .name(&format!("shard{id}"))
            .io_memory(IO_MEMORY_BYTES)
            .defer_taskrun(self.plan.config.io_uring_defer_taskrun);
        let what = format!("shard {id} on core {core}");
        let handle =
            crate::os::executor::spawn_executor(builder, &what, move || shard::run(setup))?;
        // Same order as the shard connects its ends: each connect waits for its peer.
        let sender = to_shard.connect().await;
        let receiver = from_shard.connect().await;
        let slot = &mut self.slots[id];
        slot.generation += 1;
        slot.handle = Some(handle);
        slot.sender = Some(sender);
        let generation = slot.generation;
        let events = self.events.clone();
        let forward = events.clone();
        glommio::spawn_local(async move {
            while let Some(msg) = receiver.recv().await {
                let _ = forward.try_send(Event::FromShard(id, generation, msg));
            }
        })
        .detach();
        glommio::spawn_local(async move {
            // SAFETY: the fd comes from a socket this task owns; the glommio
            // stream takes over closing it.
            let mut watch = unsafe { UnixStream::from_raw_fd(death_watch.into_raw_fd()) };
            // The read ends when the shard thread does; a shard that died
            // writes the fds of the connections it leaves first.
            let mut written = Vec::new();
            let mut chunk = [0u8; 256];
            while let Ok(n) = watch.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                written.extend_from_slice(&chunk[..n]);
            }
            let orphans = crate::shard::death::read_orphans(&written);
            let _ = events.try_send(Event::ShardGone(id, generation, orphans));
        })
        .detach();
        Ok(())
    }

    /// Handles the end of shard `id`: joins its thread and, if it died of a
    /// panic while the server was not draining, starts a fresh one that
    /// serves `orphans`, unless the restart budget is spent. Orphans nobody
    /// can serve are closed (dropped).
    pub async fn on_gone(
        &mut self,
        id: usize,
        draining: bool,
        orphans: Vec<OwnedFd>,
    ) -> Result<(), BudgetSpent> {
        let budget = self.plan.config.max_shard_restarts;
        let spent: u64 = self.slots.iter().map(|s| s.restarts).sum();
        let Some(slot) = self.slots.get_mut(id) else {
            return Ok(());
        };
        slot.sender = None;
        let Some(handle) = slot.handle.take() else {
            return Ok(());
        };
        // The thread is unwinding or returning: joining takes moments, but it
        // blocks, so it runs on the blocking pool.
        let joined = glommio::executor()
            .spawn_blocking(move || handle.join())
            .await;
        let panic = match joined {
            Ok(()) => return Ok(()),
            Err(err) => err.to_string(),
        };
        if draining {
            tracing::error!(shard = id, error = %panic, "shard died while draining");
            return Ok(());
        }
        if spent >= budget {
            tracing::error!(shard = id, error = %panic, restarts = spent, max_shard_restarts = budget,
                "shard died and the restart budget is spent: draining the server, which then exits with status 70");
            return Err(BudgetSpent);
        }
        slot.restarts += 1;
        let restarts = slot.restarts;
        tracing::error!(shard = id, error = %panic, restarts, "shard died; restarting it");
        let listener = match crate::os::listener::bind_reuseport(
            self.plan.addr,
            self.plan.config.backlog,
        ) {
            Ok(l) => l,
            Err(err) => {
                tracing::error!(shard = id, error = %err, "cannot listen again; shard stays down");
                return Ok(());
            }
        };
        if !orphans.is_empty() {
            tracing::warn!(
                shard = id,
                connections = orphans.len(),
                "handing queued connections to the new shard"
            );
        }
        if let Err(err) = self.start(id, listener, orphans).await {
            tracing::error!(shard = id, error = %err, "cannot restart shard");
            return Ok(());
        }
        Ok(())
    }
}
