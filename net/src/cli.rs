//! Command-line arguments and entry points of the daemons, `pki`,
//! `init-config` and the operator commands. The `tiersync` binary parses
//! these argument structs as its subcommands and calls the functions here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use thiserror::Error;
use tracing::info;

use crate::clock::Clock;
use crate::config::{self, ConfigError, OperatorConfigFile};
use crate::daemon::{Daemon, DaemonError, NodeSetup};
use crate::ids::Role;
use crate::metrics::{self, Metrics};
use crate::operator::{self, OpRequest, OpResponse, OpScope, OperatorError};
use crate::pki::{self, PkiError};
use crate::setup::{self, SetupError};

/// Why a command failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CliError {
    /// A configuration file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Setting a daemon up.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// A daemon stopped on an error.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// Certificates.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// An operator command could not be carried.
    #[error(transparent)]
    Operator(#[from] OperatorError),
    /// The server refused an operator command.
    #[error("refused: {0}")]
    Refused(String),
    /// The async runtime or the metrics endpoint could not start.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// `tiersync master|local|client --config FILE [--metrics ADDR]`.
#[derive(Args, Debug, Clone)]
pub struct DaemonArgs {
    /// The node's configuration file (`tiersync init-config ROLE` prints an
    /// example).
    #[arg(long)]
    pub config: PathBuf,
    /// Serve Prometheus metrics on this address, e.g. 127.0.0.1:9464.
    #[arg(long)]
    pub metrics: Option<SocketAddr>,
}

/// `tiersync init-config ROLE`.
#[derive(Args, Debug, Clone)]
pub struct InitConfigArgs {
    /// master, local, client or operator.
    pub role: Role,
}

/// `tiersync pki …`.
#[derive(Args, Debug, Clone)]
pub struct PkiArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PkiCommand,
}

/// The `pki` subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum PkiCommand {
    /// Create a CA and the master's policy-signing key in DIR.
    #[command(after_help = "Example:\n  tiersync pki init pki")]
    Init {
        /// Where to write them.
        dir: PathBuf,
    },
    /// Issue a certificate signed by the CA in DIR.
    #[command(after_help = "Examples:\n  tiersync pki issue pki --role local --name tokyo\n  \
        tiersync pki issue pki --role client --name pc1.tokyo --site tokyo")]
    Issue {
        /// The CA's directory; the certificate and key are written there.
        dir: PathBuf,
        /// master, local, client or operator.
        #[arg(long)]
        role: Role,
        /// The node's name (a DNS name, e.g. `tokyo` or `pc1.tokyo`).
        #[arg(long)]
        name: String,
        /// The site of a client (a local server's site defaults to its
        /// name).
        #[arg(long)]
        site: Option<String>,
    },
}

/// Options of every operator command.
#[derive(Args, Debug, Clone)]
pub struct OperatorArgs {
    /// Where to connect and with which certificate (`tiersync init-config
    /// operator` prints an example).
    #[arg(long, default_value = "operator.toml", global = true)]
    pub config: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `tiersync policy …`.
#[derive(Args, Debug, Clone)]
pub struct PolicyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PolicyCommand,
    /// Connection options.
    #[command(flatten)]
    pub op: OperatorArgs,
}

/// The `policy` subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum PolicyCommand {
    /// Create or change a policy from a TOML file.
    #[command(after_help = "Examples:\n  tiersync policy set antivirus --file antivirus.toml\n  \
        tiersync policy set antivirus --file linux.toml --platform linux")]
    Set {
        /// The policy's id.
        id: String,
        /// The policy file.
        #[arg(long)]
        file: PathBuf,
        /// Make the file's parameters this platform's overlay.
        #[arg(long)]
        platform: Option<String>,
    },
    /// List the policies held.
    #[command(after_help = "Example:\n  tiersync policy list --config operator.toml --json")]
    List,
    /// Show one policy.
    #[command(after_help = "Examples:\n  tiersync policy show antivirus\n  \
        tiersync policy show antivirus --revision 3")]
    Show {
        /// The policy's id.
        id: String,
        /// A past revision (the master keeps every one).
        #[arg(long)]
        revision: Option<u64>,
    },
}

/// `tiersync status`.
#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    /// Ask every local server now, instead of reading the store.
    #[arg(long)]
    pub current: bool,
    /// One site.
    #[arg(long, conflicts_with = "client")]
    pub site: Option<String>,
    /// One client, by certificate name.
    #[arg(long)]
    pub client: Option<String>,
    /// Connection options.
    #[command(flatten)]
    pub op: OperatorArgs,
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

