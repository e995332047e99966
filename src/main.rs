//! The `tiersync` command line: simulate scenarios, compare strategies,
//! and (in `tiersync-net`) run the daemons.

mod commands;
mod progress;
mod report;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tiersync_net::cli as net;

/// mimalloc rather than the system allocator: a simulation of 100,000
/// clients runs about 10-15% faster (`scale-100k`, tiered 12.8 s to 10.9 s
/// on the project's 2-core machine), from cheaper allocations of reports
/// and messages and from huge pages under the per-client arrays (fewer TLB
/// misses). No number of a run depends on the allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tiered security-policy distribution: simulate it, compare it with
/// clients polling the centre, run it for real.
#[derive(Parser)]
#[command(name = "tiersync", version, about, long_about = None, after_help = "Examples:\n  \
    tiersync compare scenarios/figure-1.toml --out /tmp/fig1\n  \
    tiersync run scenarios/figure-1.toml --strategy flat --set client.poll=15m --json\n  \
    tiersync check scenarios/follow-the-sun.toml\n\n\
    `tiersync COMMAND --help` shows each command's options and an example.")]
struct Cli {
    /// Log more (repeat for trace); logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a scenario under one strategy and print what it cost.
    #[command(
        after_help = "Examples:\n  tiersync run scenarios/figure-1.toml --strategy flat --json\n  \
            tiersync run scenarios/figure-1.toml --set client.poll=15m --set local.policy_check=off"
    )]
    Run(commands::run::RunArgs),

    /// Validate a scenario file without running it.
    #[command(after_help = "Example:\n  tiersync check scenarios/figure-1.toml")]
    Check(commands::check::CheckArgs),

    /// Run a scenario under flat, flat-conditional and tiered with one seed
    /// and write a report (report.md, CSV files, charts).
    #[command(after_help = "Example:\n  tiersync compare scenarios/figure-1.toml --out /tmp/fig1")]
    Compare(commands::compare::CompareArgs),

    /// Run a scenario over a grid of settings and chart WAN bytes against
    /// p99 propagation delay.
    #[command(after_help = "Examples:\n  \
        tiersync sweep scenarios/figure-1.toml --set client.poll=15m,1h,4h\n  \
        tiersync sweep scenarios/figure-1.toml --set client.poll=15m,1h --list\n  \
        tiersync sweep scenarios/figure-1.toml --set client.poll=15m,1h --point 3\n  \
        tiersync sweep scenarios/figure-1.toml --set client.poll=15m,1h --collect\n  \
        tiersync sweep scenarios/figure-1.toml --set client.poll=15m,1h --set seed=1,2,3\n\n\
        Every point runs with the scenario's seed, so points differ only in their settings;\n\
        a `seed` axis (last example) repeats each setting with other seeds. A point's row\n\
        equals `tiersync run --json` with the same --set values and strategy.")]
    Sweep(commands::sweep::SweepArgs),

    /// Replay a scenario's nodes over real loopback TLS with compressed
    /// time, and set the bytes they wrote beside the simulator's.
    #[command(after_help = "Examples:\n  tiersync replay scenarios/replay-small.toml\n  \
        tiersync replay scenarios/replay-small.toml --speedup 7200 --json")]
    Replay(commands::replay::ReplayArgs),

    // Real deployment over TCP (tiersync-net).
    /// Run the master policy server.
    #[command(
        after_help = "Example:\n  tiersync master --config master.toml --metrics 127.0.0.1:9464"
    )]
    Master(net::DaemonArgs),

    /// Run a local policy server.
    #[command(after_help = "Example:\n  tiersync local --config tokyo.toml")]
    Local(net::DaemonArgs),

    /// Run a client.
    #[command(after_help = "Example:\n  tiersync client --config host1.toml")]
    Client(net::DaemonArgs),

    /// Print a commented example configuration for a role.
    #[command(after_help = "Example:\n  tiersync init-config local > tokyo.toml")]
    InitConfig(net::InitConfigArgs),

    /// Create a CA and node certificates to try a deployment.
    #[command(after_help = "Examples:\n  tiersync pki init pki\n  \
        tiersync pki issue pki --role local --name tokyo --site tokyo")]
    Pki(net::PkiArgs),

    /// Set, list and show policies (operator command).
    #[command(after_help = "Examples:\n  tiersync policy list\n  \
        tiersync policy set antivirus --file antivirus.toml")]
    Policy(net::PolicyArgs),

    /// Historical or current status of sites and clients (operator command).
    #[command(after_help = "Examples:\n  tiersync status\n  tiersync status --current --json")]
    Status(net::StatusArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let daemon = matches!(cli.command, Command::Master(_) | Command::Local(_) | Command::Client(_));
    init_logging(cli.verbose, daemon);
    let result = match cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Check(args) => commands::check::run(args),
        Command::Compare(args) => commands::compare::run(args),
        Command::Sweep(args) => commands::sweep::run(args),
        Command::Replay(args) => commands::replay::run(args),
        Command::Master(a) => net::master(&a).map(|()| ExitCode::SUCCESS).map_err(Into::into),
        Command::Local(a) => net::local(&a).map(|()| ExitCode::SUCCESS).map_err(Into::into),
        Command::Client(a) => net::client(&a).map(|()| ExitCode::SUCCESS).map_err(Into::into),
        Command::InitConfig(a) => {
            net::init_config(&a).map(|()| ExitCode::SUCCESS).map_err(Into::into)
        }
        Command::Pki(a) => net::pki(&a).map(|()| ExitCode::SUCCESS).map_err(Into::into),
        Command::Policy(a) => net::policy(&a).map(|()| ExitCode::SUCCESS).map_err(Into::into),
        Command::Status(a) => net::status(&a).map(|()| ExitCode::SUCCESS).map_err(Into::into),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Quiet by default: warnings only (daemons: their lifecycle at `info`),
/// unless `-v` or `RUST_LOG` asks for more.
///
/// Colour only on a terminal: a daemon's log is usually redirected to a
/// file (`2> master.log`), which colour codes would clutter. `NO_COLOR`
/// (non-empty) turns colour off on a terminal too, as tracing's default
/// would, since `with_ansi` overrides that default.
fn init_logging(verbose: u8, daemon: bool) {
    let default = match verbose {
        0 if daemon => "info",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let ansi = std::io::stderr().is_terminal() && !no_color;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}
