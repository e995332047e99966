//! `tiersync sweep`: a scenario over a grid of settings, every point under
//! each strategy, and the trade-off between WAN bytes and delay.
//!
//! Each point is one independent run, numbered in a fixed order, that
//! writes its own one-row file `points/point-NNNN.csv`. A machine can run
//! any subset with `--point N`, and `--collect` assembles the files into
//! `sweep.csv` and the chart: that is how a sweep fans out on a batch
//! scheduler (one array index per point) without any cluster code here.
//!
//! Every point runs with the scenario's seed (or the one a `--set seed=...`
//! axis gives it), so points differ only in their settings: a difference
//! between two points is the setting's effect, not another draw of the
//! random splay and loss. Sweeping `seed` as an axis repeats every setting
//! with other seeds, to see how much of a difference is chance.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use indicatif::{MultiProgress, ProgressDrawTarget};
use tiersync_simnet::output::RunSummary;
use tiersync_simnet::scenario::Strategy;
use tiersync_simnet::world::{self, RunOptions};

use super::compare::{STRATEGIES, load};
use super::parallel;
use super::run::{StrategyArg, write_stdout};
use crate::progress::Progress;
use crate::report::charts::{self, tradeoff};

/// Arguments of `tiersync sweep`.
#[derive(Args)]
pub struct SweepArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// A setting and the values to try, comma-separated (repeatable; the
    /// grid is every combination): `--set client.poll=15m,1h,4h`. Every
    /// point uses the scenario's seed, so points differ only in their
    /// settings; `--set seed=1,2,3` repeats each setting with other seeds.
    #[arg(long = "set", value_name = "KEY=V1,V2,...", required = true, value_parser = parse_axis)]
    pub axes: Vec<(String, Vec<String>)>,
    /// Strategies to run at each setting (repeatable) [default: all three].
    #[arg(long, value_enum)]
    pub strategy: Vec<StrategyArg>,
    /// Folder for sweep.csv, the chart and points/ [default:
    /// reports/<scenario name>/sweep/].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Run only point N (from 0) and write its file; for batch schedulers.
    #[arg(long, value_name = "N", conflicts_with_all = ["list", "collect"])]
    pub point: Option<usize>,
    /// Print the points, one per line, and exit.
    #[arg(long, conflicts_with = "collect")]
    pub list: bool,
    /// Run nothing: assemble sweep.csv and the chart from points/.
    #[arg(long)]
    pub collect: bool,
    /// Runs at once [default: the cores available]; results do not depend
    /// on it.
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Splits `KEY=V1,V2`. A value cannot itself hold a comma, so a TOML array
/// cannot be swept this way.
fn parse_axis(text: &str) -> Result<(String, Vec<String>), String> {
    let (key, values) = super::compare::parse_override(text)?;
    let values: Vec<String> = values.split(',').map(|v| v.trim().to_owned()).collect();
    if values.iter().any(String::is_empty) {
        return Err(format!("an empty value in `{text}`; write KEY=V1,V2,..."));
    }
    Ok((key, values))
}

/// One point of the grid: a setting and a strategy.
#[derive(Clone, Debug)]
pub struct Point {
    /// Its number, from 0.
    pub index: usize,
    /// The overrides of its setting, one per axis.
    pub overrides: Vec<(String, String)>,
    /// The strategy.
    pub strategy: Strategy,
}

/// Every point, settings in grid order (the last `--set` varying
/// fastest), then strategies in report order.
pub fn grid(axes: &[(String, Vec<String>)], strategies: &[Strategy]) -> Vec<Point> {
    let mut settings: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for (key, values) in axes {
        settings = settings
            .into_iter()
            .flat_map(|s| {
                values.iter().map(move |v| {
                    let mut s = s.clone();
                    s.push((key.clone(), v.clone()));
                    s
                })
            })
            .collect();
    }
    let mut points = Vec::new();
    for overrides in settings {
        for &strategy in strategies {
            let index = points.len();
            points.push(Point { index, overrides: overrides.clone(), strategy });
        }
    }
    points
}

