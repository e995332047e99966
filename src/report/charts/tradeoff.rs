//! The sweep's trade-off chart: WAN bytes against p99 propagation delay,
//! one point per setting and strategy.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{AXIS_PX, DrawResult, Figure, LABEL_PX, Mark, TITLE_PX, font, strategy_color};

/// One run of a sweep.
#[derive(Clone, Debug)]
pub struct TradePoint {
    /// Strategy name.
    pub strategy: String,
    /// The setting, as `key=value` pairs.
    pub label: String,
    /// WAN bytes of the run.
    pub wan_bytes: f64,
    /// p99 propagation delay, seconds.
    pub p99_seconds: f64,
}

/// The chart.
pub struct TradeOff {
    /// Title.
    pub title: String,
    /// The points.
    pub points: Vec<TradePoint>,
}

impl Figure for TradeOff {
    fn size(&self) -> (u32, u32) {
        (1400, 850)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        // Ranges padded by a factor of three each way on the log axes, so
        // that no point or label sits on the frame.
        let pad = |v: f64, by: f64| if v > 0.0 { v * by } else { v };
        let x = super::LogAxis::bytes(
            self.points.iter().flat_map(|p| [pad(p.wan_bytes, 1.0 / 3.0), pad(p.wan_bytes, 3.0)]),
        );
        let ys =
            self.points.iter().flat_map(|p| [pad(p.p99_seconds, 0.5), pad(p.p99_seconds, 2.0)]);
        let (y_lo, y_hi, ticks) = super::time_axis(ys);
        // The title over the whole chart, centred on it, then the plot
        // and the legend column beside it.
        let root = root.margin(12, 0, 0, 0).titled(&self.title, font(TITLE_PX - 4))?;
        let (plot, key) = root.split_horizontally(root.dim_in_pixel().0 - 250);
        let mut chart = ChartBuilder::on(&plot)
            .margin(24)
            .x_label_area_size(60)
            .y_label_area_size(110)
            .build_cartesian_2d(
                (x.floor..x.top).log_scale().with_key_points(x.ticks.clone()),
                (y_lo..y_hi).log_scale().with_key_points(ticks),
            )?;
        chart
            .configure_mesh()
            .x_desc("WAN bytes over the run (log scale)")
            .y_desc("p99 propagation delay (log scale)")
            .x_label_formatter(&|v| x.label(*v, super::bytes_label))
            .y_label_formatter(&|y| super::seconds_label(*y))
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(AXIS_PX))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;

        // Points first, then their labels, each at the first place around
        // its point (right, left, above, below, further out) where it
        // overlaps no point and no label already placed.
        let at = |p: &TradePoint| (x.clamp(p.wan_bytes), p.p99_seconds.max(y_lo));
        for p in &self.points {
            let color = strategy_color(&p.strategy);
            chart.draw_series(std::iter::once(Circle::new(at(p), 7, color.filled())))?;
        }
        let style = font(LABEL_PX - 3);
        let taken: Vec<(i32, i32, i32, i32)> = self
            .points
            .iter()
            .map(|p| {
                let (px, py) = chart.backend_coord(&at(p));
                (px - 8, py - 8, px + 8, py + 8)
            })
            .collect();
        let (width, height) = plot.dim_in_pixel();
        // Backend pixels to the plot's own, which `plot.draw` takes.
        let base = plot.get_base_pixel();
        let mut taken: Vec<(i32, i32, i32, i32)> = taken
            .into_iter()
            .map(|(a, b, c, d)| (a - base.0, b - base.1, c - base.0, d - base.1))
            .collect();
        for p in &self.points {
            let (px, py) = chart.backend_coord(&at(p));
            let (px, py) = (px - base.0, py - base.1);
            let (w, h) = plot.estimate_text_size(&p.label, &style)?;
            let (w, h) = (w as i32, h as i32);
            let candidates = [
                (12, -h / 2),
                (-w - 12, -h / 2),
                (-w / 2, -h - 12),
                (-w / 2, 12),
                (12, -h - 8),
                (12, 8),
                (-w - 12, -h - 8),
                (-w - 12, 8),
                (-w / 2, -2 * h - 14),
                (-w / 2, h + 14),
                (24, -h / 2 - h),
                (24, h / 2),
            ];
            let free = |(dx, dy): (i32, i32)| {
                let b = (px + dx, py + dy, px + dx + w, py + dy + h);
                let inside = b.0 >= 0 && b.1 >= 0 && b.2 <= width as i32 && b.3 <= height as i32;
                inside && taken.iter().all(|t| b.2 < t.0 || b.0 > t.2 || b.3 < t.1 || b.1 > t.3)
            };
            let (dx, dy) = candidates.into_iter().find(|c| free(*c)).unwrap_or(candidates[0]);
            taken.push((px + dx, py + dy, px + dx + w, py + dy + h));
            plot.draw(&Text::new(p.label.clone(), (px + dx, py + dy), style.clone()))?;
        }

        // The legend beside the plot.
        let mut names: Vec<&str> = self.points.iter().map(|p| p.strategy.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let items: Vec<(Mark, String)> =
            names.iter().map(|n| (Mark::Dot(strategy_color(n)), (*n).to_owned())).collect();
        super::draw_legend(&key, (10, 60), 0, &items)?;
        Ok(())
    }
}
