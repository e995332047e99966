//! The report's CSV files, and the summary rows `report.md` shares with
//! `summary.csv`.
//!
//! Rows are sorted in a fixed order (strategy as compared, then the
//! scenario's own order of sites and links) and floats have a fixed number
//! of decimals, so that regenerating a report gives byte-identical files
//! that diff cleanly. Integers are the run's own counts, equal to the JSON
//! of `tiersync run --json`.

use std::path::Path;

use anyhow::Context as _;
use tiersync_simnet::output::{RunOutput, RunSummary};

use super::Comparison;
use super::series::{self, HOUR_SECONDS};

/// Columns of `summary.csv`, in order; `report.md`'s table has the same.
pub const SUMMARY_COLUMNS: [&str; 18] = [
    "strategy",
    "wan_bytes",
    "wan_business_hours_bytes",
    "wan_peak_utilization",
    "master_bytes_in",
    "master_bytes_out",
    "master_messages_in",
    "master_messages_out",
    "propagation_p50_s",
    "propagation_p90_s",
    "propagation_p99_s",
    "propagation_max_s",
    "never_applied",
    "staleness_client_hours",
    "wan_bytes_reduction_vs_flat",
    "master_messages_reduction_vs_flat",
    "seed",
    "trace_hash",
];

/// How many times fewer `ours` is than `flat`, with one decimal; empty
/// when either is zero, where a factor means nothing.
pub fn reduction(flat: u64, ours: u64) -> Option<f64> {
    (flat > 0 && ours > 0).then(|| flat as f64 / ours as f64)
}

/// The master's messages, both directions.
pub fn master_messages(s: &RunSummary) -> u64 {
    s.master.messages_in + s.master.messages_out
}

/// The `flat` run of a comparison, against which factors are taken.
pub fn flat_of<'a>(cmp: &'a Comparison<'_>) -> Option<&'a RunSummary> {
    cmp.runs.iter().map(|r| &r.summary).find(|s| s.strategy == "flat")
}

/// The values of one `summary.csv` row, formatted.
pub fn summary_row(s: &RunSummary, flat: Option<&RunSummary>) -> Vec<String> {
    let p = &s.propagation_seconds;
    let factor = |f: Option<f64>| f.map(|x| format!("{x:.1}")).unwrap_or_default();
    vec![
        s.strategy.clone(),
        s.wan.bytes.to_string(),
        s.wan.business_hours_bytes.to_string(),
        format!("{:.6}", s.wan.peak_utilization),
        s.master.bytes_in.to_string(),
        s.master.bytes_out.to_string(),
        s.master.messages_in.to_string(),
        s.master.messages_out.to_string(),
        format!("{:.3}", p.p50),
        format!("{:.3}", p.p90),
        format!("{:.3}", p.p99),
        format!("{:.3}", p.max),
        p.never_applied.to_string(),
        format!("{:.3}", s.staleness_client_hours),
        factor(flat.and_then(|f| reduction(f.wan.bytes, s.wan.bytes))),
        factor(flat.and_then(|f| reduction(master_messages(f), master_messages(s)))),
        s.seed.to_string(),
        s.trace_hash.clone(),
    ]
}

/// Columns of `kinds.csv`, in order.
pub const KINDS_COLUMNS: [&str; 5] = ["bucket_start_utc", "strategy", "kind", "bytes", "messages"];

/// Columns of `nodes.csv`, in order.
pub const NODES_COLUMNS: [&str; 10] = [
    "bucket_start_utc",
    "strategy",
    "node",
    "role",
    "site",
    "platform",
    "bytes_in",
    "bytes_out",
    "messages_in",
    "messages_out",
];

/// Writes the six CSV files into `dir`.
pub fn write_csvs(cmp: &Comparison<'_>, dir: &Path) -> anyhow::Result<()> {
    write_summary(cmp, &dir.join("summary.csv"))?;
    write_timeseries(cmp, &dir.join("timeseries.csv"))?;
    write_kinds(cmp, &dir.join("kinds.csv"))?;
    write_nodes(cmp, &dir.join("nodes.csv"))?;
    write_propagation(cmp, &dir.join("propagation.csv"))?;
    write_sites(cmp, &dir.join("sites.csv"))
}

fn writer(path: &Path) -> anyhow::Result<csv::Writer<std::fs::File>> {
    csv::Writer::from_path(path).with_context(|| format!("cannot create {}", path.display()))
}