/// Runs a daemon until SIGTERM or Ctrl-C, then stops it cleanly.
async fn run_daemon(
    args: &DaemonArgs,
    build: impl FnOnce(std::sync::Arc<Metrics>) -> Result<NodeSetup, CliError>,
) -> Result<(), CliError> {
    let metrics = Metrics::new();
    if let Some(addr) = args.metrics {
        let bound = metrics::spawn(addr, metrics.clone()).await?;
        info!(addr = %bound, "metrics endpoint");
    }
    let daemon = Daemon::start(build(metrics)?).await?;
    if let Some(addr) = daemon.local_addr() {
        info!(%addr, "listening");
    }
    let stopper = daemon.stopper();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("signal received: stopping");
        stopper.stop();
    });
    Ok(daemon.wait().await?)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `tiersync master --config FILE`.
pub fn master(args: &DaemonArgs) -> Result<(), CliError> {
    let cfg: config::MasterConfigFile = config::load(&args.config)?;
    runtime()?.block_on(run_daemon(args, |m| Ok(setup::master(&cfg, Clock::wall(), m)?)))
}

/// `tiersync local --config FILE`.
pub fn local(args: &DaemonArgs) -> Result<(), CliError> {
    let cfg: config::LocalConfigFile = config::load(&args.config)?;
    runtime()?.block_on(run_daemon(args, |m| Ok(setup::local(&cfg, Clock::wall(), m)?)))
}

/// `tiersync client --config FILE`.
pub fn client(args: &DaemonArgs) -> Result<(), CliError> {
    let cfg: config::ClientConfigFile = config::load(&args.config)?;
    runtime()?.block_on(run_daemon(args, |m| Ok(setup::client(&cfg, Clock::wall(), m)?)))
}

/// `tiersync init-config ROLE`: prints a commented example.
pub fn init_config(args: &InitConfigArgs) -> Result<(), CliError> {
    print!("{}", config::example(args.role));
    Ok(())
}

/// `tiersync pki init DIR` and `tiersync pki issue DIR …`.
pub fn pki(args: &PkiArgs) -> Result<(), CliError> {
    let written = match &args.command {
        PkiCommand::Init { dir } => pki::init(dir)?,
        PkiCommand::Issue { dir, role, name, site } => {
            pki::issue(dir, *role, name, site.as_deref())?
        }
    };
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn operator_call(op: &OperatorArgs, req: OpRequest) -> Result<(), CliError> {
    let cfg: OperatorConfigFile = config::load(&op.config)?;
    let resp = runtime()?.block_on(operator::request(&cfg, &req))?;
    if let OpResponse::Error(e) = resp {
        return Err(CliError::Refused(e));
    }
    if op.json {
        let value = match &resp {
            OpResponse::PolicySet(o) => serde_json::to_value(o),
            OpResponse::Policies(p) => serde_json::to_value(p),
            OpResponse::Policy(p) => serde_json::to_value(p),
            OpResponse::Status(s) => serde_json::to_value(s),
            OpResponse::Done(d) => serde_json::to_value(d),
            OpResponse::Error(e) => serde_json::to_value(e),
        };
        let text = value.and_then(|v| serde_json::to_string_pretty(&v)).unwrap_or_default();
        println!("{text}");
    } else {
        print!("{}", operator::render(&resp));
    }
    Ok(())
}

/// The operator request a `tiersync policy …` command sends.
pub fn policy_request(command: &PolicyCommand) -> Result<OpRequest, CliError> {
    Ok(match command {
        PolicyCommand::Set { id, file, platform } => OpRequest::SetPolicy {
            change: operator::read_policy_file(id, Path::new(file))?,
            platform: platform.clone(),
        },
        PolicyCommand::List => OpRequest::ListPolicies,
        PolicyCommand::Show { id, revision } => {
            OpRequest::ShowPolicy { id: id.clone(), revision: *revision }
        }
    })
}

/// `tiersync policy set|list|show`.
pub fn policy(args: &PolicyArgs) -> Result<(), CliError> {
    operator_call(&args.op, policy_request(&args.command)?)
}

/// `tiersync status [--current] [--site S | --client HOST]`.
pub fn status(args: &StatusArgs) -> Result<(), CliError> {
    let scope = match (&args.site, &args.client) {
        (Some(s), _) => OpScope::Site(s.clone()),
        (_, Some(c)) => OpScope::Client(c.clone()),
        _ => OpScope::All,
    };
    operator_call(&args.op, OpRequest::Status { current: args.current, scope })
}
