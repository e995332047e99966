//! Chart 3: one UTC day, one row per site: the sync window each local
//! server keeps in its own time zone, and when its syncs really started.
//!
//! This is the patent's "several points in a 24-hour period": a night
//! window in every zone puts the master's work at different UTC hours.
//! The lighter checks between syncs are marked too, filled when they
//! brought new policy revisions (and so carried content over the WAN),
//! with each site's business hours behind them: that is where a check
//! that finds new content puts its bytes in the working day.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use plotters::coord::Shift;
use plotters::prelude::*;
use tiersync_engine::Time;

use super::{AXIS_PX, DrawResult, Figure, LABEL_PX, Mark, TITLE_PX, font, strategy_color};
use crate::report::Comparison;
use tiersync_simnet::output::FetchKind;

/// The colour of check markers: apart from every strategy's colour.
const CHECK: RGBColor = RGBColor(148, 103, 189);
/// The first download of a server that holds nothing.
const INITIAL: RGBColor = RGBColor(60, 60, 60);
/// The sync window band.
const WINDOW: RGBAColor = RGBAColor(120, 170, 220, 0.45);
/// Business hours: an amber edge around the working day, no fill.
const BUSINESS: RGBColor = RGBColor(191, 144, 0);

/// Half the height of a row's band, in rows.
const HALF: f64 = 0.38;

/// One site's row.
struct Row {
    label: String,
    /// Window spans in UTC hours of day, one or two per day of the run; a
    /// daylight-saving change shows as two shifted spans.
    windows: Vec<(f64, f64)>,
    /// Business hours in UTC hours of day (local working window placed
    /// with real time-zone rules, every day of the run folded together).
    business: Vec<(f64, f64)>,
    /// Sync starts: (UTC hour of day, day index from the start).
    syncs: Vec<(f64, usize)>,
    /// Checks between syncs: (UTC hour, day index, brought new revisions).
    checks: Vec<(f64, usize, bool)>,
    /// First downloads of the whole policy set: (UTC hour, day index).
    initial: Vec<(f64, usize)>,
}

/// The chart.
pub struct Timeline {
    title: String,
    rows: Vec<Row>,
    days: usize,
}

impl Timeline {
    /// The chart of `cmp`; syncs come from its `tiered` run.
    pub fn new(cmp: &Comparison<'_>) -> Timeline {
        let sc = cmp.scenario;
        let start = sc.start.as_secs();
        let end = sc.end().as_secs();
        let days = ((end - start) as f64 / 86_400.0).ceil() as usize;
        let tiered = cmp.runs.iter().find(|r| r.summary.strategy == "tiered");
        let w = sc.local.sync_window;
        let (w_start, w_end) = (i64::from(w.start_minute()), i64::from(w.end_minute()));
        let w_len = if w_end > w_start { w_end - w_start } else { w_end + 1440 - w_start };
        let bw = sc.business_hours.window;
        let (b_start, b_end) = (i64::from(bw.start_minute()), i64::from(bw.end_minute()));
        let b_len = if b_end > b_start { b_end - b_start } else { b_end + 1440 - b_start };

        let mut rows = Vec::new();
        for (i, site) in sc.sites.iter().enumerate() {
            if !sc.runs_local_server(i) {
                continue;
            }
            let mut windows = Vec::new();
            for (from, to) in local_windows(&site.timezone, start, end, w_start, w_len) {
                split_utc_day(from, to, &mut windows);
            }
            windows.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            windows.dedup();
            let mut business = Vec::new();
            for (from, to) in local_windows(&site.timezone, start, end, b_start, b_len) {
                split_utc_day(from, to, &mut business);
            }
            business.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            business.dedup();
            let clock = |t: f64| {
                let secs = t.floor() as i64;
                let day = ((secs - start) / 86_400).max(0) as usize;
                (secs.rem_euclid(86_400) as f64 / 3600.0, day)
            };
            let syncs = tiered
                .map(|r| {
                    r.detail.syncs.iter().filter(|(s, _)| *s == i).map(|&(_, t)| clock(t)).collect()
                })
                .unwrap_or_default();
            let fetches = || tiered.into_iter().flat_map(|r| &r.detail.fetches);
            let checks = fetches()
                .filter(|f| f.site == i && f.kind == FetchKind::Check)
                .map(|f| {
                    let (h, d) = clock(f.at_unix);
                    (h, d, f.revisions > 0)
                })
                .collect();
            let initial = fetches()
                .filter(|f| f.site == i && f.kind == FetchKind::Initial)
                .map(|f| clock(f.at_unix))
                .collect();
            rows.push(Row { label: site.name.clone(), windows, business, syncs, checks, initial });
        }
        Timeline {
            title: format!(
                "{}: sync window {} local time, as UTC, and the syncs and checks that ran \
                 (tiered)",
                sc.name, w
            ),
            rows,
            days,
        }
    }
}

/// Every window of the run at a site, as Unix seconds `[from, to)`,
/// clipped to `[start, end)`. Windows are placed on each local date with
/// real time-zone rules.
fn local_windows(tz: &TimeZone, start: i64, end: i64, w_start: i64, w_len: i64) -> Vec<(i64, i64)> {
    let first = tz.to_datetime(Time::from_secs(start).to_jiff()).date();
    let mut out = Vec::new();
    let mut day: Date = first.yesterday().unwrap_or(first);
    loop {
        let at = day.at((w_start / 60) as i8, (w_start % 60) as i8, 0, 0);
        // A window starting in a skipped hour begins at the first instant
        // after it, as a local cron would fire.
        let Ok(ts) = tz.to_timestamp(at) else { break };
        let from = ts.as_second();
        if from >= end {
            break;
        }
        let to = from + w_len * 60;
        if to > start {
            out.push((from.max(start), to.min(end)));
        }
        match day.tomorrow() {
            Ok(d) => day = d,
            Err(_) => break,
        }
    }
    out
}

