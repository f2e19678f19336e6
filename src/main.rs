//! `percore`: parses the settings, sets up logging and signals, and runs the
//! server until SIGTERM/SIGINT has drained it.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use percore::config::{Config, LogFormat};

/// The command line: the server's settings, and an optional subcommand.
#[derive(Parser)]
#[command(
    name = "percore",
    version,
    about = "Thread-per-core HTTP/1.1 JSON server on io_uring"
)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Exit 0 if the server at HOST:PORT answers /api/health with 200
    /// (for container HEALTHCHECKs; needs no curl).
    Healthcheck,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_thread_names(true);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(std::io::stdout().is_terminal()).init(),
    }
}

/// Exit status after shards died past `MAX_SHARD_RESTARTS` (sysexits'
/// `EX_SOFTWARE`: an internal error; a supervisor should start a new process).
const EXIT_SHARDS_FAILED: u8 = 70;

/// How long past the drain timeout the process may still run after a signal
/// before the watchdog ends it.
const WATCHDOG_SLACK: Duration = Duration::from_secs(5);

/// SIGTERM/SIGINT start the drain (a byte on the server's stop socket). A
/// second signal exits at once, and a watchdog thread exits if the drain
/// overruns its timeout: both in the signal handlers' own thread, so they
/// work even if the control executor is stuck.
fn install_signal_handlers(
    server: &percore::server::ServerHandle,
    drain_timeout: Duration,
) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let signalled = Arc::new(AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT] {
        // Registered first, so it sees the flag the first signal sets only
        // from the second signal on.
        signal_hook::flag::register_conditional_shutdown(signal, 1, signalled.clone())?;
        signal_hook::flag::register(signal, signalled.clone())?;
        signal_hook::low_level::pipe::register(signal, server.stop_socket()?)?;
    }
    // The watchdog blocks on its own registration of the signals (a
    // self-pipe) rather than polling the flag: an idle server has no thread
    // that wakes up on a timer.
    let mut first_signal = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            if first_signal.forever().next().is_some() {
                std::thread::sleep(drain_timeout + WATCHDOG_SLACK);
                tracing::error!("drain overran its timeout: exiting");
                std::process::exit(1);
            }
        })?;
    Ok(())
}

fn main() -> ExitCode {
    let Cli { config, command } = Cli::parse();
    if let Some(Command::Healthcheck) = command {
        let addr = percore::healthcheck::probe_addr(config.host, config.port);
        return match percore::healthcheck::check(addr) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("percore healthcheck: {message}");
                ExitCode::from(1)
            }
        };
    }
    init_logging(config.log_format);
    let drain_timeout_ms = config.drain_timeout_ms;
    tracing::info!(settings = ?config, "percore starting");
    let server = match percore::server::start(config) {
        Ok(server) => server,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("percore: {message}");
            return ExitCode::from(2);
        }
    };
    let s = &server.started;
    let drain_timeout = Duration::from_millis(drain_timeout_ms);
    if let Err(err) = install_signal_handlers(&server, drain_timeout) {
        eprintln!("percore: cannot install the signal handlers: {err}");
        return ExitCode::from(2);
    }
    tracing::info!(
        addr = %s.local_addr,
        shards = s.cores.len(),
        cores = ?s.cores,
        max_connections = s.max_connections,
        nofile_limit = s.nofile_limit,
        memlock_limit_kib = s.memlock_limit / 1024,
        "listening"
    );
    match server.join() {
        percore::server::Ended::Stopped => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        percore::server::Ended::ShardsFailed => {
            tracing::error!("stopped: shards died past MAX_SHARD_RESTARTS");
            ExitCode::from(EXIT_SHARDS_FAILED)
        }
        percore::server::Ended::ControlFailed => ExitCode::from(1),
    }
}