/// One row per strategy, the table of `report.md`.
fn write_summary(cmp: &Comparison<'_>, path: &Path) -> anyhow::Result<()> {
    let mut w = writer(path)?;
    w.write_record(SUMMARY_COLUMNS)?;
    let flat = flat_of(cmp);
    for r in &cmp.runs {
        w.write_record(summary_row(&r.summary, flat))?;
    }
    w.flush()?;
    Ok(())
}

/// Writes hourly rows, each run's sorted by hour, hour first and then
/// strategy in comparison order, so that one hour's rows sit together:
/// each row is its hour's start (UTC), the strategy, then what `values`
/// gives for it.
fn write_hourly<R>(
    path: &Path,
    header: &[&str],
    cmp: &Comparison<'_>,
    per_run: &[Vec<R>],
    hour_of: impl Fn(&R) -> usize,
    values: impl Fn(&RunOutput, &R) -> Vec<String>,
) -> anyhow::Result<()> {
    let mut w = writer(path)?;
    w.write_record(header)?;
    let start = cmp.scenario.start.as_secs();
    let mut cursor = vec![0usize; cmp.runs.len()];
    for hour in 0..series::hours(cmp.scenario) {
        let at = tiersync_engine::Time::from_secs(start + (hour as u64 * HOUR_SECONDS) as i64);
        let at = at.to_string();
        for (k, run) in cmp.runs.iter().enumerate() {
            let rows = &per_run[k];
            while cursor[k] < rows.len() && hour_of(&rows[cursor[k]]) == hour {
                let mut record = vec![at.clone(), run.summary.strategy.clone()];
                record.extend(values(run, &rows[cursor[k]]));
                w.write_record(&record)?;
                cursor[k] += 1;
            }
        }
    }
    w.flush()?;
    Ok(())
}

/// Traffic per hour, strategy, link and direction; empty hours left out.
fn write_timeseries(cmp: &Comparison<'_>, path: &Path) -> anyhow::Result<()> {
    let per_run: Vec<Vec<series::HourRow>> =
        cmp.runs.iter().map(|r| series::link_hours(cmp.scenario, r)).collect();
    let header = ["bucket_start_utc", "strategy", "link", "direction", "bytes", "messages"];
    write_hourly(
        path,
        &header,
        cmp,
        &per_run,
        |r| r.hour,
        |run, row| {
            vec![
                run.detail.links[row.link as usize].name.clone(),
                if row.dir == 0 { "down" } else { "up" }.to_owned(),
                row.bytes.to_string(),
                row.messages.to_string(),
            ]
        },
    )
}

/// Traffic per hour, strategy and message kind: bytes on the wire and
/// messages sent, as the JSON's `by_kind` counts them; hours in which a
/// kind was not sent left out.
fn write_kinds(cmp: &Comparison<'_>, path: &Path) -> anyhow::Result<()> {
    let per_run: Vec<Vec<series::KindHourRow>> =
        cmp.runs.iter().map(|r| series::kind_hours(cmp.scenario, r)).collect();
    write_hourly(
        path,
        &KINDS_COLUMNS,
        cmp,
        &per_run,
        |r| r.hour,
        |_, row| {
            vec![row.kind.as_str().to_owned(), row.bytes.to_string(), row.messages.to_string()]
        },
    )
}

/// Traffic per hour, strategy and node (the master, each local server,
/// each client group): bytes and messages in and out, as the JSON's
/// `servers` and `client_groups` count them; hours in which a node neither
/// sent nor received left out.
fn write_nodes(cmp: &Comparison<'_>, path: &Path) -> anyhow::Result<()> {
    let per_run: Vec<Vec<series::NodeHourRow>> =
        cmp.runs.iter().map(|r| series::node_hours(cmp.scenario, r)).collect();
    write_hourly(
        path,
        &NODES_COLUMNS,
        cmp,
        &per_run,
        |r| r.hour,
        |run, row| {
            let node = &run.detail.nodes[row.node as usize];
            vec![
                node.name.clone(),
                node.role.clone(),
                node.site.clone(),
                node.platform.clone(),
                row.bytes_in.to_string(),
                row.bytes_out.to_string(),
                row.messages_in.to_string(),
                row.messages_out.to_string(),
            ]
        },
    )
}

