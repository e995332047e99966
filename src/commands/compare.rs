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
        let opts = RunOptions { strategy, seed, keep_detail: true, single_thread: false };
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
            let opts =
                RunOptions { strategy, seed: None, keep_detail: false, single_thread: false };
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
        let csvs = ["timeseries.csv", "propagation.csv", "sites.csv", "kinds.csv", "nodes.csv"];
        for file in ["report.md"].into_iter().chain(csvs) {
            assert!(dir.join(file).is_file(), "{file} is written");
        }
        for (stem, _) in crate::report::markdown::CHARTS {
            assert!(dir.join(format!("{stem}.png")).is_file(), "{stem}.png is drawn");
            assert!(dir.join(format!("{stem}.svg")).is_file(), "{stem}.svg is drawn");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Content sizes come from the scenario: every policy and change for a
    /// relay, those of its platform for a client; the crossing is where
    /// polling's per-client cost times clients meets replication's.
    #[test]
    fn break_even_counts_content_and_crosses_where_the_costs_meet() {
        let sc = small();
        let runs = run_all(&sc, &STRATEGIES, None, 3, true);
        let cmp = Comparison { scenario: &sc, path: "small.toml".into(), runs };
        let b = crate::report::series::break_even(&cmp).expect("two WAN links with clients");
        let days = 1.0;
        // antivirus 100 KiB at the start and 110 KiB after the change, for
        // every platform here; the firewall change has no content.
        let kib = 1024.0;
        assert_eq!(b.content_replicated, 210.0 * kib / days);
        assert_eq!(b.content_per_client, 210.0 * kib / days);
        assert_eq!(b.links.len(), 2);
        assert_eq!(b.links[0].clients_behind, 180);
        let crossing = b.replication / b.polling_per_client;
        assert!((b.crossing - crossing).abs() < 1e-9);
        let total: f64 = b.links.iter().map(|l| l.polling_per_day).sum();
        assert!((b.polling_per_client * 300.0 - total).abs() < 1e-6 * total);
        assert_eq!(b.exchanges_per_client[0], 24.0, "hourly polls");
        assert_eq!(b.exchanges_per_client[1], 12.0, "a report every 2h");
    }

    /// The exact delays of `propagation.csv` cover every applied pair, and
    /// the summary's HDR percentiles lie at or up to 0.1% above them.
    #[test]
    fn propagation_csv_is_exact_and_the_percentiles_are_close_above_it() {
        let sc = small();
        let runs = run_all(&sc, &STRATEGIES, None, 3, true);
        let cmp = Comparison { scenario: &sc, path: "small.toml".into(), runs };
        assert_eq!(report::tables::delay_precision(&cmp), report::tables::DelayPrecision::Exact);
        let dir = std::env::temp_dir().join(format!("tiersync-prop-{}", std::process::id()));
        report::write(&cmp, &dir).expect("the report is written");
        let mut csv = csv::Reader::from_path(dir.join("propagation.csv")).expect("the file");
        let mut per_strategy: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
        for row in csv.records() {
            let row = row.expect("a row");
            let delay: f64 = row[4].parse().expect("seconds");
            assert_eq!(row[4].split('.').nth(1).map(str::len), Some(3), "milliseconds");
            let n: usize = row[5].parse().expect("a count");
            per_strategy.entry(row[3].to_owned()).or_default().extend(vec![delay; n]);
        }
        for run in &cmp.runs {
            let mut exact = per_strategy.remove(&run.summary.strategy).unwrap_or_default();
            assert_eq!(exact.len(), run.detail.propagation.len());
            exact.sort_by(f64::total_cmp);
            let p = &run.summary.propagation_seconds;
            for (q, hdr) in [(0.5, p.p50), (0.9, p.p90), (0.99, p.p99), (1.0, p.max)] {
                let rank = ((q * exact.len() as f64).ceil() as usize).clamp(1, exact.len());
                let below = exact[rank.saturating_sub(2)];
                let above = exact[(rank).min(exact.len() - 1)];
                assert!(hdr >= below - 0.001, "{q}: {hdr} < {below}");
                assert!(hdr <= above * 1.001 + 0.001, "{q}: {hdr} > {above}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Tiered business-hours bytes split into checks, the first download
    /// and syncs, never more than the run's business-hours total.
    #[test]
    fn business_hours_breakdown_adds_up() {
        let sc = small();
        let runs = run_all(&sc, &[Strategy::Tiered], None, 1, true);
        let t = crate::report::series::business_traffic(&sc, &runs[0]);
        assert_eq!(t.business, runs[0].summary.wan.business_hours_bytes);
        assert!(t.checks + t.initial + t.syncs <= t.business);
        assert!(t.check_hours.iter().sum::<u64>() <= t.checks);
        // Checks every 6 h cannot all miss a 10-hour working day.
        assert!(t.checks > 0, "{t:?}");
        // Ten of the day's 24 hours at both sites (Osaka's Monday starts
        // at 23:00 UTC on Sunday, its Tuesday at 23:00 UTC on Monday).
        let share = crate::report::series::business_time_share(&sc);
        assert!((share - 10.0 / 24.0).abs() < 1e-3, "{share}");
    }
}