/// The header of a point file and of `sweep.csv`.
fn header(axes: &[(String, Vec<String>)]) -> Vec<String> {
    let mut h = vec!["point".to_owned(), "strategy".to_owned()];
    h.extend(axes.iter().map(|(k, _)| k.clone()));
    h.extend(
        [
            "seed",
            "wan_bytes",
            "wan_business_hours_bytes",
            "master_messages",
            "master_bytes",
            "propagation_p50_s",
            "propagation_p99_s",
            "propagation_max_s",
            "never_applied",
            "staleness_client_hours",
            "trace_hash",
        ]
        .map(str::to_owned),
    );
    h
}

/// A point's row: the same numbers as `tiersync run --json` gives.
fn row(p: &Point, s: &RunSummary) -> Vec<String> {
    let q = &s.propagation_seconds;
    let mut r = vec![p.index.to_string(), s.strategy.clone()];
    r.extend(p.overrides.iter().map(|(_, v)| v.clone()));
    r.extend([
        s.seed.to_string(),
        s.wan.bytes.to_string(),
        s.wan.business_hours_bytes.to_string(),
        (s.master.messages_in + s.master.messages_out).to_string(),
        (s.master.bytes_in + s.master.bytes_out).to_string(),
        format!("{:.3}", q.p50),
        format!("{:.3}", q.p99),
        format!("{:.3}", q.max),
        q.never_applied.to_string(),
        format!("{:.3}", s.staleness_client_hours),
        s.trace_hash.clone(),
    ]);
    r
}

fn point_path(dir: &Path, index: usize) -> PathBuf {
    dir.join("points").join(format!("point-{index:04}.csv"))
}