/// Most rows `propagation.csv` holds with exact delays: about 20 MB at
/// some 36 bytes a row (follow-the-sun's 50,000 clients and five changes
/// under three strategies make some 335,000). A comparison with more
/// distinct (change, site, platform, delay) rows is written in one-second
/// bins instead.
pub const EXACT_ROWS_MAX: usize = 550_000;

/// How `propagation.csv` gives delays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelayPrecision {
    /// To the millisecond, as measured: `delay_seconds` has three
    /// decimals and `clients` counts the pairs with exactly that delay.
    Exact,
    /// In one-second bins: `delay_seconds` is a whole second, the start
    /// of the bin, and `clients` counts the pairs in it.
    Seconds,
}

impl DelayPrecision {
    /// Width of a delay bin, milliseconds.
    fn bin_ms(self) -> u64 {
        match self {
            DelayPrecision::Exact => 1,
            DelayPrecision::Seconds => 1000,
        }
    }

    /// A delay as written in the file.
    fn text(self, bin_start_ms: u64) -> String {
        match self {
            DelayPrecision::Exact => {
                format!("{}.{:03}", bin_start_ms / 1000, bin_start_ms % 1000)
            }
            DelayPrecision::Seconds => (bin_start_ms / 1000).to_string(),
        }
    }
}

/// Applied (change, client) pairs of one run grouped by change, site,
/// platform and delay bin, with their number, in that order.
fn delay_rows(
    run: &RunOutput,
    bin_ms: u64,
) -> std::collections::BTreeMap<(u16, u16, u8, u64), u64> {
    let mut rows: std::collections::BTreeMap<(u16, u16, u8, u64), u64> = Default::default();
    for r in &run.detail.propagation {
        *rows.entry((r.change, r.site, r.platform, r.delay_ms / bin_ms * bin_ms)).or_default() += 1;
    }
    rows
}

/// Exact delays when the file stays under [`EXACT_ROWS_MAX`] rows, else
/// one-second bins; the same for every run of the comparison.
pub fn delay_precision(cmp: &Comparison<'_>) -> DelayPrecision {
    let exact: usize = cmp.runs.iter().map(|r| delay_rows(r, 1).len()).sum();
    if exact <= EXACT_ROWS_MAX { DelayPrecision::Exact } else { DelayPrecision::Seconds }
}

/// Applied (change, affected client) pairs: per change, client platform,
/// site, strategy and delay, how many pairs (`clients`) applied the change
/// with that delay, at the precision [`delay_precision`] picks.
fn write_propagation(cmp: &Comparison<'_>, path: &Path) -> anyhow::Result<()> {
    let precision = delay_precision(cmp);
    let mut w = writer(path)?;
    w.write_record(["change", "platform", "site", "strategy", "delay_seconds", "clients"])?;
    for run in &cmp.runs {
        for ((change, site, platform_index, bin), n) in delay_rows(run, precision.bin_ms()) {
            w.write_record([
                (u32::from(change) + 1).to_string().as_str(),
                platform(run, platform_index),
                &cmp.scenario.sites[site as usize].name,
                &run.summary.strategy,
                &precision.text(bin),
                &n.to_string(),
            ])?;
        }
    }
    w.flush()?;
    Ok(())
}

fn platform(run: &RunOutput, index: u8) -> &str {
    run.platforms.get(index as usize).map(String::as_str).unwrap_or("?")
}

/// Per site (in file order) and strategy: the `sites` part of the JSON.
fn write_sites(cmp: &Comparison<'_>, path: &Path) -> anyhow::Result<()> {
    let mut w = writer(path)?;
    w.write_record([
        "site",
        "strategy",
        "timezone",
        "clients",
        "wan_bytes_up",
        "wan_bytes_down",
        "business_hours_bytes",
        "peak_utilization",
        "syncs",
        "master_view_age_hours_mean",
        "master_view_age_hours_end",
    ])?;
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_default();
    for i in 0..cmp.scenario.sites.len() {
        for run in &cmp.runs {
            let Some(s) = run.summary.sites.get(i) else { continue };
            w.write_record([
                s.site.as_str(),
                &run.summary.strategy,
                &s.timezone,
                &s.clients.to_string(),
                &s.wan_bytes_up.to_string(),
                &s.wan_bytes_down.to_string(),
                &s.business_hours_bytes.to_string(),
                &format!("{:.6}", s.peak_utilization),
                &s.syncs.to_string(),
                &opt(s.master_view_age_hours_mean),
                &opt(s.master_view_age_hours_end),
            ])?;
        }
    }
    w.flush()?;
    Ok(())
}
