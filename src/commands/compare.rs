//! `tiersync compare`: one scenario under `flat`, `flat-conditional` and
//! `tiered` with the same seed, and the report that sets them side by side.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use indicatif::{MultiProgress, ProgressDrawTarget};
use tiersync_simnet::output::RunOutput;
use tiersync_simnet::scenario::{Scenario, Strategy};
use tiersync_simnet::world::{self, RunOptions};

use super::parallel;
use super::run::{bytes, dur, write_stdout};
use crate::progress::Progress;
use crate::report::{self, Comparison};

/// The strategies a report compares, in the order it lists them: the
/// baseline first, so that factors read against the row above.
pub const STRATEGIES: [Strategy; 3] = [Strategy::Flat, Strategy::FlatConditional, Strategy::Tiered];

/// Arguments of `tiersync compare`.
#[derive(Args)]
pub struct CompareArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Folder for the report [default: reports/<scenario name>/].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seed for all three runs [default: the scenario's `seed`].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override a scenario setting, as in `tiersync sweep` (repeatable):
    /// `--set duration=1d`.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_override)]
    pub overrides: Vec<(String, String)>,
    /// Runs at once [default: the cores available]; results do not depend
    /// on it.
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Splits `KEY=VALUE`.
pub fn parse_override(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(format!("expected KEY=VALUE, such as client.poll=15m, not `{text}`")),
    }
}