/// Runs one point and writes its file.
fn run_point(
    args: &SweepArgs,
    dir: &Path,
    p: &Point,
    multi: &MultiProgress,
) -> anyhow::Result<RunSummary> {
    let sc = load(&args.scenario, &p.overrides)
        .with_context(|| format!("point {} ({})", p.index, label(p)))?;
    let opts =
        RunOptions { strategy: p.strategy, seed: None, keep_detail: false, single_thread: false };
    let name = format!("{} #{}", p.strategy.name(), p.index);
    let mut progress = Progress::new(&name, sc.start, sc.end(), args.quiet).in_group(multi);
    let out = world::run(&sc, &opts, &mut progress);
    let _ = progress.finish();

    let path = point_path(dir, p.index);
    let mut w = csv::Writer::from_path(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    w.write_record(header(&args.axes))?;
    w.write_record(row(p, &out.summary))?;
    w.flush()?;
    Ok(out.summary)
}

/// `key=value` pairs of a point's setting.
fn label(p: &Point) -> String {
    p.overrides.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

/// Runs the command.
pub fn run(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let sc = load(&args.scenario, &[])?;
    let strategies: Vec<Strategy> = if args.strategy.is_empty() {
        STRATEGIES.to_vec()
    } else {
        args.strategy.iter().map(|&s| s.into()).collect()
    };
    let points = grid(&args.axes, &strategies);
    let dir = args.out.clone().unwrap_or_else(|| Path::new("reports").join(&sc.name).join("sweep"));

    // Every setting must load before anything runs or is listed, so a
    // typo in the last value does not surface after hours of work, nor a
    // misspelt key in an array job's list.
    for p in points.iter().filter(|p| p.index % strategies.len() == 0) {
        load(&args.scenario, &p.overrides).with_context(|| format!("setting {}", label(p)))?;
    }

    // Listing: what an array job needs to know.
    if args.list {
        let mut text = String::new();
        for p in &points {
            text += &format!("{}\t{}\t{}\n", p.index, p.strategy.name(), label(p));
        }
        write_stdout(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
    let points_dir = dir.join("points");
    std::fs::create_dir_all(&points_dir)
        .with_context(|| format!("cannot create {}", points_dir.display()))?;
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());

    // One point, for a batch scheduler's array index.
    if let Some(n) = args.point {
        let Some(p) = points.get(n) else {
            anyhow::bail!(
                "point {n} does not exist: the grid has points 0 to {}",
                points.len() - 1
            );
        };
        let s = run_point(&args, &dir, p, &multi)?;
        let text = format!(
            "point {n} ({} {}): trace hash {}; wrote {}\n",
            p.strategy.name(),
            label(p),
            s.trace_hash,
            point_path(&dir, n).display()
        );
        write_stdout(&text)?;
        return Ok(ExitCode::SUCCESS);
    }

    // The whole grid here, unless the points were run elsewhere.
    if !args.collect {
        let jobs = args.jobs.unwrap_or_else(parallel::default_jobs);
        let results =
            parallel::map(points.len(), jobs, |i| run_point(&args, &dir, &points[i], &multi));
        for r in results {
            r?;
        }
    }
    collect(&args, &sc.name, &dir, &points)?;
    write_stdout(&format!(
        "{} points; wrote {} and {}\n",
        points.len(),
        dir.join("sweep.csv").display(),
        dir.join("tradeoff.png").display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Reads every point file into `sweep.csv`, in point order, and draws the
/// trade-off chart.
fn collect(args: &SweepArgs, name: &str, dir: &Path, points: &[Point]) -> anyhow::Result<()> {
    let head = header(&args.axes);
    let mut w = csv::Writer::from_path(dir.join("sweep.csv"))?;
    w.write_record(&head)?;
    let col = |n: &str| head.iter().position(|h| h == n).unwrap_or(0);
    let (wan, p99) = (col("wan_bytes"), col("propagation_p99_s"));
    let mut chart_points = Vec::new();
    let mut missing = Vec::new();
    for p in points {
        let path = point_path(dir, p.index);
        let Ok(mut r) = csv::Reader::from_path(&path) else {
            missing.push(p.index);
            continue;
        };
        let header_ok = r.headers().map(|h| h.iter().eq(head.iter().map(String::as_str)));
        anyhow::ensure!(
            header_ok.unwrap_or(false),
            "{} has other columns than this sweep: was it run with other --set keys?",
            path.display()
        );
        let Some(rec) = r.records().next().transpose()? else {
            missing.push(p.index);
            continue;
        };
        w.write_record(&rec)?;
        chart_points.push(tradeoff::TradePoint {
            strategy: p.strategy.name().to_owned(),
            label: p.overrides.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(" "),
            wan_bytes: rec.get(wan).and_then(|v| v.parse().ok()).unwrap_or(0.0),
            p99_seconds: rec.get(p99).and_then(|v| v.parse().ok()).unwrap_or(0.0),
        });
    }
    w.flush()?;
    anyhow::ensure!(
        missing.is_empty(),
        "points not run yet: {missing:?}; run them with --point N, then --collect again"
    );
    let keys: Vec<&str> = args.axes.iter().map(|(k, _)| k.as_str()).collect();
    let chart = tradeoff::TradeOff {
        title: format!("{name}: WAN bytes against p99 delay, by {}", keys.join(", ")),
        points: chart_points,
    };
    charts::render(&chart, dir, "tradeoff")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_varies_the_last_axis_fastest_then_strategies() {
        let axes = vec![
            ("client.poll".to_owned(), vec!["15m".to_owned(), "1h".to_owned()]),
            ("seed".to_owned(), vec!["1".to_owned(), "2".to_owned()]),
        ];
        let g = grid(&axes, &[Strategy::Flat, Strategy::Tiered]);
        assert_eq!(g.len(), 8);
        assert_eq!(
            g[0].overrides,
            [("client.poll".into(), "15m".into()), ("seed".into(), "1".into())]
        );
        assert_eq!(g[1].strategy, Strategy::Tiered);
        assert_eq!(g[2].overrides[1].1, "2");
        assert_eq!(g[4].overrides[0].1, "1h");
        assert!(g.iter().enumerate().all(|(i, p)| p.index == i));
    }

    #[test]
    fn axes_parse_and_refuse_empty_values() {
        assert_eq!(parse_axis("client.poll=15m,1h").unwrap().1, ["15m", "1h"]);
        assert!(parse_axis("client.poll=15m,,1h").is_err());
        assert!(parse_axis("=1").is_err());
    }
}
