//! `tiersync check`: validate a scenario file without running it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tiersync_simnet::scenario::Scenario;

/// Arguments of `tiersync check`.
#[derive(Args)]
pub struct CheckArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
}

/// Loads the scenario; prints what it holds, or the error with its file,
/// line and column, and exits non-zero on error.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    match Scenario::load(&args.scenario) {
        Ok(sc) => {
            println!(
                "{}: ok — {} sites, {} clients, {} policies, {} changes, {} faults, {}",
                args.scenario.display(),
                sc.sites.len(),
                sc.total_clients(),
                sc.policies.len(),
                sc.changes.len(),
                sc.faults.len(),
                sc.duration,
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
