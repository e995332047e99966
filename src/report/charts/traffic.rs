//! Traffic over the run, hour by hour: WAN bytes (chart 1) and the
//! master's load (chart 5), one line per strategy.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{AXIS_PX, DrawResult, Figure, LABEL_PX, LogAxis, Mark, TITLE_PX, font, strategy_color};
use crate::report::Comparison;
use crate::report::series;

/// Width of the legend column right of the plot, pixels.
const LEGEND_PX: u32 = 250;

/// One strategy's hourly values.
struct Line {
    name: String,
    values: Vec<f64>,
    /// Drawn dashed over a wider line it coincides with.
    dashed: bool,
}

impl Line {
    fn mark(&self) -> Mark {
        let color = strategy_color(&self.name);
        if self.dashed {
            Mark::Dashed(color, 3)
        } else {
            Mark::Line(color, super::line_width(&self.name).min(5))
        }
    }
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
                dashed: false,
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
        let root = root.margin(12, 0, 0, 0).titled(&self.title, font(TITLE_PX))?;
        hourly_chart(&root, "bytes per hour", &self.lines, Units::Bytes)
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
    ///
    /// `flat` and `flat-conditional` exchange the same messages (a poll
    /// that finds nothing new is still a poll and an answer), so the
    /// conditional line is dashed over the plain one in the top panel.
    pub fn new(cmp: &Comparison<'_>) -> MasterLoad {
        let mut messages = Vec::new();
        let mut bytes = Vec::new();
        for r in &cmp.runs {
            let per_hour = series::master_per_hour(cmp.scenario, r);
            let name = r.summary.strategy.clone();
            messages.push(Line {
                dashed: name == "flat-conditional",
                name: name.clone(),
                values: per_hour.iter().map(|(m, _)| *m as f64).collect(),
            });
            bytes.push(Line {
                name,
                values: per_hour.iter().map(|(_, b)| *b as f64).collect(),
                dashed: false,
            });
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
        let root = root.margin(12, 0, 0, 0).titled(&self.title, font(TITLE_PX))?;
        let (top, bottom) = root.split_vertically(root.dim_in_pixel().1 / 2);
        hourly_chart(&top, "messages per hour", &self.messages, Units::Count)?;
        hourly_chart(&bottom, "bytes per hour", &self.bytes, Units::Bytes)
    }
}

/// What the y axis counts.
#[derive(Clone, Copy)]
enum Units {
    Bytes,
    Count,
}

/// A line per strategy over the hours of the run, on a log axis when the
/// strategies differ by orders of magnitude, with the legend in a column
/// right of the plot. Hours without traffic sit on the log axis's floor,
/// labelled "none", since zero has no place on it.
fn hourly_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    y_desc: &str,
    lines: &[Line],
    units: Units,
) -> DrawResult<DB> {
    let (plot, key) = area.split_horizontally(area.dim_in_pixel().0 - LEGEND_PX);
    let hours = lines.iter().map(|l| l.values.len()).max().unwrap_or(1).max(1);
    let time = TimeAxis::new(hours);
    let (span, x_desc) = (time.span, time.desc);
    let all = || lines.iter().flat_map(|l| l.values.iter().copied());
    let mut b = ChartBuilder::on(&plot);
    b.margin(18).x_label_area_size(60).y_label_area_size(120);
    let label: fn(f64) -> String = match units {
        Units::Bytes => super::bytes_label,
        Units::Count => super::count_label,
    };

    if super::wants_log(all()) {
        let axis = match units {
            Units::Bytes => LogAxis::bytes(all()),
            Units::Count => LogAxis::count(all()),
        };
        let y_range = (axis.floor..axis.top).log_scale().with_key_points(axis.ticks.clone());
        let mut chart = b.build_cartesian_2d(0f64..span, y_range)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(format!("{y_desc} (log scale)"))
            .x_labels(time.labels)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| axis.label(*y, label))
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(AXIS_PX))
            .light_line_style(WHITE)
            .draw()?;
        for line in lines {
            let pts = line.values.iter().enumerate().map(|(h, v)| (time.at(h), axis.clamp(*v)));
            draw_line(&mut chart, line, pts)?;
        }
    } else {
        // A linear axis counts in one binary unit, so that its ticks are
        // round numbers of it.
        let max = all().fold(0f64, f64::max).max(1.0);
        let (unit, size) = match units {
            Units::Bytes => super::binary_unit(max),
            Units::Count => ("", 1.0),
        };
        let mut chart = b.build_cartesian_2d(0f64..span, 0f64..max * 1.15 / size)?;
        let desc = if unit.is_empty() { y_desc.to_owned() } else { format!("{y_desc}, {unit}") };
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(desc)
            .x_labels(time.labels)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| match units {
                Units::Bytes => format!("{} {unit}", super::trim_number(*y)),
                Units::Count => label(*y),
            })
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(AXIS_PX))
            .light_line_style(WHITE)
            .draw()?;
        for line in lines {
            let pts = line.values.iter().enumerate().map(|(h, v)| (time.at(h), *v / size));
            draw_line(&mut chart, line, pts)?;
        }
    }

    // The legend beside the plot, where it covers no line.
    let items: Vec<(Mark, String)> = lines.iter().map(|l| (l.mark(), l.name.clone())).collect();
    super::draw_legend(&key, (10, 30), 0, &items)?;
    Ok(())
}

