//! Charts, each drawn once as PNG and once as SVG from the same code.
//!
//! Text is drawn with DejaVu Sans, compiled into the program from
//! `assets/fonts/`, through plotters' `ab_glyph` feature: no system font or
//! font library is looked up, so a chart looks the same on any machine.
//! Each SVG file names the same font through an `@font-face` whose source
//! is `DejaVuSans.ttf` in the SVG's own folder; [`render`] writes that file
//! (and its licence, which allows redistribution) once per folder, so a
//! browser draws the SVG with the glyphs the PNG has. One copy of the font
//! per report, not one per chart: embedding it would add a megabyte of
//! base64 to every SVG.

pub mod break_even;
pub mod delay;
pub mod local_day;
pub mod timeline;
pub mod tradeoff;
pub mod traffic;

use std::path::Path;
use std::sync::Once;

use anyhow::Context as _;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The font family every chart asks for: the bundled DejaVu Sans, under
/// its own name, which the SVG files define with `@font-face`.
pub const FONT: &str = "DejaVu Sans";

/// The font file, DejaVu Sans (Bitstream Vera licence, see
/// `assets/fonts/LICENSE-DejaVu.txt`).
static DEJAVU_SANS: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// The font's licence, written beside every copy of the font, as the
/// licence asks of every copy.
static DEJAVU_LICENCE: &str = include_str!("../../../assets/fonts/LICENSE-DejaVu.txt");

/// Title size, pixels.
pub const TITLE_PX: u32 = 30;
/// Axis description size, pixels.
pub const AXIS_PX: u32 = 22;
/// Tick label and legend size, pixels.
pub const LABEL_PX: u32 = 19;

