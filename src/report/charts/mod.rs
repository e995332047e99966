//! Charts, each drawn once as PNG and once as SVG from the same code.
//!
//! Text is drawn with DejaVu Sans, compiled into the program from
//! `assets/fonts/`, through plotters' `ab_glyph` feature: no system font or
//! font library is looked up, so a chart looks the same on any machine.
//! The SVG files name the family `sans-serif` and leave the glyphs to the
//! viewer.

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

/// The font family every chart asks for.
pub const FONT: &str = "sans-serif";

/// The font file, DejaVu Sans (Bitstream Vera licence, see
/// `assets/fonts/LICENSE-DejaVu.txt`).
static DEJAVU_SANS: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

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

    // The vector version, drawn by the same code.
    let svg = dir.join(format!("{stem}.svg"));
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        fig.draw(&root).map_err(|e| anyhow::anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    std::fs::metadata(&png).with_context(|| format!("writing {}", png.display()))?;
    Ok(())
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

/// Bytes in SI units (1 kB = 1000 B), short, for axis labels: a log axis
/// ticks at powers of ten, which read as round numbers only in SI units.
pub fn bytes_label(v: f64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut x = v;
    let mut u = 0;
    while x >= 1000.0 && u < UNITS.len() - 1 {
        x /= 1000.0;
        u += 1;
    }
    trim(x, &format!(" {}", UNITS[u]))
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
