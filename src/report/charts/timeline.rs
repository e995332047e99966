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
/// Grey of the notes under the legend.
const NOTE: RGBColor = RGBColor(90, 90, 90);

/// Room in a row above and below its days, pixels.
const ROW_PAD_PX: u32 = 30;
/// Room on the right of the plot, pixels: half the "24:00" tick label
/// centred on the frame, and a margin.
const RIGHT_PX: u32 = 48;
/// Height of the legend under the plot, pixels, without its notes.
const KEY_PX: u32 = 72;
/// Height of a line of the notes under the legend, pixels.
const NOTE_LINE_PX: u32 = 20;
/// Characters in a line of the notes, at most: about the legend's width.
const NOTE_CHARS: usize = 135;

/// A span of UTC hours of day `[from, to)` that holds on the days
/// `first..=last` of the run (counted from its start, as markers are).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Span {
    from: f64,
    to: f64,
    first: usize,
    last: usize,
}

/// One site's row.
struct Row {
    label: String,
    /// Sync window spans. A daylight-saving change moves the window by an
    /// hour in UTC, so the days before and after the change get a span
    /// each, at the heights of their days.
    windows: Vec<Span>,
    /// Business hours (the local working window placed in UTC with real
    /// time-zone rules), spans as for the window.
    business: Vec<Span>,
    /// Sync starts: (UTC hour of day, day index from the start).
    syncs: Vec<(f64, usize)>,
    /// Checks between syncs: (UTC hour, day index, brought new revisions).
    checks: Vec<(f64, usize, bool)>,
    /// First downloads of the whole policy set: (UTC hour, day index).
    initial: Vec<(f64, usize)>,
    /// The site's clock change during the run, if any.
    change: Option<ClockChange>,
}

