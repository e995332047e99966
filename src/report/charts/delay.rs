//! Chart 4: policy propagation delay as a cumulative distribution, one
//! curve per strategy.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{AXIS_PX, DrawResult, Figure, LABEL_PX, Mark, TITLE_PX, font, strategy_color};
use crate::report::Comparison;
use crate::report::series;

/// Points per curve: enough for a smooth line, few enough for a small SVG.
const POINTS: usize = 600;

/// Width of the legend column right of the plot, pixels.
const LEGEND_PX: u32 = 250;

/// One strategy's curve: (delay seconds, share of pairs applied by then).
struct Curve {
    name: String,
    points: Vec<(f64, f64)>,
}

/// The chart.
pub struct DelayCdf {
    title: String,
    curves: Vec<Curve>,
}

impl DelayCdf {
    /// The chart of `cmp`.
    ///
    /// The share counts every (change, affected client) pair, applied or
    /// not, so a curve that ends below 100% shows pairs never applied.
    pub fn new(cmp: &Comparison<'_>) -> DelayCdf {
        let curves = cmp
            .runs
            .iter()
            .map(|r| {
                let delays = series::delays_seconds(r);
                let total =
                    delays.len() as f64 + r.summary.propagation_seconds.never_applied as f64;
                let step = (delays.len() / POINTS).max(1);
                let mut points: Vec<(f64, f64)> = delays
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % step == 0 || *i + 1 == delays.len())
                    .map(|(i, d)| (d.max(1.0), (i + 1) as f64 / total.max(1.0)))
                    .collect();
                points.dedup();
                Curve { name: r.summary.strategy.clone(), points }
            })
            .collect();
        DelayCdf {
            title: format!(
                "{}: policy propagation delay, change made to client applied",
                cmp.scenario.name
            ),
            curves,
        }
    }
}

impl Figure for DelayCdf {
    fn size(&self) -> (u32, u32) {
        (1640, 750)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let all = self.curves.iter().flat_map(|c| c.points.iter().map(|p| p.0));
        let (lo, hi, ticks) = super::time_axis(all);
        let root = root.margin(12, 0, 0, 0).titled(&self.title, font(TITLE_PX))?;
        // The legend in a column right of the plot, where no curve runs:
        // inside the plot, any corner is crossed by some scenario's curve.
        let (plot, key) = root.split_horizontally(root.dim_in_pixel().0 - LEGEND_PX);
        let mut chart = ChartBuilder::on(&plot)
            .margin(18)
            .margin_right(36)
            .x_label_area_size(60)
            .y_label_area_size(100)
            .build_cartesian_2d((lo..hi).log_scale().with_key_points(ticks), 0f64..1.04)?;
        chart
            .configure_mesh()
            .x_desc("delay (log scale)")
            .y_desc("share of (change, client) pairs applied")
            .x_label_formatter(&|x| super::seconds_label(*x))
            .y_labels(12)
            .y_label_formatter(&|y| {
                if *y <= 1.0 + 1e-9 { format!("{:.0}%", y * 100.0) } else { String::new() }
            })
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(AXIS_PX))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        let mut items = Vec::new();
        for c in &self.curves {
            let color = strategy_color(&c.name);
            let width = super::line_width(&c.name);
            chart.draw_series(LineSeries::new(
                c.points.iter().copied(),
                color.stroke_width(width),
            ))?;
            items.push((Mark::Line(color, width.min(5)), c.name.clone()));
        }
        super::draw_legend(&key, (10, 30), 0, &items)?;
        Ok(())
    }
}
