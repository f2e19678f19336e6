//! Starting and stopping the whole server: checks the host, binds one socket
//! per shard, starts the pinned shard executors and the control executor, and
//! hands back a handle to stop and join them.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};

use crate::config::Config;
use crate::control;
use crate::control::supervisor::ShardPlan;
use crate::os::executor::spawn_executor;
use crate::os::limits::{self, IO_MEMORY_BYTES};
use crate::os::listener;

/// What a started server reports about itself.
#[derive(Clone, Debug)]
pub struct Started {
    /// The address every shard listens on (the real port when 0 was asked).
    pub local_addr: SocketAddr,
    /// The core of each shard, by shard id.
    pub cores: Vec<usize>,
    /// Connections allowed over all shards.
    pub max_connections: usize,
    /// RLIMIT_NOFILE soft limit after raising it.
    pub nofile_limit: u64,
    /// RLIMIT_MEMLOCK soft limit after raising it, bytes.
    pub memlock_limit: u64,
}

/// A running server.
pub struct ServerHandle {
    /// Facts about the running server.
    pub started: Started,
    stop: UnixStream,
    control: ExecutorJoinHandle<()>,
    /// Set when shards died past `MAX_SHARD_RESTARTS`.
    shards_failed: Arc<AtomicBool>,
}

/// How a server ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Drained after a shutdown request.
    Stopped,
    /// Drained because a shard died with the restart budget spent
    /// (`MAX_SHARD_RESTARTS`).
    ShardsFailed,
    /// The control executor itself failed.
    ControlFailed,
}

impl ServerHandle {
    /// Starts a graceful shutdown (as SIGTERM does). A second call exits the
    /// process at once.
    pub fn shutdown(&self) {
        let _ = (&self.stop).write_all(&[1]);
    }

    /// A new handle on the stop socket, for a signal handler to write to.
    pub fn stop_socket(&self) -> std::io::Result<UnixStream> {
        self.stop.try_clone()
    }

    /// Waits until every shard has drained and the control executor ended.
    pub fn join(self) -> Ended {
        match self.control.join() {
            Ok(()) if self.shards_failed.load(Ordering::Relaxed) => Ended::ShardsFailed,
            Ok(()) => Ended::Stopped,
            Err(err) => {
                tracing::error!(error = %err, "control executor ended abnormally");
                Ended::ControlFailed
            }
        }
    }
}

/// Starts the server described by `config`. Every failure is a message for
/// the operator, never a panic.
pub fn start(config: Config) -> Result<ServerHandle, String> {
    let started_at = Instant::now();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    config.validate(cores.len())?;
    crate::shard::death::install_panic_hook();
    let shard_count = config.shard_count(cores.len());
    let memlock = limits::ensure_memlock(shard_count + 1)?;
    limits::probe_io_uring()?;
    let nofile = limits::raise_nofile().map_err(|e| format!("cannot read RLIMIT_NOFILE: {e}"))?;
    let max_connections = config.effective_max_connections(nofile.soft);
    let per_shard = max_connections.div_ceil(shard_count).max(1);

    let addr = SocketAddr::new(config.host, config.port);
    let listeners = listener::bind_shards(addr, config.backlog, shard_count)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local_addr = listeners[0]
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let (stop_rx, stop_tx) =
        UnixStream::pair().map_err(|e| format!("cannot create the stop socket: {e}"))?;

    let cores: Vec<usize> = cores.iter().take(shard_count).map(|c| c.id).collect();
    let plan = ShardPlan {
        config,
        cores: cores.clone(),
        addr: local_addr,
        max_connections_per_shard: per_shard,
    };
    let (ready_tx, ready_rx) = mpsc::channel();
    let control_builder = LocalExecutorBuilder::new(Placement::Unbound)
        .name("control")
        .io_memory(IO_MEMORY_BYTES)
        .defer_taskrun(plan.config.io_uring_defer_taskrun);
    let shards_failed = Arc::new(AtomicBool::new(false));
    let failed = shards_failed.clone();
    let control = spawn_executor(control_builder, "the control executor", move || {
        control::run::run(plan, listeners, stop_rx, started_at, ready_tx, failed)
    })?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(message)) => return Err(message),
        Err(_) => return Err("the control executor ended while starting the shards".into()),
    }
    Ok(ServerHandle {
        started: Started {
            local_addr,
            cores,
            max_connections,
            nofile_limit: nofile.soft,
            memlock_limit: memlock.soft,
        },
        stop: stop_tx,
        control,
        shards_failed,
    })
}
