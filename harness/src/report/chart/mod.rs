//! Inline SVG charts, written by hand.
//!
//! Why not plotters' SVG backend: with its default features off it has no
//! font metrics (its "naive" text layout guesses widths from character
//! counts), its log and custom-tick axes would still need hand-made tick
//! sets for the HdrHistogram "nines" axis, and stacked bars would be
//! hand-drawn rectangles anyway. Writing the few primitives we need keeps
//! every label's placement under our control (ticks are chosen so they
//! cannot collide; legends sit in their own column), leaves text layout to
//! the browser (`text-anchor`, CSS fonts), and makes the output
//! deterministic, small and testable.
//!
//! Two chart kinds: [`LineChart`] (throughput vs threads, latency
//! distributions, RSS timelines; `line`) and [`BarChart`] (stacked
//! accounting bars, fragmentation ratios; `bar`), on the axes of `axis`.
//! Line charts also carry what a reader needs to judge a figure: interval
//! whiskers ([`Range`], cut at the frame with an arrowhead when they reach
//! off the chart), shaded bands ([`Band`]: the clock's resolution) and
//! reference lines ([`HLine`]: the floor). Both render to an `<svg>`
//! string with fixed `width`/`height` attributes and a `viewBox`, so CSS
//! can scale them down on narrow screens and print. All text is
//! XML-escaped here; the templates insert the markup unescaped.

use std::fmt::Write;

mod axis;
mod bar;
mod line;

pub use axis::{Axis, Scale};
pub use bar::{Bar, BarChart, Segment};
pub use line::{Band, Dash, HLine, Key, LineChart, Marker, Range, Series};

/// Width of every chart, in CSS pixels (the page column is wider).
pub const WIDTH: f64 = 700.0;
/// Height of a line chart.
pub const LINE_HEIGHT: f64 = 330.0;

const MARGIN_LEFT: f64 = 78.0;
const MARGIN_RIGHT: f64 = 170.0;
const MARGIN_TOP: f64 = 14.0;
const MARGIN_BOTTOM: f64 = 50.0;
const LEGEND_ROW: f64 = 18.0;
const LEGEND_MAX_CHARS: usize = 16;

/// Escapes text for SVG/HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= LEGEND_MAX_CHARS {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(LEGEND_MAX_CHARS - 1).collect();
        t.push('…');
        t
    }
}

/// Marker shapes for points of note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Filled circle.
    Dot,
    /// Hollow square.
    Square,
}

/// The plot area inside a chart's margins, in px.
struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

fn open_svg(s: &mut String, id: &str, title: &str, w: f64, h: f64) {
    let _ = write!(
        s,
        "<svg class=\"chart\" id=\"{id}\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" role=\"img\" aria-labelledby=\"{id}-title\"><title id=\"{id}-title\">{}</title>",
        esc(title)
    );
}

fn axis_titles(s: &mut String, f: &Frame, x_title: &str, y_title: &str) {
    let _ = write!(
        s,
        "<text class=\"axis-title\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        (f.x0 + f.x1) / 2.0,
        f.y1 + 42.0,
        esc(x_title)
    );
    if !y_title.is_empty() {
        let cy = (f.y0 + f.y1) / 2.0;
        let _ = write!(
            s,
            "<text class=\"axis-title\" x=\"16\" y=\"{cy:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {cy:.1})\">{}</text>",
            esc(y_title)
        );
    }
}

/// Writes a legend label (one row per `\n`-separated line, each
/// shortened to fit the legend column); returns the height it took.
fn legend_text(s: &mut String, x: f64, y: f64, label: &str) -> f64 {
    let mut dy = 0.0;
    for line in label.split('\n') {
        let short = shorten(line);
        if short != line {
            let _ = write!(
                s,
                "<text x=\"{x:.1}\" y=\"{:.1}\"><title>{}</title>{}</text>",
                y + dy + 4.0,
                esc(line),
                esc(&short)
            );
        } else {
            let _ = write!(
                s,
                "<text x=\"{x:.1}\" y=\"{:.1}\">{}</text>",
                y + dy + 4.0,
                esc(line)
            );
        }
        dy += LEGEND_ROW;
    }
    dy
}

fn marker(s: &mut String, shape: Shape, x: f64, y: f64, color: &str, title: Option<&str>) {
    let color = esc(color);
    let t = title
        .map(|t| format!("<title>{}</title>", esc(t)))
        .unwrap_or_default();
    match shape {
        Shape::Dot => {
            let _ = write!(
                s,
                "<circle class=\"marker\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"{color}\" stroke=\"#fff\" stroke-width=\"1.5\">{t}</circle>"
            );
        }
        Shape::Square => {
            let _ = write!(
                s,
                "<rect class=\"marker\" x=\"{:.1}\" y=\"{:.1}\" width=\"9\" height=\"9\" fill=\"#fff\" stroke=\"{color}\" stroke-width=\"2\">{t}</rect>",
                x - 4.5,
                y - 4.5
            );
        }
    }
}
