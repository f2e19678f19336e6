//! `percore`: parses the settings, sets up logging and signals, and runs the
//! server until SIGTERM/SIGINT has drained it.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use percore::config::{Config, LogFormat};

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
    let config = Config::parse();
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
