//! `percore`: parses the settings, sets up logging and signals, and runs the
//! server until SIGTERM/SIGINT has drained it.

use std::io::IsTerminal;
use std::process::ExitCode;

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
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let registered = server
            .stop_socket()
            .and_then(|sock| signal_hook::low_level::pipe::register(signal, sock));
        if let Err(err) = registered {
            eprintln!("percore: cannot install the signal handler: {err}");
            return ExitCode::from(2);
        }
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
    if !server.join() {
        return ExitCode::from(1);
    }
    tracing::info!("stopped");
    ExitCode::SUCCESS
}
