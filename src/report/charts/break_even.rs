//! Chart 6: polling against replication on one WAN link — bytes per day
//! against the number of clients behind the link.
//!
//! Polling costs grow with the clients (a straight line on log-log axes);
//! one local server replicating for them costs the same whatever their
//! number (a flat line). Where the lines cross is the break-even; the
//! scenario's own links are drawn as points on both.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{AXIS_PX, DrawResult, Figure, LABEL_PX, LogAxis, Mark, TITLE_PX, font, strategy_color};
use crate::report::Comparison;
use crate::report::series::{self, BreakEven};

/// Grey of the content-only line, the vendor arithmetic.
const CONTENT: RGBColor = RGBColor(120, 120, 120);

/// Links closer than this on the x axis, pixels, share one label: a
/// label written upwards is about this thick.
const LABEL_GAP_PX: i32 = 22;

/// The chart.
pub struct BreakEvenChart {
    title: String,
    data: Option<BreakEven>,
}

impl BreakEvenChart {
    /// The chart of `cmp`; empty (a note) without the runs it needs.
    pub fn new(cmp: &Comparison<'_>) -> BreakEvenChart {
        BreakEvenChart {
            title: format!(
                "{}: WAN bytes per day on one link, polling against replication",
                cmp.scenario.name
            ),
            data: series::break_even(cmp),
        }
    }
}

impl Figure for BreakEvenChart {
    fn size(&self) -> (u32, u32) {
        (1400, 850)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let root = root.margin(12, 0, 0, 0).titled(&self.title, font(TITLE_PX))?;
        let Some(d) = &self.data else {
            let text = "no WAN link with clients behind it, or no flat-conditional and tiered runs";
            return root.draw(&Text::new(text, (60, 60), font(AXIS_PX)));
        };
        let (plot, key) = root.split_vertically(root.dim_in_pixel().1 - 90);

        // Clients from 1 to a decade past the crossing and every site.
        let most = d.links.iter().map(|l| l.clients_behind as f64).fold(1.0, f64::max);
        let vendor = d.content_replicated / d.content_per_client.max(1e-9);
        let right =
            [most, d.crossing, vendor].into_iter().filter(|v| v.is_finite()).fold(10.0, f64::max);
        let x_hi = 10f64.powf((right * 3.0).log10().ceil());
        let poll = |n: f64| d.polling_per_client * n;
        let content = |n: f64| d.content_per_client * n;
        let values = d
            .links
            .iter()
            .flat_map(|l| [l.polling_per_day, l.replication_per_day])
            .chain([poll(1.0), poll(x_hi), d.replication, content(1.0)]);
        let y = LogAxis::bytes(values);
        let mut chart = ChartBuilder::on(&plot)
            .margin(24)
            .x_label_area_size(60)
            .y_label_area_size(120)
            .build_cartesian_2d(
                (1f64..x_hi).log_scale(),
                (y.floor..y.top).log_scale().with_key_points(y.ticks.clone()),
            )?;
        chart
            .configure_mesh()
            .x_desc("clients behind the link (log scale)")
            .y_desc("WAN bytes per day on the link (log scale)")
            .x_label_formatter(&|x| super::count_label(*x))
            .y_label_formatter(&|v| super::bytes_label(*v))
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(AXIS_PX))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;

        // The two lines, and content alone as the vendors count it.
        let xs: Vec<f64> = (0..=60).map(|i| x_hi.powf(f64::from(i) / 60.0)).collect();
        let orange = strategy_color("flat-conditional");
        let blue = strategy_color("tiered");
        let clip = |v: f64| v.clamp(y.floor, y.top);
        chart.draw_series(DashedLineSeries::new(
            xs.iter().map(|&n| (n, clip(content(n)))),
            10,
            8,
            CONTENT.stroke_width(2),
        ))?;
        chart.draw_series(LineSeries::new(
            xs.iter().map(|&n| (n, clip(poll(n)))),
            orange.stroke_width(4),
        ))?;
        chart.draw_series(LineSeries::new(
            [(1.0, d.replication), (x_hi, d.replication)],
            blue.stroke_width(4),
        ))?;