/// A change of a site's UTC offset during the run (daylight saving time
/// starting or ending).
#[derive(Clone, Debug, PartialEq)]
pub struct ClockChange {
    /// The site.
    pub site: String,
    /// The local date of the change, as "8 March".
    pub date: String,
    /// Whether the clocks went forward (daylight saving time started).
    pub forward: bool,
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
        let days = ((end - start) as f64 / 86_400.0).ceil().max(1.0) as usize;
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
            let tz = &site.timezone;
            let windows = spans(&local_windows(tz, start, end, w_start, w_len), start, days);
            let business = spans(&local_windows(tz, start, end, b_start, b_len), start, days);
            let clock = |t: f64| {
                let secs = t.floor() as i64;
                let day = ((secs - start) / 86_400).clamp(0, days as i64 - 1) as usize;
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
            let change = clock_change(tz, start, end).map(|(date, forward)| ClockChange {
                site: site.name.clone(),
                date,
                forward,
            });
            rows.push(Row {
                label: site.name.clone(),
                windows,
                business,
                syncs,
                checks,
                initial,
                change,
            });
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

    /// The sites whose clocks change during the run, in row order.
    pub fn clock_changes(&self) -> Vec<ClockChange> {
        self.rows.iter().filter_map(|r| r.change.clone()).collect()
    }
}

/// The first change of `tz`'s UTC offset in `(start, end)`: its local date
/// and whether the clocks went forward.
fn clock_change(tz: &TimeZone, start: i64, end: i64) -> Option<(String, bool)> {
    let offset = |t: i64| tz.to_offset(Time::from_secs(t).to_jiff()).seconds();
    let before = offset(start);
    let at = (start..end).step_by(900).find(|t| offset(*t) != before)?;
    let date = tz.to_datetime(Time::from_secs(at).to_jiff()).date();
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let month = MONTHS[(date.month() as usize).clamp(1, 12) - 1];
    Some((format!("{} {month}", date.day()), offset(at) > before))
}

/// `windows` (Unix seconds `[from, to)`) as spans of UTC hours of day, cut
/// at UTC midnight and where a day of the run begins, each on the day of
/// the run it falls in; a span that holds on consecutive days is one span.
fn spans(windows: &[(i64, i64)], start: i64, days: usize) -> Vec<Span> {
    let mut pieces = Vec::new();
    for &(from, to) in windows {
        let mut t = from;
        while t < to {
            let midnight = (t.div_euclid(86_400) + 1) * 86_400;
            let day = (t - start).div_euclid(86_400);
            let next_day = start + (day + 1) * 86_400;
            let u = to.min(midnight).min(next_day);
            let hour = |x: i64| x.rem_euclid(86_400) as f64 / 3600.0;
            let until = if u == midnight { 24.0 } else { hour(u) };
            if day >= 0 && (day as usize) < days {
                pieces.push((hour(t), until, day as usize));
            }
            t = u;
        }
    }
    pieces.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let mut out: Vec<Span> = Vec::new();
    for (from, to, day) in pieces {
        match out.last_mut() {
            Some(s) if s.from == from && s.to == to && day <= s.last + 1 => s.last = day,
            _ => out.push(Span { from, to, first: day, last: day }),
        }
    }
    out
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

impl Timeline {
    /// Pixels between the markers of two consecutive days of a row: room
    /// for a marker and a gap, so that markers of consecutive days never
    /// touch and a filled triangle stands out among hollow ones.
    fn pitch_px(&self) -> u32 {
        if self.days <= 10 { 17 } else { (170 / self.days as u32).max(6) }
    }

    /// Height of a row, pixels: one pitch per day and some room.
    fn row_px(&self) -> u32 {
        self.pitch_px() * self.days as u32 + ROW_PAD_PX
    }

    /// Half the height of a dot or square marker, pixels: a third of the
    /// pitch, whose triangles are a little taller (see `draw`).
    fn marker_px(&self) -> i32 {
        (self.pitch_px() as i32 / 3).clamp(2, 5)
    }

    /// Height of the legend and its notes, pixels.
    fn key_px(&self) -> u32 {
        KEY_PX + NOTE_LINE_PX * self.note_lines().len() as u32 + 8
    }

    /// The notes under the legend, wrapped in lines.
    fn note_lines(&self) -> Vec<String> {
        self.notes().iter().flat_map(|n| wrap(n, NOTE_CHARS)).collect()
    }

    /// The notes under the legend.
    fn notes(&self) -> Vec<String> {
        let mut notes = vec![
            "Each day of the run has its own height in a row, first day at the bottom; \
             bands are drawn at the heights of the days they held on."
                .to_owned(),
        ];
        let changes = self.clock_changes();
        if !changes.is_empty() {
            let way = if changes.iter().all(|c| c.forward) {
                "earlier"
            } else if changes.iter().all(|c| !c.forward) {
                "later"
            } else {
                "earlier or later"
            };
            let text = clock_change_text(&changes);
            notes.push(format!(
                "{}{}: there the window and business hours after the change are an hour {way} \
                 in UTC, the upper of two bands.",
                text[..1].to_uppercase(),
                &text[1..]
            ));
        }
        notes
    }
}

/// Which sites changed their clocks during the run, and when, in words:
/// "clocks went forward an hour at hq and toronto on 8 March".
pub fn clock_change_text(changes: &[ClockChange]) -> String {
    let mut groups: Vec<(bool, &str, Vec<&str>)> = Vec::new();
    for c in changes {
        match groups.iter_mut().find(|g| g.0 == c.forward && g.1 == c.date) {
            Some(g) => g.2.push(&c.site),
            None => groups.push((c.forward, &c.date, vec![&c.site])),
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(forward, date, sites)| {
            let way = if *forward { "forward" } else { "back" };
            format!("clocks went {way} an hour at {} on {date}", list(sites))
        })
        .collect();
    parts.join("; ")
}

/// `a`, `a and b`, `a, b and c`.
fn list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

impl Figure for Timeline {
    fn size(&self) -> (u32, u32) {
        (1400, 160 + self.key_px() + self.row_px() * self.rows.len().max(1) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let n = self.rows.len().max(1);
        let (plot, key) = root.split_vertically(root.dim_in_pixel().1 - self.key_px());
        let labels: Vec<String> = self.rows.iter().map(|r| r.label.clone()).collect();
        let mut chart = ChartBuilder::on(&plot)
            .caption(&self.title, font(TITLE_PX - 2))
            .margin(18)
            .margin_right(RIGHT_PX)
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

        // Rows in axis units: each day of the run has a slot of one
        // pitch, first day at the bottom, centred on the row.
        let row_px = f64::from(self.row_px());
        let slot = f64::from(self.pitch_px()) / row_px;
        let bottom = -(self.days as f64) * slot / 2.0;
        let centre = |day: usize| bottom + (day as f64 + 0.5) * slot;
        // A span covers its days' slots; an outline is inset a little, so
        // that the business hours of the days before and after a clock
        // change are two boxes, not one.
        let extent = |s: &Span, inset: f64| {
            (bottom + s.first as f64 * slot + inset, bottom + (s.last + 1) as f64 * slot - inset)
        };
        let dot = strategy_color("tiered");
        let r = self.marker_px();
        for (k, row) in self.rows.iter().enumerate() {
            let y = k as f64;
            chart.draw_series(row.windows.iter().map(|s| {
                let (lo, hi) = extent(s, 0.0);
                Rectangle::new([(s.from, y + lo), (s.to, y + hi)], WINDOW.filled())
            }))?;
            chart.draw_series(row.business.iter().map(|s| {
                let (lo, hi) = extent(s, 3.0 / row_px);
                Rectangle::new([(s.from, y + lo), (s.to, y + hi)], BUSINESS.stroke_width(2))
            }))?;

            // One marker per sync, check or first download, at the height
            // of its day; checks that found nothing first, so that those
            // that brought policies are drawn over them.
            // A triangle's points span 5/3 of `r`: with r + 2 it is as
            // tall as a dot is wide and a little more, 12 of the 17 pixels.
            let tri = || super::triangle_points(r + 2).to_vec();
            // Hollow ones white inside, so that a band's edge under one
            // does not fill it.
            chart.draw_series(row.checks.iter().filter(|c| !c.2).map(|&(h, day, _)| {
                EmptyElement::at((h, y + centre(day)))
                    + Polygon::new(tri(), WHITE.filled())
                    + PathElement::new(tri(), CHECK.stroke_width(2))
            }))?;
            chart.draw_series(row.checks.iter().filter(|c| c.2).map(|&(h, day, _)| {
                EmptyElement::at((h, y + centre(day))) + Polygon::new(tri(), CHECK.filled())
            }))?;
            chart.draw_series(row.initial.iter().map(|&(h, day)| {
                EmptyElement::at((h, y + centre(day)))
                    + Rectangle::new([(-r, -r), (r, r)], INITIAL.filled())
            }))?;
            chart.draw_series(
                row.syncs
                    .iter()
                    .map(|&(h, day)| Circle::new((h, y + centre(day)), r, dot.filled())),
            )?;
        }

        // The legend below the axis; a kind of check that never happened
        // (a scenario without checks) has no entry.
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
        let used = super::draw_legend(&key, (190, 0), 1180, &items)?;
        let style = font(LABEL_PX - 3).color(&NOTE);
        for (i, line) in self.note_lines().into_iter().enumerate() {
            let y = used + 6 + (NOTE_LINE_PX as usize * i) as i32;
            key.draw(&Text::new(line, (190, y), style.clone()))?;
        }
        Ok(())
    }
}

/// `text` in lines of at most `width` characters, broken at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let last = lines.last_mut().expect("one line at least");
        if !last.is_empty() && last.len() + 1 + word.len() > width {
            lines.push(word.to_owned());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_change_splits_a_window_into_the_days_before_and_after() {
        let tz = TimeZone::get("America/New_York").unwrap();
        // 2026-03-02T00:00Z, a week: clocks go forward on Sunday 8 March.
        let start = 1_772_409_600;
        let end = start + 7 * 86_400;
        // Business hours 08:00-18:00 local: 13-23 UTC, then 12-22 UTC.
        let business = spans(&local_windows(&tz, start, end, 8 * 60, 600), start, 7);
        assert_eq!(
            business,
            vec![
                Span { from: 12.0, to: 22.0, first: 6, last: 6 },
                Span { from: 13.0, to: 23.0, first: 0, last: 5 },
            ]
        );
        assert_eq!(clock_change(&tz, start, end), Some(("8 March".to_owned(), true)));
        let utc = TimeZone::UTC;
        assert_eq!(clock_change(&utc, start, end), None);
    }

    #[test]
    fn spans_cut_at_midnight_and_where_a_day_of_the_run_begins() {
        let tz = TimeZone::get("Asia/Tokyo").unwrap();
        // Starts 15:00 UTC, midnight in Tokyo; business hours 08-18 local
        // are 23:00-09:00 UTC, cut at UTC midnight.
        let start = 1_772_377_200;
        let end = start + 2 * 86_400;
        let business = spans(&local_windows(&tz, start, end, 8 * 60, 600), start, 2);
        assert_eq!(
            business,
            vec![
                Span { from: 0.0, to: 9.0, first: 0, last: 1 },
                Span { from: 23.0, to: 24.0, first: 0, last: 1 },
            ]
        );
    }

    #[test]
    fn clock_changes_read_as_a_sentence() {
        let c = |site: &str, forward| ClockChange {
            site: site.to_owned(),
            date: "8 March".to_owned(),
            forward,
        };
        assert_eq!(
            clock_change_text(&[c("hq", true), c("toronto", true), c("sydney", false)]),
            "clocks went forward an hour at hq and toronto on 8 March; clocks went back an \
             hour at sydney on 8 March"
        );
    }
}
