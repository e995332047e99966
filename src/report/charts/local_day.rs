//! Chart 2: each site's WAN link through its local day — background load,
//! each strategy's policy traffic, and the business-hours band.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{AXIS_PX, DrawResult, Figure, LABEL_PX, LogAxis, Mark, TITLE_PX, font, strategy_color};
use crate::report::Comparison;
use crate::report::series::{self, LocalDay};

/// Decades the share axis spans at most below the decade of the largest
/// share drawn (background included): six, from 100% down to 0.0001% of
/// the line when the busiest hour is over 10%. Traffic a millionth of the
/// busiest hour's is nil beside it; a deeper axis would spend the panel's
/// height on it and crowd the labels.
pub const DECADES: i32 = 6;

/// The highest floor of the share axis, 0.01% of the line, so that an
/// axis spans four decades at least.
const MAX_FLOOR: f64 = 1e-4;

/// The business-hours band: a translucent amber over everything, with an
/// edge, so that it shows above the background load it lies on.
const BAND_FILL: RGBAColor = RGBAColor(255, 193, 7, 0.15);
/// The band's edge.
const BAND_EDGE: RGBColor = RGBColor(191, 144, 0);
/// The background load's grey.
const BACKGROUND: RGBColor = RGBColor(185, 185, 185);

/// Panels per row at most.
const COLUMNS: usize = 3;

/// One site's panel.
struct Panel {
    title: String,
    background: [f64; 24],
    /// (strategy, share by local hour)
    lines: Vec<(String, [f64; 24])>,
}

/// The chart.
pub struct LocalDayChart {
    title: String,
    panels: Vec<Panel>,
    /// Business hours as local minutes [start, end); a window across
    /// midnight is two bands.
    business: Vec<(f64, f64)>,
    /// The share axis: its floor is a power of ten below the smallest
    /// share drawn, so that the quietest strategy's hours still show, and
    /// hours without traffic lie on it.
    axis: LogAxis,
}

impl LocalDayChart {
    /// The chart of `cmp`.
    pub fn new(cmp: &Comparison<'_>) -> LocalDayChart {
        let sc = cmp.scenario;
        let days: Vec<Vec<LocalDay>> = cmp.runs.iter().map(|r| series::local_days(sc, r)).collect();
        let mut panels = Vec::new();
        if let Some(first) = days.first() {
            for (i, day) in first.iter().enumerate() {
                let site = &sc.sites[day.site];
                let bw = site.wan.as_ref().map(|w| w.bandwidth.to_string()).unwrap_or_default();
                panels.push(Panel {
                    title: format!("{} ({}, {bw})", site.name, site.timezone_name),
                    background: day.background,
                    lines: cmp
                        .runs
                        .iter()
                        .zip(&days)
                        .map(|(r, d)| (r.summary.strategy.clone(), d[i].policy))
                        .collect(),
                });
            }
        }
        let w = sc.business_hours.window;
        let (s, e) = (f64::from(w.start_minute()) / 60.0, f64::from(w.end_minute()) / 60.0);
        let business = if s < e { vec![(s, e)] } else { vec![(s, 24.0), (0.0, e)] };
        let shares =
            panels.iter().flat_map(|p| p.lines.iter().flat_map(|(_, v)| v.iter().copied()));
        let mut axis = LogAxis::share(shares);
        if axis.floor > MAX_FLOOR {
            axis = LogAxis::share([MAX_FLOOR * 10.0]);
        }
        let highest = panels
            .iter()
            .flat_map(|p| p.background.iter().chain(p.lines.iter().flat_map(|(_, v)| v.iter())))
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        let axis = axis.deepest(highest, DECADES);
        LocalDayChart {
            axis,
            title: format!(
                "{}: WAN link use by hour of each site's local day (mean over the run)",
                sc.name
            ),
            panels,
            business,
        }
    }

    /// The share axis every panel shares.
    pub fn axis(&self) -> &LogAxis {
        &self.axis
    }

    /// Panels per row: up to [`COLUMNS`], fewer when there are fewer
    /// sites, so that no column is left empty.
    fn columns(&self) -> usize {
        self.panels.len().clamp(1, COLUMNS)
    }

    fn rows(&self) -> usize {
        self.panels.len().div_ceil(self.columns()).max(1)
    }
}

impl Figure for LocalDayChart {
    fn size(&self) -> (u32, u32) {
        (1500, 120 + 420 * self.rows() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let root = root.margin(10, 0, 0, 0).titled(&self.title, font(TITLE_PX))?;
        let (legend_area, grid) = root.split_vertically(50);
        self.draw_legend(&legend_area)?;
        let cells = grid.split_evenly((self.rows(), self.columns()));
        for (panel, cell) in self.panels.iter().zip(cells.iter()) {
            self.draw_panel(panel, cell)?;
        }
        Ok(())
    }
}

impl LocalDayChart {
    /// One legend for every panel, in a row above them.
    fn draw_legend<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let mut items = vec![
            (Mark::Band(BAND_FILL, BAND_EDGE), "business hours".to_owned()),
            (Mark::Fill(BACKGROUND.to_rgba()), "background load".to_owned()),
        ];
        if let Some(p) = self.panels.first() {
            for (name, _) in &p.lines {
                let c = strategy_color(name);
                items.push((Mark::Line(c, 4), format!("{name} policy traffic")));
            }
        }
        super::draw_legend(area, (40, 6), 1420, &items)?;
        Ok(())
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        panel: &Panel,
        area: &DrawingArea<DB, Shift>,
    ) -> DrawResult<DB> {
        let axis = &self.axis;
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, font(AXIS_PX))
            .margin(10)
            .x_label_area_size(50)
            .y_label_area_size(130)
            .build_cartesian_2d(
                0f64..24f64,
                (axis.floor..axis.top).log_scale().with_key_points(axis.ticks.clone()),
            )?;
        chart
            .configure_mesh()
            .x_desc("local hour")
            .y_desc("share of line capacity (log)")
            .x_labels(7)
            .x_label_formatter(&|x| format!("{:02}", *x as u32))
            .y_label_formatter(&|y| axis.label(*y, super::percent_label))
            .label_style(font(LABEL_PX - 3))
            .axis_desc_style(font(LABEL_PX - 1))
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()?;

        // Background load as a grey step area, policy traffic as steps.
        let steps = |v: &[f64; 24]| -> Vec<(f64, f64)> {
            let at = |h: usize| axis.clamp(v[h]);
            (0..24).flat_map(|h| [(h as f64, at(h)), (h as f64 + 1.0, at(h))]).collect()
        };
        chart.draw_series(AreaSeries::new(steps(&panel.background), axis.floor, BACKGROUND))?;

        // Business hours over the background, translucent, so the band
        // shows the load below it; the lines go on top, in their own
        // colours, and the band's edge last.
        for &(s, e) in &self.business {
            let corners = [(s, axis.floor), (e, axis.top)];
            chart.draw_series(std::iter::once(Rectangle::new(corners, BAND_FILL.filled())))?;
        }
        for (name, share) in &panel.lines {
            let c = strategy_color(name);
            let width = super::line_width(name).min(5);
            chart.draw_series(LineSeries::new(steps(share), c.stroke_width(width)))?;
        }
        for &(s, e) in &self.business {
            let corners = [(s, axis.floor), (e, axis.top)];
            let edge = BAND_EDGE.stroke_width(2);
            chart.draw_series(std::iter::once(Rectangle::new(corners, edge)))?;
        }
        Ok(())
    }
}