/// Adds `[from, to)` as UTC hours of day, split at midnight.
fn split_utc_day(from: i64, to: i64, out: &mut Vec<(f64, f64)>) {
    let h = |t: i64| t.rem_euclid(86_400) as f64 / 3600.0;
    let (a, b) = (h(from), h(to));
    if to - from >= 86_400 {
        out.push((0.0, 24.0));
    } else if b > a || (b == 0.0 && to > from) {
        out.push((a, if b == 0.0 { 24.0 } else { b }));
    } else if to > from {
        out.push((a, 24.0));
        out.push((0.0, b));
    }
}

impl Timeline {
    /// Height of a row, pixels: room for one marker height per day.
    fn row_px(&self) -> u32 {
        (40 + 10 * self.days as u32).clamp(80, 160)
    }
}

impl Figure for Timeline {
    fn size(&self) -> (u32, u32) {
        (1400, 250 + self.row_px() * self.rows.len().max(1) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let n = self.rows.len().max(1);
        let (plot, key) = root.split_vertically(root.dim_in_pixel().1 - 100);
        let labels: Vec<String> = self.rows.iter().map(|r| r.label.clone()).collect();
        let mut chart = ChartBuilder::on(&plot)
            .caption(&self.title, font(TITLE_PX - 2))
            .margin(18)
            .x_label_area_size(60)
            .y_label_area_size(170)
            .build_cartesian_2d(0f64..24f64, -0.5f64..(n as f64 - 0.5))?;
        chart
            .configure_mesh()
            .x_desc("hour of day, UTC")
            .y_desc("site")
            .x_labels(13)
            .x_label_formatter(&|x| format!("{:02}:00", *x as u32))
            .y_labels(n + 1)
            .y_label_formatter(&|y| {
                let k = y.round();
                if (y - k).abs() < 1e-6 && k >= 0.0 {
                    labels.get(k as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .disable_y_mesh()
            .light_line_style(WHITE)
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(AXIS_PX))
            .draw()?;

        // Windows: translucent, so where daylight saving moved the window
        // the overlap is darker and the shifted part lighter.
        let dot = strategy_color("tiered");
        let span = (self.days.max(2) - 1) as f64;
        let height = |day: usize| -HALF * 0.8 + 1.6 * HALF * (day as f64 / span);
        for (k, row) in self.rows.iter().enumerate() {
            let y = k as f64;
            chart.draw_series(
                row.windows
                    .iter()
                    .map(|&(a, b)| Rectangle::new([(a, y - HALF), (b, y + HALF)], WINDOW.filled())),
            )?;
            chart.draw_series(row.business.iter().map(|&(a, b)| {
                Rectangle::new(
                    [(a, y - HALF - 0.04), (b, y + HALF + 0.04)],
                    BUSINESS.stroke_width(2),
                )
            }))?;

            // One marker per sync, check or first download; each day of
            // the run gets its own height in the band, first day at the
            // bottom.
            let tri = || super::triangle_points(8).to_vec();
            chart.draw_series(row.checks.iter().filter(|c| !c.2).map(|&(h, day, _)| {
                EmptyElement::at((h, y + height(day)))
                    + PathElement::new(tri(), CHECK.stroke_width(2))
            }))?;
            chart.draw_series(row.checks.iter().filter(|c| c.2).map(|&(h, day, _)| {
                EmptyElement::at((h, y + height(day))) + Polygon::new(tri(), CHECK.filled())
            }))?;
            chart.draw_series(row.initial.iter().map(|&(h, day)| {
                EmptyElement::at((h, y + height(day)))
                    + Rectangle::new([(-6, -6), (6, 6)], INITIAL.filled())
            }))?;
            chart.draw_series(
                row.syncs
                    .iter()
                    .map(|&(h, day)| Circle::new((h, y + height(day)), 5, dot.filled())),
            )?;
        }

        // The legend below the axis, in two rows; a kind of check that
        // never happened (a scenario without checks) has no entry.
        let happened =
            |found: bool| self.rows.iter().any(|r| r.checks.iter().any(|c| c.2 == found));
        let mut items = vec![
            (Mark::Fill(WINDOW), "sync window (local time placed in UTC)".to_owned()),
            (Mark::Band(RGBAColor(255, 255, 255, 0.0), BUSINESS), "business hours".to_owned()),
            (Mark::Dot(dot), "sync started".to_owned()),
        ];
        for (found, text) in
            [(true, "check that brought new policies"), (false, "check that found nothing new")]
        {
            if happened(found) {
                items.push((Mark::Triangle(CHECK, found), text.to_owned()));
            }
        }
        items.push((Mark::Square(INITIAL), "first download of the whole policy set".to_owned()));
        super::draw_legend(&key, (190, 0), 1180, &items)?;
        let note = "one height per day of the run, first day at the bottom";
        key.draw(&Text::new(note, (190, 72), font(LABEL_PX - 3).color(&RGBColor(90, 90, 90))))?;
        Ok(())
    }
}
