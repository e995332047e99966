//! The report of a comparison: `report.md`, CSV files and charts in one
//! folder.
//!
//! # Layout
//!
//! - [`series`]: hourly and local-day numbers derived from a run's detail.
//! - [`tables`]: the CSV files and the summary row they share with the table.
//! - [`markdown`] writes `report.md`.
//! - [`charts`]: one module per chart family, each drawn as PNG and SVG.

pub mod charts;
pub mod markdown;
pub mod series;
pub mod tables;

use std::path::Path;

use anyhow::Context as _;
use tiersync_simnet::output::RunOutput;
use tiersync_simnet::scenario::Scenario;

/// Runs of one scenario and seed under several strategies, in the order
/// they are reported (flat, flat-conditional, tiered).
pub struct Comparison<'a> {
    /// The scenario the runs share.
    pub scenario: &'a Scenario,
    /// The scenario file as the user named it, for the reproduce section.
    pub path: String,
    /// One run per strategy, each with its detail kept.
    pub runs: Vec<RunOutput>,
}

/// Writes the whole report into `dir`, creating it if needed.
pub fn write(cmp: &Comparison<'_>, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;

    // The CSV files first: they are the numbers everything else shows.
    tables::write_csvs(cmp, dir)?;

    // Then the charts, in report order.
    use charts::{break_even, delay, local_day, render, timeline, traffic};
    render(&traffic::WanPerHour::new(cmp), dir, markdown::CHARTS[0].0)?;
    render(&local_day::LocalDayChart::new(cmp), dir, markdown::CHARTS[1].0)?;
    render(&timeline::Timeline::new(cmp), dir, markdown::CHARTS[2].0)?;
    render(&delay::DelayCdf::new(cmp), dir, markdown::CHARTS[3].0)?;
    render(&traffic::MasterLoad::new(cmp), dir, markdown::CHARTS[4].0)?;
    render(&break_even::BreakEvenChart::new(cmp), dir, markdown::CHARTS[5].0)?;

    // And the text that ties them together.
    let md = dir.join("report.md");
    std::fs::write(&md, markdown::report(cmp))
        .with_context(|| format!("cannot write {}", md.display()))
}