/// A drawing result for backend `DB`.
pub type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A chart that can draw itself on any plotters backend.
pub trait Figure {
    /// Width and height, pixels.
    fn size(&self) -> (u32, u32);
    /// Draws on `root`, already filled white.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

/// Registers the bundled font once per process.
fn register_font() -> anyhow::Result<()> {
    static ONCE: Once = Once::new();
    let mut ok = true;
    ONCE.call_once(|| {
        ok = plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok();
    });
    anyhow::ensure!(ok, "the bundled font assets/fonts/DejaVuSans.ttf did not load");
    Ok(())
}

/// Writes `fig` as `<stem>.png` and `<stem>.svg` in `dir`.
pub fn render(fig: &impl Figure, dir: &Path, stem: &str) -> anyhow::Result<()> {
    register_font()?;
    let size = fig.size();

    // The bitmap.
    let png = dir.join(format!("{stem}.png"));
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        fig.draw(&root).map_err(|e| anyhow::anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    std::fs::metadata(&png).with_context(|| format!("writing {}", png.display()))?;

    // The vector version, drawn by the same code, with the font beside it.
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        fig.draw(&root).map_err(|e| anyhow::anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let svg = dir.join(format!("{stem}.svg"));
    write_font(dir)?;
    std::fs::write(&svg, link_font(&text)).with_context(|| format!("writing {}", svg.display()))
}

/// The font file's name beside the SVG files.
pub const FONT_FILE: &str = "DejaVuSans.ttf";

/// The font licence's name beside the font file.
pub const FONT_LICENCE_FILE: &str = "LICENSE-DejaVu.txt";

/// Writes the font and its licence into `dir`, unless already there with
/// the same bytes, for the SVG files' `@font-face`.
fn write_font(dir: &Path) -> anyhow::Result<()> {
    for (name, bytes) in [(FONT_FILE, DEJAVU_SANS), (FONT_LICENCE_FILE, DEJAVU_LICENCE.as_bytes())]
    {
        let path = dir.join(name);
        if std::fs::read(&path).is_ok_and(|old| old == bytes) {
            continue;
        }
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `svg` with an `@font-face` after its opening tag that takes DejaVu Sans
/// from [`FONT_FILE`] beside the SVG, so that `font-family="DejaVu Sans"`
/// means these glyphs in any viewer that loads relative files; others fall
/// back to a sans-serif font.
pub fn link_font(svg: &str) -> String {
    let Some(open) = svg.find("<svg") else { return svg.to_owned() };
    let Some(end) = svg[open..].find('>').map(|i| open + i + 1) else {
        return svg.to_owned();
    };
    let mut out = String::with_capacity(svg.len() + 256);
    out.push_str(&svg[..end]);
    out.push_str("\n<defs><style>@font-face{font-family:\"");
    out.push_str(FONT);
    out.push_str("\";src:url(\"");
    out.push_str(FONT_FILE);
    out.push_str("\") format(\"truetype\");}</style></defs>");
    out.push_str(&svg[end..]);
    out
}

/// The colour of a strategy, the same in every chart: red for the costly
/// baseline, orange for its conditional variant, blue for the design.
pub fn strategy_color(name: &str) -> RGBColor {
    match name {
        "flat" => RGBColor(214, 39, 40),
        "flat-conditional" => RGBColor(255, 127, 14),
        _ => RGBColor(31, 119, 180),
    }
}

/// Line width of a strategy, pixels: `flat` is drawn first and wider, so
/// where `flat-conditional` coincides with it (same polls, same delays) a
/// red edge still shows on both sides of the orange line.
pub fn line_width(name: &str) -> u32 {
    if name == "flat" { 7 } else { 3 }
}

/// A text style of `px` pixels.
pub fn font(px: u32) -> TextStyle<'static> {
    (FONT, px).into_font().color(&BLACK)
}

/// A log-scale axis range covering `values`: from a power of ten at or
/// below the smallest positive value to one at or above the largest.
/// Zeros cannot be drawn on a log axis; callers clamp them to the floor.
pub fn log_bounds(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, 0f64);
    for v in values.into_iter().filter(|v| *v > 0.0 && v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi == 0.0 {
        return (1.0, 10.0);
    }
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
    (lo, hi)
}

/// Whether values differ by orders of magnitude (the largest over the
/// smallest positive one is over 100), so a log axis is needed to see both.
pub fn wants_log(values: impl IntoIterator<Item = f64>) -> bool {
    let (lo, hi) = log_bounds(values);
    hi / lo > 100.0
}

/// A binary unit and its size in bytes, for labels that match the
/// KiB/MiB/GiB of `report.md`.
const BINARY_UNITS: [(&str, f64); 6] = [
    ("B", 1.0),
    ("KiB", 1024.0),
    ("MiB", 1_048_576.0),
    ("GiB", 1_073_741_824.0),
    ("TiB", 1_099_511_627_776.0),
    ("PiB", 1_125_899_906_842_624.0),
];

/// Bytes in binary units (1 KiB = 1024 B), short, for axis labels.
pub fn bytes_label(v: f64) -> String {
    let (name, size) =
        BINARY_UNITS.iter().rev().copied().find(|(_, size)| v >= *size).unwrap_or(BINARY_UNITS[0]);
    trim(v / size, &format!(" {name}"))
}

/// The ticks of a log byte axis: 1, 10 and 100 of each binary unit (1 B,
/// 10 B, 100 B, 1 KiB, 10 KiB, ...), which read as round numbers and are
/// a decade apart but for the 10.24 between 100 of a unit and 1 of the next.
fn byte_ticks() -> impl Iterator<Item = f64> {
    BINARY_UNITS.iter().flat_map(|&(_, size)| [size, size * 10.0, size * 100.0])
}

/// A log axis over values, with room for a floor where zeros are drawn.
#[derive(Clone, Debug)]
pub struct LogAxis {
    /// The floor: when some values are zero, one tick below the smallest
    /// positive value, where zeros (which a log axis cannot show) are
    /// drawn and labelled "none"; else the tick at or below the smallest.
    pub floor: f64,
    /// Whether the floor stands for zero.
    pub zeros: bool,
    /// Whether the floor also stands for positive values below it, drawn
    /// on it (see [`LogAxis::deepest`]); labelled "≤" the floor.
    pub below: bool,
    /// The top: the first tick at or above twice the largest value, so
    /// the largest is never on the frame.
    pub top: f64,
    /// Every tick from floor to top.
    pub ticks: Vec<f64>,
}

impl LogAxis {
    /// An axis on `ticks` (increasing) covering `values`.
    fn on(ticks: &[f64], values: impl IntoIterator<Item = f64>) -> LogAxis {
        let (mut lo, mut hi, mut zeros) = (f64::INFINITY, 0f64, false);
        for v in values.into_iter().filter(|v| v.is_finite()) {
            if v <= 0.0 {
                zeros = true;
                continue;
            }
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if hi == 0.0 {
            (lo, hi) = (ticks[1], ticks[1]);
        }
        let first = ticks.iter().rposition(|t| *t <= lo * 1.000_001).unwrap_or(0);
        let floor_at = if zeros { first.saturating_sub(1) } else { first };
        let last = ticks.iter().position(|t| *t >= hi * 2.0).unwrap_or(ticks.len() - 1);
        let last = last.max(floor_at + 2).min(ticks.len() - 1);
        LogAxis {
            zeros,
            below: false,
            floor: ticks[floor_at],
            top: ticks[last],
            ticks: ticks[floor_at..=last].to_vec(),
        }
    }

    /// A byte axis: ticks at 1, 10 and 100 of each binary unit.
    pub fn bytes(values: impl IntoIterator<Item = f64>) -> LogAxis {
        let ticks: Vec<f64> = byte_ticks().collect();
        LogAxis::on(&ticks, values)
    }

    /// A count axis: ticks at powers of ten from 0.1.
    pub fn count(values: impl IntoIterator<Item = f64>) -> LogAxis {
        let ticks: Vec<f64> = (-1..=15).map(|e| 10f64.powi(e)).collect();
        LogAxis::on(&ticks, values)
    }

    /// A share axis (0 to 1): ticks at powers of ten up to 100%.
    pub fn share(values: impl IntoIterator<Item = f64>) -> LogAxis {
        let ticks: Vec<f64> = (-12..=0).map(|e| 10f64.powi(e)).collect();
        // Shares always have a floor for hours without traffic.
        let mut axis = LogAxis::on(&ticks, values.into_iter().chain([0.0]));
        axis.top = 1.0;
        axis.ticks = ticks.into_iter().filter(|t| *t >= axis.floor).collect();
        axis
    }

    /// The axis no deeper than `decades` powers of ten below the one at
    /// or above `highest` (the largest value drawn, which may be larger
    /// than those the axis was made for): a floor further down would
    /// spend the height on values too small to matter beside the largest.
    /// Values below the raised floor are drawn on it, and its label says
    /// "≤" it.
    pub fn deepest(mut self, highest: f64, decades: i32) -> LogAxis {
        if !(highest > 0.0 && highest.is_finite()) {
            return self;
        }
        let limit = 10f64.powi(highest.log10().ceil() as i32 - decades);
        if self.floor < limit * (1.0 - 1e-9) {
            self.floor = limit;
            self.below = true;
            self.ticks.retain(|t| *t >= limit * (1.0 - 1e-9));
        }
        self
    }

    /// `v` as drawn: zeros and anything below the floor on the floor.
    pub fn clamp(&self, v: f64) -> f64 {
        v.max(self.floor)
    }

    /// Whether `v` is the floor.
    pub fn is_floor(&self, v: f64) -> bool {
        (v / self.floor - 1.0).abs() < 1e-6
    }

    /// The label of tick `v`: "none" on a floor that stands for zero,
    /// "≤" and `label(v)` on one that stands for smaller values too,
    /// `label(v)` elsewhere.
    pub fn label(&self, v: f64, label: fn(f64) -> String) -> String {
        if self.below && self.is_floor(v) {
            format!("≤{}", label(v))
        } else if self.zeros && self.is_floor(v) {
            "none".to_owned()
        } else {
            label(v)
        }
    }
}

/// The binary unit of `max` bytes and its size: what a linear byte axis
/// counts in, so that its ticks are round numbers of the unit.
pub fn binary_unit(max: f64) -> (&'static str, f64) {
    BINARY_UNITS.iter().rev().copied().find(|(_, size)| max >= *size).unwrap_or(BINARY_UNITS[0])
}

/// A number as short as it can be written: 4, 2.5, 0.25.
pub fn trim_number(x: f64) -> String {
    let text = format!("{x:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Durations a log time axis ticks at, seconds: the units people think
/// in rather than powers of ten.
const TIME_TICKS: [f64; 14] = [
    1.0,
    10.0,
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    3.0 * 3600.0,
    6.0 * 3600.0,
    12.0 * 3600.0,
    86_400.0,
    2.0 * 86_400.0,
    7.0 * 86_400.0,
    30.0 * 86_400.0,
];

/// A log time axis covering `values` (seconds): its bounds, on tick
/// values, and the ticks between them.
pub fn time_axis(values: impl IntoIterator<Item = f64>) -> (f64, f64, Vec<f64>) {
    let (mut lo, mut hi) = (f64::INFINITY, 0f64);
    for v in values.into_iter().filter(|v| *v > 0.0 && v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi == 0.0 {
        return (1.0, 60.0, vec![1.0, 10.0, 60.0]);
    }
    let lo = TIME_TICKS.iter().rev().copied().find(|t| *t <= lo).unwrap_or(TIME_TICKS[0]);
    let hi = TIME_TICKS.iter().copied().find(|t| *t >= hi).unwrap_or(TIME_TICKS[13]).max(lo * 10.0);
    let ticks = TIME_TICKS.iter().copied().filter(|t| *t >= lo && *t <= hi).collect();
    (lo, hi, ticks)
}

/// A count, short (1.2k, 3M), for axis labels.
pub fn count_label(v: f64) -> String {
    if v >= 1e9 {
        trim(v / 1e9, "G")
    } else if v >= 1e6 {
        trim(v / 1e6, "M")
    } else if v >= 1e3 {
        trim(v / 1e3, "k")
    } else {
        trim(v, "")
    }
}

fn trim(x: f64, unit: &str) -> String {
    if x == x.round() { format!("{x:.0}{unit}") } else { format!("{x:.1}{unit}") }
}

/// A duration in seconds as the largest sensible unit, for axis labels.
pub fn seconds_label(s: f64) -> String {
    if s >= 86_400.0 {
        trim(s / 86_400.0, " d")
    } else if s >= 3600.0 {
        trim(s / 3600.0, " h")
    } else if s >= 60.0 {
        trim(s / 60.0, " min")
    } else {
        trim(s, " s")
    }
}

/// A plain decimal percentage of a share (0.25 → "25%", 1e-5 → "0.001%"),
/// with as many decimals as the value needs and no exponent.
pub fn percent_label(share: f64) -> String {
    let pct = share * 100.0;
    if pct >= 1.0 || pct <= 0.0 {
        return format!("{pct:.0}%");
    }
    let digits = (-pct.log10()).ceil().max(0.0) as usize;
    let text = format!("{pct:.digits$}");
    // 0.30000 → 0.3: trailing zeros say nothing.
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// What a legend entry looks like.
#[derive(Clone, Copy, Debug)]
pub enum Mark {
    /// A line of a colour and width, pixels.
    Line(RGBColor, u32),
    /// A dashed line.
    Dashed(RGBColor, u32),
    /// A filled box.
    Fill(RGBAColor),
    /// A translucent box with an edge.
    Band(RGBAColor, RGBColor),
    /// A filled circle.
    Dot(RGBColor),
    /// A filled square.
    Square(RGBColor),
    /// A triangle, filled or hollow.
    Triangle(RGBColor, bool),
}

/// An upward triangle of half-height `r` pixels around its centre, closed
/// (the first point repeated), for markers plotters draws only filled.
pub fn triangle_points(r: i32) -> [(i32, i32); 4] {
    let half = r * 7 / 8;
    [(0, -r), (half, r * 2 / 3), (-half, r * 2 / 3), (0, -r)]
}

/// Width of a legend entry's symbol and the gap after it, pixels.
const MARK_PX: i32 = 30;

/// Draws `mark` with its centre-left at `(x, y)` (pixels of `area`).
pub fn draw_mark<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    mark: Mark,
    x: i32,
    y: i32,
) -> DrawResult<DB> {
    let w = MARK_PX - 6;
    match mark {
        Mark::Line(c, width) => {
            area.draw(&PathElement::new([(x, y), (x + w, y)], c.stroke_width(width.min(6))))
        }
        Mark::Dashed(c, width) => {
            for k in 0..3 {
                let a = x + k * 9;
                area.draw(&PathElement::new([(a, y), (a + 5, y)], c.stroke_width(width)))?;
            }
            Ok(())
        }
        Mark::Fill(c) => area.draw(&Rectangle::new([(x, y - 8), (x + w, y + 8)], c.filled())),
        Mark::Band(fill, edge) => {
            area.draw(&Rectangle::new([(x, y - 8), (x + w, y + 8)], fill.filled()))?;
            area.draw(&Rectangle::new([(x, y - 8), (x + w, y + 8)], edge.stroke_width(2)))
        }
        Mark::Dot(c) => area.draw(&Circle::new((x + w / 2, y), 6, c.filled())),
        Mark::Square(c) => {
            area.draw(&Rectangle::new([(x + w / 2 - 6, y - 6), (x + w / 2 + 6, y + 6)], c.filled()))
        }
        Mark::Triangle(c, filled) => {
            let at = (x + w / 2, y);
            let points: Vec<(i32, i32)> =
                triangle_points(8).iter().map(|(dx, dy)| (at.0 + dx, at.1 + dy)).collect();
            if filled {
                area.draw(&Polygon::new(points, c.filled()))
            } else {
                area.draw(&PathElement::new(points, c.stroke_width(2)))
            }
        }
    }
}

/// Draws a legend from `(x, y)`: entries in rows of at most `width`
/// pixels (one per row when `width` is 0); returns the height used.
pub fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x0, y0): (i32, i32),
    width: i32,
    items: &[(Mark, String)],
) -> Result<i32, DrawingAreaErrorKind<DB::ErrorType>> {
    let style = font(LABEL_PX);
    let row_px = LABEL_PX as i32 + 14;
    let (mut x, mut y) = (x0, y0);
    for (mark, label) in items {
        let (tw, _) = area.estimate_text_size(label, &style)?;
        let item_px = MARK_PX + tw as i32 + 28;
        if x > x0 && (width == 0 || x + item_px > x0 + width) {
            x = x0;
            y += row_px;
        }
        draw_mark(area, *mark, x, y + row_px / 2)?;
        let centred = style.pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new(label.clone(), (x + MARK_PX, y + row_px / 2), centred))?;
        x += item_px;
    }
    Ok(y + row_px - y0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_svg_takes_the_font_from_the_file_beside_it() {
        let svg = "<svg width=\"10\" height=\"10\" xmlns=\"http://www.w3.org/2000/svg\">\n\
                   <text font-family=\"DejaVu Sans\">x</text>\n</svg>\n";
        let out = link_font(svg);
        assert!(out.starts_with("<svg width=\"10\""));
        assert!(out.ends_with("<text font-family=\"DejaVu Sans\">x</text>\n</svg>\n"));
        assert_eq!(out.matches("@font-face").count(), 1);
        assert!(out.contains("font-family:\"DejaVu Sans\";src:url(\"DejaVuSans.ttf\")"));
    }

    #[test]
    fn the_font_and_its_licence_are_written_once_beside_the_charts() {
        let dir = tempfile::tempdir().unwrap();
        write_font(dir.path()).unwrap();
        assert_eq!(std::fs::read(dir.path().join(FONT_FILE)).unwrap(), DEJAVU_SANS);
        let licence = std::fs::read_to_string(dir.path().join(FONT_LICENCE_FILE)).unwrap();
        assert!(licence.contains("Bitstream Vera"));
        // A second chart in the same folder leaves the files as they are.
        write_font(dir.path()).unwrap();
        assert_eq!(std::fs::read(dir.path().join(FONT_FILE)).unwrap(), DEJAVU_SANS);
    }

    #[test]
    fn percentages_are_plain_decimals() {
        assert_eq!(percent_label(1.0), "100%");
        assert_eq!(percent_label(0.01), "1%");
        assert_eq!(percent_label(0.001), "0.1%");
        assert_eq!(percent_label(1e-6), "0.0001%");
        assert_eq!(percent_label(1e-10), "0.00000001%");
        for e in -12..=0 {
            let label = percent_label(10f64.powi(e));
            assert!(!label.contains('e'), "{label}");
        }
    }

    #[test]
    fn byte_labels_use_binary_units() {
        assert_eq!(bytes_label(1024.0), "1 KiB");
        assert_eq!(bytes_label(10.0 * 1_048_576.0), "10 MiB");
        assert_eq!(bytes_label(100.0), "100 B");
        assert_eq!(bytes_label(1.5 * 1_073_741_824.0), "1.5 GiB");
    }

    #[test]
    fn log_axes_leave_a_floor_and_headroom() {
        let axis = LogAxis::bytes([0.0, 300.0, 900_000_000.0]);
        assert_eq!(axis.floor, 10.0, "a tick below the smallest positive value");
        assert!(axis.top >= 2.0 * 900_000_000.0, "{axis:?}");
        assert_eq!(axis.label(axis.floor, bytes_label), "none");
        assert_eq!(axis.clamp(0.0), axis.floor);
        assert!(axis.ticks.windows(2).all(|w| w[0] < w[1]));
        let counts = LogAxis::count([0.0, 1.0, 20_000.0]);
        assert_eq!((counts.floor, counts.top), (0.1, 100_000.0));
        let shares = LogAxis::share([0.0, 1e-9, 0.3]);
        assert_eq!(shares.floor, 1e-10);
        let shallow = shares.deepest(0.6, 6);
        assert_eq!((shallow.floor, shallow.below), (1e-6, true));
        assert_eq!(shallow.ticks.first(), Some(&1e-6));
        assert_eq!(shallow.label(1e-6, percent_label), "≤0.0001%");
        assert_eq!(shallow.label(1e-5, percent_label), "0.001%");
        let kept = LogAxis::share([0.0, 1e-3]).deepest(0.6, 6);
        assert_eq!((kept.floor, kept.below), (1e-4, false), "{kept:?}");
        assert_eq!(kept.label(1e-4, percent_label), "none");
        let positive = LogAxis::bytes([300.0, 5000.0]);
        assert_eq!(positive.floor, 100.0, "without zeros the floor is a value's tick");
        assert_eq!(positive.label(positive.floor, bytes_label), "100 B");
    }

    #[test]
    fn a_linear_byte_axis_counts_in_the_unit_of_its_largest_value() {
        assert_eq!(binary_unit(9.0 * 1_048_576.0), ("MiB", 1_048_576.0));
        assert_eq!(binary_unit(100.0), ("B", 1.0));
        assert_eq!(trim_number(2.50), "2.5");
        assert_eq!(trim_number(4.0), "4");
    }
}