/// The x axis of an hourly chart: days since the start of the run, or
/// hours for a run of two days or less, where a day axis would have only
/// two or three ticks.
struct TimeAxis {
    /// Hours per unit of the axis: 1 or 24.
    unit_hours: f64,
    /// Length of the run in axis units.
    span: f64,
    /// Most tick labels to ask plotters for: it picks round steps of 1, 2
    /// or 5 units that give no more, so 13 labels a day are every 2 hours.
    labels: usize,
    /// The axis description.
    desc: &'static str,
}

impl TimeAxis {
    /// The axis of a run of `hours` hourly points.
    fn new(hours: usize) -> TimeAxis {
        if hours <= 48 {
            TimeAxis {
                unit_hours: 1.0,
                span: hours as f64,
                labels: if hours <= 24 { 13 } else { 10 },
                desc: "hours since the start of the run (UTC); one point per hour",
            }
        } else {
            let days = hours as f64 / 24.0;
            TimeAxis {
                unit_hours: 24.0,
                span: days,
                labels: days.ceil() as usize + 1,
                desc: "days since the start of the run (UTC); one point per hour",
            }
        }
    }

    /// The middle of hour `h` of the run, in axis units.
    fn at(&self, h: usize) -> f64 {
        (h as f64 + 0.5) / self.unit_hours
    }
}

/// One strategy's line: solid, or dashed over the line it coincides with.
fn draw_line<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    line: &Line,
    pts: impl Iterator<Item = (f64, f64)> + Clone,
) -> DrawResult<DB>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let color = strategy_color(&line.name);
    if line.dashed {
        chart.draw_series(DashedLineSeries::new(pts, 12, 8, color.stroke_width(3)))?;
    } else {
        let width = super::line_width(&line.name);
        chart.draw_series(LineSeries::new(pts, color.stroke_width(width)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TimeAxis;

    #[test]
    fn a_short_run_counts_hours_and_a_long_one_days() {
        let day = TimeAxis::new(24);
        assert_eq!((day.unit_hours, day.span, day.labels), (1.0, 24.0, 13));
        assert!(day.desc.starts_with("hours"));
        assert_eq!(day.at(0), 0.5);
        let week = TimeAxis::new(168);
        assert_eq!((week.unit_hours, week.span, week.labels), (24.0, 7.0, 8));
        assert!(week.desc.starts_with("days"));
        assert_eq!(week.at(12), 12.5 / 24.0);
    }
}
