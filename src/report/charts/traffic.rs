//! Traffic over the run, hour by hour: WAN bytes (chart 1) and the
//! master's load (chart 5), one line per strategy.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{AXIS_PX, DrawResult, Figure, LABEL_PX, TITLE_PX, font, strategy_color};
use crate::report::Comparison;
use crate::report::series;

/// One strategy's hourly values.
struct Line {
    name: String,
    values: Vec<f64>,
}

/// Chart 1: WAN bytes per hour across the run.
pub struct WanPerHour {
    title: String,
    lines: Vec<Line>,
}

impl WanPerHour {
    /// The chart of `cmp`.
    pub fn new(cmp: &Comparison<'_>) -> WanPerHour {
        let lines = cmp
            .runs
            .iter()
            .map(|r| Line {
                name: r.summary.strategy.clone(),
                values: series::wan_per_hour(cmp.scenario, r)
                    .iter()
                    .map(|(b, _)| *b as f64)
                    .collect(),
            })
            .collect();
        WanPerHour { title: format!("{}: WAN bytes per hour, all links", cmp.scenario.name), lines }
    }
}

impl Figure for WanPerHour {
    fn size(&self) -> (u32, u32) {
        (1400, 700)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        hourly_chart(root, &self.title, "bytes per hour", &self.lines, super::bytes_label)
    }
}

/// Chart 5: the master's messages and bytes per hour.
pub struct MasterLoad {
    title: String,
    messages: Vec<Line>,
    bytes: Vec<Line>,
}

impl MasterLoad {
    /// The chart of `cmp`.
    pub fn new(cmp: &Comparison<'_>) -> MasterLoad {
        let mut messages = Vec::new();
        let mut bytes = Vec::new();
        for r in &cmp.runs {
            let per_hour = series::master_per_hour(cmp.scenario, r);
            let name = r.summary.strategy.clone();
            messages.push(Line {
                name: name.clone(),
                values: per_hour.iter().map(|(m, _)| *m as f64).collect(),
            });
            bytes.push(Line { name, values: per_hour.iter().map(|(_, b)| *b as f64).collect() });
        }
        MasterLoad {
            title: format!("{}: master load per hour (in + out)", cmp.scenario.name),
            messages,
            bytes,
        }
    }
}

impl Figure for MasterLoad {
    fn size(&self) -> (u32, u32) {
        (1400, 1100)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let root = root.titled(&self.title, font(TITLE_PX))?;
        let (top, bottom) = root.split_vertically(root.dim_in_pixel().1 / 2);
        hourly_chart(&top, "", "messages per hour", &self.messages, super::count_label)?;
        hourly_chart(&bottom, "", "bytes per hour", &self.bytes, super::bytes_label)
    }
}

/// A line per strategy over the hours of the run, on a log axis when the
/// strategies differ by orders of magnitude. Hours without traffic sit on
/// the bottom of a log axis, since zero has no place on it.
fn hourly_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    lines: &[Line],
    y_label: fn(f64) -> String,
) -> DrawResult<DB> {
    let days = lines.iter().map(|l| l.values.len()).max().unwrap_or(1).max(1) as f64 / 24.0;
    let all = || lines.iter().flat_map(|l| l.values.iter().copied());
    let mut b = ChartBuilder::on(area);
    b.margin(18).x_label_area_size(60).y_label_area_size(120);
    if !title.is_empty() {
        b.caption(title, font(TITLE_PX));
    }
    let x_desc = "days since the start of the run (UTC); one point per hour";
    let day_ticks = days.ceil() as usize + 1;

    if super::wants_log(all()) {
        let (lo, hi) = super::log_bounds(all());
        let mut chart = b.build_cartesian_2d(0f64..days, (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(format!("{y_desc} (log scale)"))
            .x_labels(day_ticks.max(2))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| y_label(*y))
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(AXIS_PX))
            .light_line_style(WHITE)
            .draw()?;
        for line in lines {
            let color = strategy_color(&line.name);
            let pts =
                line.values.iter().enumerate().map(|(h, v)| ((h as f64 + 0.5) / 24.0, v.max(lo)));
            chart
                .draw_series(LineSeries::new(
                    pts,
                    color.stroke_width(super::line_width(&line.name)),
                ))?
                .label(line.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], color.stroke_width(4))
                });
        }
        legend(&mut chart)
    } else {
        let hi = all().fold(0f64, f64::max).max(1.0) * 1.1;
        let mut chart = b.build_cartesian_2d(0f64..days, 0f64..hi)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_labels(day_ticks.max(2))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| y_label(*y))
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(AXIS_PX))
            .light_line_style(WHITE)
            .draw()?;
        for line in lines {
            let color = strategy_color(&line.name);
            let pts = line.values.iter().enumerate().map(|(h, v)| ((h as f64 + 0.5) / 24.0, *v));
            chart
                .draw_series(LineSeries::new(
                    pts,
                    color.stroke_width(super::line_width(&line.name)),
                ))?
                .label(line.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], color.stroke_width(4))
                });
        }
        legend(&mut chart)
    }
}

/// The legend box, top right, over a translucent white background.
pub fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(font(LABEL_PX))
        .draw()
}
