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

/// Links closer than this on the x axis, pixels, share one label: their
/// thin lines are all but one.
const LABEL_GAP_PX: i32 = 8;

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
            .margin_right(40)
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
        // Labels, level and as large as the axis labels, each on a flag:
        // a dark line up from its link's higher mark and across to the
        // label, on a white backdrop. Links closer on the x axis than
        // LABEL_GAP_PX share one label. Labels stand in lanes stacked up
        // from just above the replication marks, right of their line, or
        // left of it where polling costs less than replication (left of
        // the crossing, where the polling line runs below the marks) or
        // near the right edge. Right-hand labels are placed from the
        // rightmost link leftwards, then left-hand ones the other way, each
        // in the lowest lane above the flags of the links whose lines its
        // text lies over, so that no label hides another's flag. A label
        // that would reach its link's polling mark above it goes above
        // that mark instead.
        let style = font(LABEL_PX);
        let base = plot.get_base_pixel();
        let px = |n: f64, v: f64| {
            let (x, y) = chart.backend_coord(&(n, v));
            (x - base.0, y - base.1)
        };
        let (plot_w, _) = plot.dim_in_pixel();
        let lane_px = LABEL_PX as i32 + 8;
        let floor_y = links
            .iter()
            .map(|l| px(l.clients_behind as f64, clip(l.replication_per_day)).1)
            .min()
            .unwrap_or(0)
            - 12;
        let mut groups: Vec<Vec<&series::LinkCost>> = Vec::new();
        for &l in &links {
            let x = px(l.clients_behind as f64, y.floor).0;
            match groups.last_mut() {
                Some(g) if x - px(g[0].clients_behind as f64, y.floor).0 < LABEL_GAP_PX => {
                    g.push(l)
                }
                _ => groups.push(vec![l]),
            }
        }
        struct Label {
            text: String,
            line_x: i32,
            /// The heights of the group's marks, pixels: its flag starts at
            /// the top of the highest mark below the label.
            marks: Vec<i32>,
            /// The polling mark, when it is above the lanes.
            ceiling: Option<i32>,
            size: (i32, i32),
            right: bool,
        }
        let mut labels = Vec::new();
        for group in &groups {
            let names: Vec<&str> = group.iter().map(|l| l.site.as_str()).collect();
            let text = names.join(", ");
            let (w, h) = plot.estimate_text_size(&text, &style)?;
            let (w, h) = (w as i32, h as i32);
            let line_x = px(group[0].clients_behind as f64, y.floor).0;
            let mark = |l: &series::LinkCost| {
                let n = l.clients_behind as f64;
                (px(n, clip(l.polling_per_day)).1, px(n, clip(l.replication_per_day)).1)
            };
            let poll_y = group.iter().map(|l| mark(l).0).min().unwrap_or(floor_y);
            let cheaper_polling = group.iter().all(|l| l.polling_per_day < l.replication_per_day);
            let fits_right = line_x + 12 + w < plot_w as i32 - 4;
            labels.push(Label {
                text,
                line_x,
                marks: group.iter().flat_map(|l| [mark(l).0, mark(l).1]).collect(),
                ceiling: (poll_y < floor_y).then_some(poll_y + 12),
                size: (w, h),
                right: fits_right && !cheaper_polling,
            });
        }
        let order: Vec<usize> = (0..labels.len())
            .rev()
            .filter(|i| labels[*i].right)
            .chain((0..labels.len()).filter(|i| !labels[*i].right))
            .collect();
        // (line x, lane) of the flags placed in lanes, and every box.
        let mut lanes: Vec<(i32, i32)> = Vec::new();
        let mut boxes: Vec<(i32, i32, i32, i32)> = Vec::new();
        let hits = |boxes: &[(i32, i32, i32, i32)], b: (i32, i32, i32, i32)| {
            boxes.iter().any(|o| b.0 < o.2 + 6 && b.2 + 6 > o.0 && b.1 < o.3 + 2 && b.3 + 2 > o.1)
        };
        for i in order {
            let l = &labels[i];
            let (w, h) = l.size;
            let left = if l.right { l.line_x + 12 } else { l.line_x - 12 - w };
            let mut lane = lanes
                .iter()
                .filter(|(x, _)| *x >= left - 8 && *x <= left + w + 8)
                .map(|(_, lane)| lane + 1)
                .max()
                .unwrap_or(0);
            let at = |lane: i32| {
                let bottom = floor_y - lane * lane_px;
                (left, bottom - h, left + w, bottom)
            };
            while hits(&boxes, at(lane)) {
                lane += 1;
            }
            let mut b = at(lane);
            if l.ceiling.is_some_and(|c| b.1 < c) {
                // No room below the polling mark: above it.
                let top = l.ceiling.unwrap_or(0) - 26;
                b = (left, top - h, left + w, top);
            } else {
                lanes.push((l.line_x, lane));
            }
            boxes.push(b);
            let mid = (b.1 + b.3) / 2;
            let edge = if l.right { b.0 - 3 } else { b.2 + 3 };
            let start = l.marks.iter().copied().filter(|m| *m > b.3).min().unwrap_or(b.3 + 8) - 8;
            let flag = [(l.line_x, start), (l.line_x, mid), (edge, mid)];
            plot.draw(&PathElement::new(flag, RGBColor(80, 80, 80).stroke_width(2)))?;
            let backdrop = [(b.0 - 3, b.1 - 2), (b.2 + 3, b.3 + 2)];
            plot.draw(&Rectangle::new(backdrop, RGBAColor(255, 255, 255, 0.85).filled()))?;
            plot.draw(&Text::new(l.text.clone(), (b.0, b.1), style.clone()))?;
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