/// Loads a scenario with overrides, turning its error into one message.
pub fn load(path: &Path, overrides: &[(String, String)]) -> anyhow::Result<Scenario> {
    Scenario::load_with_overrides(path, overrides).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Runs `sc` under each of `strategies` with `seed`, up to `jobs` at a
/// time, keeping every run's detail; results are in `strategies` order.
pub fn run_all(
    sc: &Scenario,
    strategies: &[Strategy],
    seed: Option<u64>,
    jobs: usize,
    quiet: bool,
) -> Vec<RunOutput> {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
    parallel::map(strategies.len(), jobs, |i| {
        let strategy = strategies[i];
        let opts = RunOptions { strategy, seed, keep_detail: true };
        let mut progress =
            Progress::new(strategy.name(), sc.start, sc.end(), quiet).in_group(&multi);
        let out = world::run(sc, &opts, &mut progress);
        // Without a trace file, finishing only clears the bar.
        let _ = progress.finish();
        out
    })
}

/// Runs the command.
pub fn run(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let sc = load(&args.scenario, &args.overrides)?;
    let jobs = args.jobs.unwrap_or_else(parallel::default_jobs);
    let runs = run_all(&sc, &STRATEGIES, args.seed, jobs, args.quiet);

    // Wall times go to stdout only, never into the report.
    let mut text = String::new();
    for r in &runs {
        let s = &r.summary;
        text += &format!(
            "{:>16}: WAN {:>10}, master {:>9} messages, p50 {:>6} p99 {:>6}, {:.1} s wall\n",
            s.strategy,
            bytes(s.wan.bytes),
            s.master.messages_in + s.master.messages_out,
            dur(s.propagation_seconds.p50),
            dur(s.propagation_seconds.p99),
            s.wall_seconds,
        );
    }
    let dir = args.out.unwrap_or_else(|| Path::new("reports").join(&sc.name));
    let cmp = Comparison { scenario: &sc, path: args.scenario.display().to_string(), runs };
    report::write(&cmp, &dir)
        .with_context(|| format!("writing the report in {}", dir.display()))?;
    text += &format!("report written to {}\n", dir.join("report.md").display());
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two branches in two time zones for a day, with a change made at
    /// the master and one at a branch: every strategy polls, syncs and
    /// carries both, quickly enough for a debug build.
    const SMALL: &str = r#"
        name = "small"
        seed = 3
        start = "2026-03-02T00:00:00Z"
        duration = "1d"
        [master]
        site = "hq"
        [client]
        poll = "1h"
        splay = "30m"
        status_every = "2h"
        inventory = "2KiB"
        [local]
        sync_window = "02:00-04:00"
        policy_check = "6h"
        [[site]]
        name = "hq"
        timezone = "America/New_York"
        [[site]]
        name = "paris"
        parent = "hq"
        timezone = "Europe/Paris"
        clients = { windows = 150, linux = 30 }
        wan = { bandwidth = "20Mbit/s", latency = "40ms", loss = 0.001, background = "office" }
        [[site]]
        name = "osaka"
        parent = "hq"
        timezone = "Asia/Tokyo"
        clients = { windows = 120 }
        wan = { bandwidth = "10Mbit/s", latency = "90ms", background = "office" }
        [[policy]]
        id = "antivirus"
        platforms = ["windows", "linux"]
        content = "100KiB"
        [[change]]
        at = "2026-03-02T05:00:00Z"
        policy = "antivirus"
        content = "110KiB"
        [[change]]
        at = "2026-03-02T09:00:00Z"
        policy = "firewall"
        platforms = ["windows"]
        params = { default_inbound = "deny" }
        origin = "osaka"
    "#;

    fn small() -> Scenario {
        Scenario::from_str_named(SMALL, "small.toml").expect("the test scenario is valid")
    }

    /// A summary as JSON without its one wall-clock field.
    fn json(s: &tiersync_simnet::output::RunSummary) -> serde_json::Value {
        let mut v = serde_json::to_value(s).expect("a summary serialises");
        v["wall_seconds"] = serde_json::Value::Null;
        v
    }

    /// Runs side by side on threads give exactly the runs made one after
    /// the other: same trace hashes, same summaries.
    #[test]
    fn parallel_runs_equal_sequential_runs() {
        let sc = small();
        let one = run_all(&sc, &STRATEGIES, None, 1, true);
        let three = run_all(&sc, &STRATEGIES, None, 3, true);
        for (a, b) in one.iter().zip(&three) {
            assert_eq!(a.summary.trace_hash, b.summary.trace_hash);
            assert_eq!(json(&a.summary), json(&b.summary));
        }
        let names: Vec<_> = one.iter().map(|r| r.summary.strategy.as_str()).collect();
        assert_eq!(names, ["flat", "flat-conditional", "tiered"]);
    }

    /// Keeping the detail for a report changes nothing in the summary, so
    /// a report's numbers are those of `tiersync run --json`; and
    /// `summary.csv` carries them unchanged.
    #[test]
    fn report_numbers_equal_the_run_json() {
        let sc = small();
        let runs = run_all(&sc, &STRATEGIES, None, 3, true);
        for r in &runs {
            let strategy =
                tiersync_simnet::scenario::Strategy::from(match r.summary.strategy.as_str() {
                    "flat" => super::super::run::StrategyArg::Flat,
                    "flat-conditional" => super::super::run::StrategyArg::FlatConditional,
                    _ => super::super::run::StrategyArg::Tiered,
                });
            let opts = RunOptions { strategy, seed: None, keep_detail: false };
            let plain = world::run(&sc, &opts, &mut tiersync_simnet::world::NoHooks);
            assert_eq!(json(&plain.summary), json(&r.summary));
        }

        let dir = std::env::temp_dir().join(format!("tiersync-compare-{}", std::process::id()));
        let cmp = Comparison { scenario: &sc, path: "small.toml".into(), runs };
        report::write(&cmp, &dir).expect("the report is written");
        let mut csv = csv::Reader::from_path(dir.join("summary.csv")).expect("summary.csv");
        let head = csv.headers().expect("a header").clone();
        let rows: Vec<csv::StringRecord> = csv.records().map(|r| r.expect("a row")).collect();
        assert_eq!(rows.len(), 3);
        for (row, run) in rows.iter().zip(&cmp.runs) {
            let j = json(&run.summary);
            let col = |name: &str| row.get(head.iter().position(|h| h == name).unwrap()).unwrap();
            assert_eq!(col("strategy"), j["strategy"]);
            assert_eq!(col("wan_bytes"), j["wan"]["bytes"].to_string());
            assert_eq!(col("master_messages_in"), j["master"]["messages_in"].to_string());
            assert_eq!(col("master_bytes_out"), j["master"]["bytes_out"].to_string());
            assert_eq!(col("never_applied"), j["propagation_seconds"]["never_applied"].to_string());
            assert_eq!(col("trace_hash"), j["trace_hash"]);
            let p99: f64 = col("propagation_p99_s").parse().unwrap();
            assert!((p99 - j["propagation_seconds"]["p99"].as_f64().unwrap()).abs() < 5e-4);
        }
        for file in ["report.md", "timeseries.csv", "propagation.csv", "sites.csv"] {
            assert!(dir.join(file).is_file(), "{file} is written");
        }
        for (stem, _) in crate::report::markdown::CHARTS {
            assert!(dir.join(format!("{stem}.png")).is_file(), "{stem}.png is drawn");
            assert!(dir.join(format!("{stem}.svg")).is_file(), "{stem}.svg is drawn");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
