//! Runs one tiersync daemon: `tiersync-node master|local|client CONFIG`.
//!
//! The same as `tiersync master --config CONFIG` and its siblings, built
//! inside this crate so that its integration tests can start a daemon as a
//! separate process and kill it with SIGKILL.

use std::path::PathBuf;
use std::process::ExitCode;

use tiersync_net::cli::{self, DaemonArgs};

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal, and not with `NO_COLOR` set (which
    // `with_ansi` would otherwise override), as `tiersync` itself does.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && !no_color;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let (Some(role), Some(config)) = (args.next(), args.next()) else {
        eprintln!("usage: tiersync-node master|local|client CONFIG");
        return ExitCode::from(2);
    };
    let args = DaemonArgs { config: PathBuf::from(config), metrics: None };
    let result = match role.as_str() {
        "master" => cli::master(&args),
        "local" => cli::local(&args),
        "client" => cli::client(&args),
        _ => {
            eprintln!("unknown role `{role}`");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
