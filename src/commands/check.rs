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

/// Loads the scenario; prints what it holds, or every error with its file,
/// line and column, and exits non-zero on error.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    match Scenario::load(&args.scenario) {
        Ok(sc) => {
            println!(
                "{}: ok — {}, {}, {}, {}, {}, {}",
                args.scenario.display(),
                count(sc.sites.len() as u64, "site", "sites"),
                count(sc.total_clients(), "client", "clients"),
                count(sc.policies.len() as u64, "policy", "policies"),
                count(sc.changes.len() as u64, "change", "changes"),
                count(sc.faults.len() as u64, "fault", "faults"),
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

/// `n` and the noun in the right number: "1 fault", "2 faults".
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    #[test]
    fn nouns_agree_with_their_number() {
        assert_eq!(super::count(1, "fault", "faults"), "1 fault");
        assert_eq!(super::count(0, "fault", "faults"), "0 faults");
        assert_eq!(super::count(2, "policy", "policies"), "2 policies");
    }
}
