//! The `tiersync` command line.

use clap::{Parser, Subcommand};
use tiersync_net::cli as net;

#[derive(Parser, Debug)]
#[command(name = "tiersync", version, about = "Tiered security-policy distribution")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    // Real deployment over TCP (tiersync-net).
    /// Run the master policy server.
    Master(net::DaemonArgs),
    /// Run a local policy server.
    Local(net::DaemonArgs),
    /// Run a client.
    Client(net::DaemonArgs),
    /// Print a commented example configuration for a role.
    InitConfig(net::InitConfigArgs),
    /// Create a CA and node certificates to try a deployment.
    Pki(net::PkiArgs),
    /// Set, list and show policies (operator command).
    Policy(net::PolicyArgs),
    /// Historical or current status of sites and clients (operator command).
    Status(net::StatusArgs),
}

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Master(a) => net::master(&a)?,
        Command::Local(a) => net::local(&a)?,
        Command::Client(a) => net::client(&a)?,
        Command::InitConfig(a) => net::init_config(&a)?,
        Command::Pki(a) => net::pki(&a)?,
        Command::Policy(a) => net::policy(&a)?,
        Command::Status(a) => net::status(&a)?,
    }
    Ok(())
}