        // The crossing, marked and labelled.
        if d.crossing.is_finite() && d.crossing >= 1.0 && d.crossing <= x_hi {
            let at = (d.crossing, d.replication);
            chart.draw_series(std::iter::once(PathElement::new(
                [(d.crossing, y.floor), at],
                BLACK.stroke_width(1),
            )))?;
            let label = format!(
                "break-even: {} clients",
                crate::report::markdown::thousands(d.crossing.ceil() as u64,)
            );
            chart.draw_series(std::iter::once(
                EmptyElement::at(at)
                    + Circle::new((0, 0), 9, BLACK.stroke_width(3))
                    + Text::new(label, (16, 14), font(LABEL_PX)),
            ))?;
        }

        if d.crossing < 1.0 {
            let text = "break-even below one client: replication costs less on any link";
            plot.draw(&Text::new(text, (170, 90), font(AXIS_PX)))?;
        }

        // The scenario's links: measured polling and replication cost,
        // joined by a thin line.
        let mut links: Vec<_> = d.links.iter().collect();
        links.sort_by_key(|l| l.clients_behind);
        for l in &links {
            let n = l.clients_behind as f64;
            chart.draw_series(std::iter::once(PathElement::new(
                [(n, clip(l.polling_per_day)), (n, clip(l.replication_per_day))],
                RGBColor(150, 150, 150).stroke_width(1),
            )))?;
            chart.draw_series(std::iter::once(Circle::new(
                (n, clip(l.polling_per_day)),
                7,
                orange.filled(),
            )))?;
            chart.draw_series(std::iter::once(
                EmptyElement::at((n, clip(l.replication_per_day)))
                    + Rectangle::new([(-7, -7), (7, 7)], blue.filled()),
            ))?;
        }
        // Labels, written up along each link's thin line. Links closer on
        // the x axis than a label is thick share one label, so that no two
        // labels overlap. A label starts above the lower mark, beside the
        // line, or above the higher one when the marks are too close for
        // it to fit between them without crossing a mark or a line.
        let style = font(LABEL_PX - 3);
        let mut labels = Vec::new();
        {
            let px = |n: f64, v: f64| chart.backend_coord(&(n, v));
            let mut k = 0;
            while k < links.len() {
                let x0 = px(links[k].clients_behind as f64, y.floor).0;
                let group: Vec<_> = links[k..]
                    .iter()
                    .take_while(|l| px(l.clients_behind as f64, y.floor).0 - x0 < LABEL_GAP_PX)
                    .collect();
                let names: Vec<&str> = group.iter().map(|l| l.site.as_str()).collect();
                let text = names.join(", ");
                let marks = |pick: fn(f64, f64) -> f64, start: f64| {
                    group
                        .iter()
                        .map(|l| clip(pick(l.polling_per_day, l.replication_per_day)))
                        .fold(start, pick)
                };
                let (low, high) = (marks(f64::min, f64::INFINITY), marks(f64::max, 0.0));
                let n = links[k].clients_behind as f64;
                let (text_px, _) = plot.estimate_text_size(&text, &style)?;
                let room = px(n, low).1 - px(n, high).1;
                let at = if room > text_px as i32 + 30 { low } else { high };
                labels.push(((n, at), text));
                k += group.len();
            }
        }
        let rotated = style.transform(FontTransform::Rotate270);
        for (at, text) in labels {
            chart.draw_series(std::iter::once(
                EmptyElement::at(at) + Text::new(text, (3, -14), rotated.clone()),
            ))?;
        }

        let items = [
            (Mark::Line(orange, 4), "polling: flat-conditional, per client × clients".to_owned()),
            (Mark::Line(blue, 4), "replication: tiered, one local server".to_owned()),
            (Mark::Dashed(CONTENT, 2), "content alone × clients (vendor arithmetic)".to_owned()),
            (Mark::Dot(orange), "a site's link, polling (measured)".to_owned()),
            (Mark::Square(blue), "the same link, replication (measured)".to_owned()),
        ];
        super::draw_legend(&key, (150, 4), 1220, &items)?;
        Ok(())
    }
}
