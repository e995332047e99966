//! Chart 2: each site's WAN link through its local day — background load,
//! each strategy's policy traffic, and the business-hours band.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{AXIS_PX, DrawResult, Figure, LABEL_PX, TITLE_PX, font, strategy_color};
use crate::report::Comparison;
use crate::report::series::{self, LocalDay};

/// Lowest floor of the share axis, 10⁻¹⁰ of the line: a few hundred
/// bytes a day on a fast link. Below that a strategy's traffic is nil for
/// any practical purpose, and a log axis needs a floor.
const MIN_FLOOR: f64 = 1e-10;

/// Panels per row.
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
    /// Bottom of the share axis: the power of ten below the smallest share
    /// drawn, so that the quietest strategy's hours still show.
    floor: f64,
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
        let floor = super::log_bounds(shares).0.clamp(MIN_FLOOR, 1e-3);
        LocalDayChart {
            floor,
            title: format!(
                "{}: WAN link use by hour of each site's local day (mean over the run)",
                sc.name
            ),
            panels,
            business,
        }
    }

    fn rows(&self) -> usize {
        self.panels.len().div_ceil(COLUMNS).max(1)
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
        let cells = grid.split_evenly((self.rows(), COLUMNS));
        for (panel, cell) in self.panels.iter().zip(cells.iter()) {
            self.draw_panel(panel, cell)?;
        }
        Ok(())
    }
}

impl LocalDayChart {
    /// One legend for every panel, in a row above them.
    fn draw_legend<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let mut x = 40;
        let y = 25;
        let item = |area: &DrawingArea<DB, Shift>, x: i32, label: &str| {
            area.draw(&Text::new(label.to_owned(), (x + 34, y - 10), font(LABEL_PX)))
        };
        area.draw(&Rectangle::new(
            [(x, y - 8), (x + 26, y + 8)],
            RGBColor(255, 236, 179).filled(),
        ))?;
        item(area, x, "business hours")?;
        x += 220;
        area.draw(&Rectangle::new(
            [(x, y - 8), (x + 26, y + 8)],
            RGBColor(170, 170, 170).filled(),
        ))?;
        item(area, x, "background load")?;
        x += 240;
        if let Some(p) = self.panels.first() {
            for (name, _) in &p.lines {
                let c = strategy_color(name);
                area.draw(&PathElement::new([(x, y), (x + 26, y)], c.stroke_width(4)))?;
                item(area, x, &format!("{name} policy traffic"))?;
                x += 330;
            }
        }
        Ok(())
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        panel: &Panel,
        area: &DrawingArea<DB, Shift>,
    ) -> DrawResult<DB> {
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, font(AXIS_PX))
            .margin(10)
            .x_label_area_size(50)
            .y_label_area_size(95)
            .build_cartesian_2d(0f64..24f64, (self.floor..1.0).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("local hour")
            .y_desc("share of line capacity")
            .x_labels(7)
            .x_label_formatter(&|x| format!("{:02}", *x as u32))
            .y_labels(8)
            .y_label_formatter(&|y| share_label(*y))
            .label_style(font(LABEL_PX - 3))
            .axis_desc_style(font(LABEL_PX - 1))
            .light_line_style(WHITE)
            .draw()?;

        // Business hours behind everything.
        for &(s, e) in &self.business {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(s, self.floor), (e, 1.0)],
                RGBColor(255, 236, 179).filled(),
            )))?;
        }

        // Background load as a grey step area, policy traffic as steps.
        let floor = self.floor;
        let steps = |v: &[f64; 24]| -> Vec<(f64, f64)> {
            let at = |h: usize| v[h].max(floor);
            (0..24).flat_map(|h| [(h as f64, at(h)), (h as f64 + 1.0, at(h))]).collect()
        };
        chart.draw_series(AreaSeries::new(
            steps(&panel.background),
            floor,
            RGBColor(170, 170, 170).mix(0.7),
        ))?;
        for (name, share) in &panel.lines {
            let c = strategy_color(name);
            chart.draw_series(LineSeries::new(steps(share), c.stroke_width(3)))?;
        }
        Ok(())
    }
}

/// A share of capacity as a percentage with as many digits as it needs.
pub fn share_label(y: f64) -> String {
    let pct = y * 100.0;
    if pct >= 1.0 {
        format!("{pct:.0}%")
    } else if pct >= 0.01 {
        let digits = (-pct.log10()).ceil().max(0.0) as usize;
        format!("{pct:.digits$}%")
    } else {
        // Tiny shares in powers of ten: 1e-6% reads better than 0.000001%.
        format!("{pct:.0e}%")
    }
}
