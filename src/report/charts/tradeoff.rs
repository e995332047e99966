//! The sweep's trade-off chart: WAN bytes against p99 propagation delay,
//! one point per setting and strategy.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{AXIS_PX, DrawResult, Figure, LABEL_PX, TITLE_PX, font, strategy_color};

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
        let (x_lo, x_hi) = super::log_bounds(self.points.iter().map(|p| p.wan_bytes));
        let (y_lo, y_hi, ticks) = super::time_axis(self.points.iter().map(|p| p.p99_seconds));
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, font(TITLE_PX))
            .margin(24)
            .x_label_area_size(60)
            .y_label_area_size(110)
            .build_cartesian_2d(
                (x_lo..x_hi).log_scale(),
                (y_lo..y_hi).log_scale().with_key_points(ticks),
            )?;
        chart
            .configure_mesh()
            .x_desc("WAN bytes over the run (log scale)")
            .y_desc("p99 propagation delay (log scale)")
            .x_label_formatter(&|x| super::bytes_label(*x))
            .y_label_formatter(&|y| super::seconds_label(*y))
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(AXIS_PX))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;

        // Points by strategy, each labelled with its setting.
        let mut names: Vec<&str> = self.points.iter().map(|p| p.strategy.as_str()).collect();
        names.dedup();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let color = strategy_color(name);
            let mine = self.points.iter().filter(|p| p.strategy == name);
            chart
                .draw_series(mine.clone().map(|p| {
                    let at = (p.wan_bytes.max(x_lo), p.p99_seconds.max(y_lo));
                    EmptyElement::at(at)
                        + Circle::new((0, 0), 7, color.filled())
                        + Text::new(p.label.clone(), (10, -8), font(LABEL_PX - 3))
                }))?
                .label(name)
                .legend(move |(x, y)| Circle::new((x + 10, y), 6, color.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(font(LABEL_PX))
            .draw()
    }
}
