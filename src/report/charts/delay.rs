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

/// The plot's size inside the chart, pixels, about: what a distance
/// between two curves is measured in.
const PLOT_PX: (f64, f64) = (1220.0, 580.0);

/// Points of two curves no further apart than this, pixels, lie on each
/// other: the narrower line would hide in the wider one.
const COINCIDE_PX: f64 = 3.0;

/// Two curves coincide when at most this share of their points lie
/// further apart than [`COINCIDE_PX`]: the first pairs of a run, at a
/// second or so, may differ by a fraction of a second that shows on a log
/// axis while the rest of the curves lie on each other.
const APART_SHARE_MAX: f64 = 0.01;

/// One strategy's curve: (delay seconds, share of pairs applied by then).
struct Curve {
    name: String,
    points: Vec<(f64, f64)>,
}

/// The chart.
pub struct DelayCdf {
    title: String,
    curves: Vec<Curve>,
    /// Whether the `flat` and `flat-conditional` curves coincide: then
    /// the conditional one is dashed over the plain one.
    flat_coincide: bool,
}

impl DelayCdf {
    /// The chart of `cmp`.
    ///
    /// The share counts every (change, affected client) pair, applied or
    /// not, so a curve that ends below 100% shows pairs never applied.
    pub fn new(cmp: &Comparison<'_>) -> DelayCdf {
        let curves: Vec<Curve> = cmp
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
        let curve = |name: &str| curves.iter().find(|c| c.name == name);
        let flat_coincide = match (curve("flat"), curve("flat-conditional")) {
            (Some(a), Some(b)) => {
                let all = curves.iter().flat_map(|c| c.points.iter().map(|p| p.0));
                let (lo, hi, _) = super::time_axis(all);
                share_apart(&a.points, &b.points, lo, hi) <= APART_SHARE_MAX
            }
            _ => false,
        };
        DelayCdf {
            title: format!(
                "{}: policy propagation delay, change made to client applied",
                cmp.scenario.name
            ),
            curves,
            flat_coincide,
        }
    }

    /// Whether the `flat` and `flat-conditional` curves coincide (no more
    /// than a line's width apart but for 1% of their points at most), so
    /// that the chart draws the conditional one dashed over the plain one.
    pub fn flat_coincide(&self) -> bool {
        self.flat_coincide
    }
}

/// The share of the points of two curves that lie further than
/// [`COINCIDE_PX`] from the nearest segment of the other curve on the
/// chart, on a log delay axis from `lo` to `hi` seconds and a linear share
/// axis (pixels about as drawn).
fn share_apart(a: &[(f64, f64)], b: &[(f64, f64)], lo: f64, hi: f64) -> f64 {
    let decades = (hi / lo).log10().max(1e-9);
    let px = |&(d, share): &(f64, f64)| {
        ((d / lo).log10() / decades * PLOT_PX.0, share / 1.04 * PLOT_PX.1)
    };
    let (a, b): (Vec<_>, Vec<_>) = (a.iter().map(px).collect(), b.iter().map(px).collect());
    let to_segment = |p: (f64, f64), s: (f64, f64), e: (f64, f64)| {
        let (dx, dy) = (e.0 - s.0, e.1 - s.1);
        let len = dx * dx + dy * dy;
        let t = if len > 0.0 { ((p.0 - s.0) * dx + (p.1 - s.1) * dy) / len } else { 0.0 };
        let t = t.clamp(0.0, 1.0);
        (p.0 - s.0 - t * dx).hypot(p.1 - s.1 - t * dy)
    };
    let nearest = |p: (f64, f64), to: &[(f64, f64)]| match to {
        [] => f64::INFINITY,
        [only] => to_segment(p, *only, *only),
        _ => to.windows(2).map(|w| to_segment(p, w[0], w[1])).fold(f64::INFINITY, f64::min),
    };
    let apart = |from: &[(f64, f64)], to: &[(f64, f64)]| {
        from.iter().filter(|&&p| nearest(p, to) > COINCIDE_PX).count()
    };
    let points = (a.len() + b.len()).max(1);
    (apart(&a, &b) + apart(&b, &a)) as f64 / points as f64
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
        // flat first and wider; where flat-conditional coincides with it,
        // dashed over it, so that both show.
        for c in &self.curves {
            let color = strategy_color(&c.name);
            let width = super::line_width(&c.name);
            let points = c.points.iter().copied();
            if self.flat_coincide && c.name == "flat-conditional" {
                chart.draw_series(DashedLineSeries::new(points, 12, 8, color.stroke_width(3)))?;
                items.push((Mark::Dashed(color, 3), c.name.clone()));
            } else {
                chart.draw_series(LineSeries::new(points, color.stroke_width(width)))?;
                items.push((Mark::Line(color, width.min(5)), c.name.clone()));
            }
        }
        super::draw_legend(&key, (10, 30), 0, &items)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::share_apart;

    #[test]
    fn curves_a_line_width_apart_coincide_and_others_do_not() {
        let a = [(1.0, 0.0), (60.0, 0.5), (3600.0, 1.0)];
        assert_eq!(share_apart(&a, &a, 1.0, 86_400.0), 0.0);
        let near = [(1.0, 0.0), (60.5, 0.5), (3600.0, 1.0)];
        assert_eq!(share_apart(&a, &near, 1.0, 86_400.0), 0.0);
        let later = [(1.0, 0.0), (120.0, 0.5), (3600.0, 1.0)];
        assert!(share_apart(&a, &later, 1.0, 86_400.0) > 0.1);
        let lower = [(1.0, 0.0), (60.0, 0.5), (3600.0, 0.9)];
        assert!(share_apart(&a, &lower, 1.0, 86_400.0) > 0.1);
    }

    #[test]
    fn curves_apart_only_at_their_first_point_still_coincide() {
        let a: Vec<(f64, f64)> =
            (0..=200).map(|i| (1.0 + f64::from(i) * 10.0, f64::from(i) / 200.0)).collect();
        let mut b = a.clone();
        b[0].0 = 1.3;
        let apart = share_apart(&a, &b, 1.0, 86_400.0);
        assert!(apart > 0.0 && apart <= super::APART_SHARE_MAX, "{apart}");
    }
}
