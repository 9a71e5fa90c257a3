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
//! distributions, RSS timelines) and [`BarChart`] (stacked accounting bars,
//! fragmentation ratios). Line charts also carry what a reader needs to
//! judge a figure: interval whiskers ([`Range`], cut at the frame with an
//! arrowhead when they reach off the chart), shaded bands ([`Band`]: the
//! clock's resolution) and reference lines ([`HLine`]: the floor). Both render to an `<svg>` string with fixed
//! `width`/`height` attributes and a `viewBox`, so CSS can scale them down
//! on narrow screens and print. All text is XML-escaped here; the templates
//! insert the markup unescaped.

use std::fmt::Write;

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

/// How values map onto an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Linear,
    Log10,
    Log2,
    /// Percentiles (0..100) on HdrHistogram's axis: x = -log10(1 - p/100),
    /// so 90% is 1, 99% is 2, 99.9% is 3.
    Nines,
}

impl Scale {
    fn forward(self, v: f64) -> f64 {
        match self {
            Scale::Linear => v,
            Scale::Log10 => v.log10(),
            Scale::Log2 => v.log2(),
            Scale::Nines => -(1.0 - v / 100.0).log10(),
        }
    }
}

/// A labelled tick.
#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    pub value: f64,
    pub label: String,
}

/// One axis: its title (with unit), scale, domain and ticks.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub title: String,
    pub scale: Scale,
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<Tick>,
}

/// Above this max/min ratio a value axis switches to log scale.
pub const LOG_RATIO: f64 = 20.0;

impl Axis {
    /// A linear axis from `lo` to `hi`, widened to "nice" round ticks
    /// (1, 2 or 5 × 10^k apart, about five of them).
    pub fn linear(title: &str, lo: f64, hi: f64, fmt: &dyn Fn(f64) -> String) -> Axis {
        let (lo, hi) = sane_range(lo, hi);
        let step = nice_step((hi - lo) / 5.0);
        let start = (lo / step).floor() * step;
        let end = (hi / step).ceil() * step;
        let mut ticks = Vec::new();
        let n = ((end - start) / step).round() as i64;
        for i in 0..=n {
            let v = start + i as f64 * step;
            // Snap float noise (0.30000000000000004) before formatting.
            let v = (v / step).round() * step;
            ticks.push(Tick {
                value: v,
                label: fmt(v),
            });
        }
        Axis {
            title: title.to_string(),
            scale: Scale::Linear,
            lo: start,
            hi: end,
            ticks,
        }
    }

    /// A log10 axis covering `lo..hi` (both > 0), widened to 1-2-5 steps,
    /// ticked at decades, plus 2× and 5× when fewer than three decades
    /// would be labelled.
    pub fn log10(title: &str, lo: f64, hi: f64, fmt: &dyn Fn(f64) -> String) -> Axis {
        let lo = if lo > 0.0 { lo } else { hi.max(1.0) / 1000.0 };
        let hi = if hi > lo { hi } else { lo * 10.0 };
        let lo = round_125(lo, false);
        let hi = round_125(hi, true);
        let first = lo.log10().floor() as i32;
        let last = hi.log10().ceil() as i32;
        let decades: Vec<f64> = (first..=last)
            .map(|e| 10f64.powi(e))
            .filter(|v| *v >= lo * 0.999 && *v <= hi * 1.001)
            .collect();
        let mults: &[f64] = if decades.len() >= 3 {
            &[1.0]
        } else {
            &[1.0, 2.0, 5.0]
        };
        let mut ticks = Vec::new();
        for e in first..=last {
            for m in mults {
                let v = m * 10f64.powi(e);
                if v >= lo * 0.999 && v <= hi * 1.001 {
                    ticks.push(Tick {
                        value: v,
                        label: fmt(v),
                    });
                }
            }
        }
        Axis {
            title: title.to_string(),
            scale: Scale::Log10,
            lo,
            hi,
            ticks,
        }
    }

    /// A value axis from the data's range: log10 when max/min exceeds
    /// [`LOG_RATIO`] (and all values are positive), else linear from zero.
    pub fn auto(title: &str, values: &[f64], fmt: &dyn Fn(f64) -> String) -> Axis {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
        if finite.is_empty() {
            return Axis::linear(title, 0.0, 1.0, fmt);
        }
        if min > 0.0 && max / min > LOG_RATIO {
            let mut a = Axis::log10(title, min, max, fmt);
            a.title.push_str(" — log scale");
            a
        } else {
            Axis::linear(title, 0.0f64.min(min), max, fmt)
        }
    }

    /// A log2 axis ticked at exactly the thread counts present, so ticks
    /// are never crowded and never fractional.
    pub fn threads(title: &str, counts: &[usize]) -> Axis {
        let mut counts: Vec<usize> = counts.iter().copied().filter(|&c| c > 0).collect();
        counts.sort_unstable();
        counts.dedup();
        let (lo, hi) = match (counts.first(), counts.last()) {
            (Some(&a), Some(&b)) if a < b => (a as f64, b as f64),
            (Some(&a), _) => (a as f64 / 2.0, a as f64 * 2.0),
            _ => (1.0, 2.0),
        };
        // Half a step of padding on each side so end points are not on the frame.
        let pad = 2f64.powf(0.25);
        Axis {
            title: title.to_string(),
            scale: Scale::Log2,
            lo: lo / pad,
            hi: hi * pad,
            ticks: counts
                .iter()
                .map(|&c| Tick {
                    value: c as f64,
                    label: c.to_string(),
                })
                .collect(),
        }
    }

    /// HdrHistogram's percentile axis from 50% to `nines` nines
    /// (4 → 99.99%).
    pub fn nines(title: &str, nines: u32) -> Axis {
        let mut ticks = vec![Tick {
            value: 50.0,
            label: "50%".into(),
        }];
        for n in 1..=nines {
            let p = 100.0 * (1.0 - 10f64.powi(-(n as i32)));
            ticks.push(Tick {
                value: p,
                label: format!("{}%", trim_float(p, n as usize)),
            });
        }
        Axis {
            title: title.to_string(),
            scale: Scale::Nines,
            lo: 50.0,
            hi: 100.0 * (1.0 - 10f64.powi(-(nines as i32))),
            ticks,
        }
    }

    fn span(&self) -> (f64, f64) {
        (self.scale.forward(self.lo), self.scale.forward(self.hi))
    }

    /// Position of `v` as a fraction of the axis (0 = lo, 1 = hi); `None`
    /// for values the scale cannot place (log of zero, the 100th
    /// percentile on the nines axis).
    fn frac(&self, v: f64) -> Option<f64> {
        let (a, b) = self.span();
        let f = self.scale.forward(v);
        if !f.is_finite() {
            return None;
        }
        if (b - a).abs() < f64::EPSILON {
            return Some(0.5);
        }
        Some((f - a) / (b - a))
    }
}

fn sane_range(lo: f64, hi: f64) -> (f64, f64) {
    let lo = if lo.is_finite() { lo } else { 0.0 };
    let hi = if hi.is_finite() { hi } else { 1.0 };
    if hi > lo {
        (lo, hi)
    } else if hi == 0.0 {
        (lo, lo + 1.0)
    } else {
        (lo.min(0.0), hi.abs() * 1.1 + 1e-12)
    }
}

/// The 1-2-5 × 10^k step nearest above `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = if raw > 0.0 && raw.is_finite() {
        raw
    } else {
        1.0
    };
    let mag = 10f64.powf(raw.log10().floor());
    let n = raw / mag;
    let m = if n <= 1.0 {
        1.0
    } else if n <= 2.0 {
        2.0
    } else if n <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// Rounds to a 1-2-5 × 10^k value, down or up.
fn round_125(v: f64, up: bool) -> f64 {
    let mag = 10f64.powf(v.log10().floor());
    let steps = [1.0, 2.0, 5.0, 10.0];
    if up {
        steps
            .iter()
            .map(|s| s * mag)
            .find(|s| *s >= v * 0.999)
            .unwrap_or(10.0 * mag)
    } else {
        steps
            .iter()
            .rev()
            .map(|s| s * mag)
            .find(|s| *s <= v * 1.001)
            .unwrap_or(mag)
    }
}

fn trim_float(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

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

/// Line style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dash {
    Solid,
    Dashed,
    /// For what is not a measured value (percentiles below the clock's
    /// resolution).
    Dotted,
}

impl Dash {
    fn attr(self) -> &'static str {
        match self {
            Dash::Solid => "",
            Dash::Dashed => " stroke-dasharray=\"7 4\"",
            Dash::Dotted => " stroke-dasharray=\"2 3\"",
        }
    }
}

/// A vertical interval whisker at `x` (a median's interval).
#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    pub x: f64,
    pub lo: f64,
    pub hi: f64,
    /// Tooltip.
    pub title: String,
}

/// A shaded horizontal band across the plot, from `lo` to `hi` (clamped
/// to the axis).
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub lo: f64,
    pub hi: f64,
    pub fill: String,
    pub title: String,
}

/// A horizontal reference line at `y`.
#[derive(Clone, Debug, PartialEq)]
pub struct HLine {
    pub y: f64,
    pub color: String,
    pub dash: Dash,
    pub title: String,
}

/// Marker shapes for points of note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Filled circle.
    Dot,
    /// Hollow square.
    Square,
}

/// A marked point (peak RSS, after-drain RSS).
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    pub x: f64,
    pub y: f64,
    pub shape: Shape,
    /// Tooltip text.
    pub title: String,
}

/// One line.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend entry (several series may share one, e.g. local and remote
    /// frees of one subject).
    pub legend: String,
    /// Tooltip of the line.
    pub title: String,
    pub color: String,
    pub dash: Dash,
    pub points: Vec<(f64, f64)>,
    /// Draw a dot at each point (sparse data such as thread counts).
    pub dots: bool,
    /// Line width in px.
    pub width: f64,
    /// Interval whiskers.
    pub ranges: Vec<Range>,
    pub markers: Vec<Marker>,
}

impl Series {
    pub fn new(legend: &str, color: &str, points: Vec<(f64, f64)>) -> Series {
        Series {
            legend: legend.to_string(),
            title: legend.to_string(),
            color: color.to_string(),
            dash: Dash::Solid,
            points,
            dots: false,
            width: 2.0,
            ranges: Vec::new(),
            markers: Vec::new(),
        }
    }
}

/// Extra legend rows explaining line styles, markers, bands and
/// reference lines. A label may hold one `\n` to take two rows.
#[derive(Clone, Debug, PartialEq)]
pub enum Key {
    Line(Dash, String),
    Marker(Shape, String),
    /// A shaded band, by its fill.
    Band(String, String),
    /// A reference line, by colour and style.
    Rule(String, Dash, String),
}

/// A line chart with a legend column on the right.
#[derive(Clone, Debug, PartialEq)]
pub struct LineChart {
    /// Unique within the page (used for the clip path and title ids).
    pub id: String,
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    pub keys: Vec<Key>,
    /// Shaded bands, drawn under the data.
    pub bands: Vec<Band>,
    /// Reference lines, drawn under the data.
    pub hlines: Vec<HLine>,
}

struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
}

impl LineChart {
    fn px(&self, f: &Frame, v: f64) -> Option<f64> {
        self.x.frac(v).map(|t| f.x0 + t * (f.x1 - f.x0))
    }

    fn py(&self, f: &Frame, v: f64) -> Option<f64> {
        self.y.frac(v).map(|t| f.y1 - t * (f.y1 - f.y0))
    }

    /// `py` held inside the frame: values beyond an end of the axis
    /// (including ones the scale cannot place, such as zero on a log
    /// axis) sit on that end.
    fn py_clamped(&self, f: &Frame, v: f64) -> Option<f64> {
        if v.is_nan() {
            None
        } else if v <= self.y.lo {
            Some(f.y1)
        } else if v >= self.y.hi {
            Some(f.y0)
        } else {
            self.py(f, v).map(|y| y.clamp(f.y0, f.y1))
        }
    }

    /// An interval whisker with caps; an end beyond the frame is cut at
    /// the frame and drawn as an arrowhead pointing on.
    fn whisker(&self, s: &mut String, f: &Frame, r: &Range, color: &str) {
        let (Some(px), Some(a), Some(b)) = (
            self.px(f, r.x),
            self.py_clamped(f, r.hi),
            self.py_clamped(f, r.lo),
        ) else {
            return;
        };
        let cut_hi = r.hi > self.y.hi;
        let cut_lo = r.lo < self.y.lo;
        let _ = write!(
            s,
            "<g class=\"range\" stroke=\"{color}\"><title>{}</title><line x1=\"{px:.1}\" y1=\"{a:.1}\" x2=\"{px:.1}\" y2=\"{b:.1}\"/>",
            esc(&r.title)
        );
        for (y, cut, dir) in [(a, cut_hi, 1.0), (b, cut_lo, -1.0)] {
            if cut {
                let _ = write!(
                    s,
                    "<path d=\"M{:.1},{:.1} L{px:.1},{y:.1} L{:.1},{:.1}\" fill=\"none\"/>",
                    px - 4.0,
                    y + 5.0 * dir,
                    px + 4.0,
                    y + 5.0 * dir
                );
            } else {
                let _ = write!(
                    s,
                    "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>",
                    px - 4.0,
                    px + 4.0
                );
            }
        }
        s.push_str("</g>");
    }

    /// The `<svg>` element.
    pub fn to_svg(&self) -> String {
        let (w, h) = (WIDTH, LINE_HEIGHT);
        let f = Frame {
            x0: MARGIN_LEFT,
            x1: w - MARGIN_RIGHT,
            y0: MARGIN_TOP,
            y1: h - MARGIN_BOTTOM,
        };
        let id = esc(&self.id);
        let mut s = String::new();
        open_svg(&mut s, &id, &self.title, w, h);
        let _ = write!(
            s,
            "<defs><clipPath id=\"{id}-clip\"><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/></clipPath></defs>",
            f.x0 - 4.0,
            f.y0 - 4.0,
            f.x1 - f.x0 + 8.0,
            f.y1 - f.y0 + 8.0
        );
        // Grid and tick labels.
        s.push_str("<g class=\"grid\">");
        for t in &self.y.ticks {
            if let Some(y) = self.py(&f, t.value) {
                let _ = write!(
                    s,
                    "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>",
                    f.x0, f.x1
                );
            }
        }
        for t in &self.x.ticks {
            if let Some(x) = self.px(&f, t.value) {
                let _ = write!(
                    s,
                    "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>",
                    f.y0, f.y1
                );
            }
        }
        s.push_str("</g>");
        let _ = write!(
            s,
            "<rect class=\"frame\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
            f.x0,
            f.y0,
            f.x1 - f.x0,
            f.y1 - f.y0
        );
        s.push_str("<g class=\"ticks\">");
        let y_labels: Vec<(f64, &str)> = self
            .y
            .ticks
            .iter()
            .filter_map(|t| Some((self.py(&f, t.value)?, t.label.as_str())))
            .collect();
        for (y, label) in thin(&y_labels, |_| TICK_LINE) {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                f.x0 - 6.0,
                y + 4.0,
                esc(label)
            );
        }
        let x_labels: Vec<(f64, &str)> = self
            .x
            .ticks
            .iter()
            .filter_map(|t| Some((self.px(&f, t.value)?, t.label.as_str())))
            .collect();
        for (x, label) in thin(&x_labels, label_width) {
            let _ = write!(
                s,
                "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                f.y1 + 20.0,
                esc(label)
            );
        }
        s.push_str("</g>");
        axis_titles(&mut s, &f, &self.x.title, &self.y.title);
        // Data, clipped to the plot area.
        let _ = write!(s, "<g class=\"data\" clip-path=\"url(#{id}-clip)\">");
        for b in &self.bands {
            // A band's ends may lie off the axis (below a log axis's
            // bottom, say): clamp them to the frame.
            let (a, z) = (self.py_clamped(&f, b.hi), self.py_clamped(&f, b.lo));
            if let (Some(a), Some(z)) = (a, z) {
                if z - a > 0.5 {
                    let _ = write!(
                        s,
                        "<rect class=\"band\" x=\"{:.1}\" y=\"{a:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}</title></rect>",
                        f.x0,
                        f.x1 - f.x0,
                        z - a,
                        esc(&b.fill),
                        esc(&b.title)
                    );
                }
            }
        }
        for l in &self.hlines {
            if let Some(y) = self
                .py(&f, l.y)
                .filter(|y| *y >= f.y0 - 0.5 && *y <= f.y1 + 0.5)
            {
                let _ = write!(
                    s,
                    "<line class=\"rule\" x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{}\" stroke-width=\"1.5\"{}><title>{}</title></line>",
                    f.x0,
                    f.x1,
                    esc(&l.color),
                    l.dash.attr(),
                    esc(&l.title)
                );
            }
        }
        for ser in &self.series {
            let color = esc(&ser.color);
            for r in &ser.ranges {
                self.whisker(&mut s, &f, r, &color);
            }
            let pts = decimate(
                ser.points
                    .iter()
                    .filter_map(|&(x, y)| Some((self.px(&f, x)?, self.py(&f, y)?))),
            );
            if pts.len() > 1 {
                let _ = write!(
                    s,
                    "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"{}\"{} points=\"",
                    ser.width,
                    ser.dash.attr()
                );
                for (i, (x, y)) in pts.iter().enumerate() {
                    if i > 0 {
                        s.push(' ');
                    }
                    let _ = write!(s, "{x:.1},{y:.1}");
                }
                let _ = write!(s, "\"><title>{}</title></polyline>", esc(&ser.title));
            }
            if ser.dots || pts.len() == 1 {
                for (x, y) in &pts {
                    let _ = write!(
                        s,
                        "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.2\" fill=\"{color}\"/>"
                    );
                }
            }
            for m in &ser.markers {
                if let (Some(x), Some(y)) = (self.px(&f, m.x), self.py(&f, m.y)) {
                    marker(&mut s, m.shape, x, y, &ser.color, Some(&m.title));
                }
            }
        }
        s.push_str("</g>");
        // Legend: one row per distinct legend name, then the style keys.
        let mut rows: Vec<(&str, &str, Dash)> = Vec::new();
        for ser in &self.series {
            if !rows.iter().any(|(l, _, _)| *l == ser.legend) {
                rows.push((&ser.legend, &ser.color, ser.dash));
            }
        }
        let lx = f.x1 + 14.0;
        let mut ly = f.y0 + 10.0;
        s.push_str("<g class=\"legend\">");
        for (label, color, dash) in rows {
            let _ = write!(
                s,
                "<line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{}\" stroke-width=\"2.5\"{}/>",
                lx + 22.0,
                esc(color),
                dash.attr()
            );
            ly += legend_text(&mut s, lx + 28.0, ly, label);
        }
        if !self.keys.is_empty() {
            ly += 6.0;
        }
        for k in &self.keys {
            let rule = |s: &mut String, color: &str, d: Dash| {
                let _ = write!(
                    s,
                    "<line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{}\" stroke-width=\"2\"{}/>",
                    lx + 22.0,
                    esc(color),
                    d.attr()
                );
            };
            let label = match k {
                Key::Line(d, label) => {
                    rule(&mut s, "#444", *d);
                    label
                }
                Key::Rule(color, d, label) => {
                    rule(&mut s, color, *d);
                    label
                }
                Key::Marker(shape, label) => {
                    marker(&mut s, *shape, lx + 11.0, ly, "#444", None);
                    label
                }
                Key::Band(fill, label) => {
                    let _ = write!(
                        s,
                        "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"22\" height=\"12\" fill=\"{}\" stroke=\"#bbb\"/>",
                        ly - 6.0,
                        esc(fill)
                    );
                    label
                }
            };
            ly += legend_text(&mut s, lx + 28.0, ly, label);
        }
        s.push_str("</g></svg>");
        s
    }
}

/// Drops points within half a pixel of the previous kept one (dense
/// HdrHistogram distributions, long RSS timelines): the line looks the
/// same and the page stays small. The last point is always kept.
fn decimate(points: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let all: Vec<(f64, f64)> = points.collect();
    let mut kept: Vec<(f64, f64)> = Vec::with_capacity(all.len());
    for (i, &(x, y)) in all.iter().enumerate() {
        let last = i + 1 == all.len();
        let far = kept
            .last()
            .is_none_or(|&(a, b)| (x - a).abs() >= 0.5 || (y - b).abs() >= 0.5);
        if far || last {
            kept.push((x, y));
        }
    }
    kept
}

/// Vertical room one tick label needs, in px.
const TICK_LINE: f64 = 17.0;

/// A generous width estimate of a tick label at the tick font size
/// (digits and most letters are narrower than 8.5 px at 13.5 px).
fn label_width(label: &str) -> f64 {
    label.chars().count() as f64 * 8.5
}

/// Drops tick labels that would collide with the previous kept one
/// (dense thread counts such as 15 and 16 on a log axis): the grid line
/// stays, the label goes. `extent` is a label's size along the axis.
fn thin<'a>(labels: &[(f64, &'a str)], extent: impl Fn(&str) -> f64) -> Vec<(f64, &'a str)> {
    let mut kept: Vec<(f64, &'a str)> = Vec::new();
    for &(pos, label) in labels {
        let clear = kept
            .last()
            .is_none_or(|&(p, l)| (pos - p).abs() >= (extent(l) + extent(label)) / 2.0 + 6.0);
        if clear {
            kept.push((pos, label));
        }
    }
    kept
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

/// One coloured piece of a bar.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub value: f64,
    pub color: String,
    /// Tooltip.
    pub title: String,
}

/// One horizontal bar (possibly stacked).
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub label: String,
    /// Colour of the swatch before the label (the subject's colour).
    pub swatch: Option<String>,
    pub segments: Vec<Segment>,
    /// Text right of the bar (its total, a ratio).
    pub note: String,
}

/// Horizontal bars, stacked when a bar has several segments.
#[derive(Clone, Debug)]
pub struct BarChart {
    pub id: String,
    pub title: String,
    /// Value axis title with unit.
    pub axis_title: String,
    pub fmt: fn(f64) -> String,
    pub bars: Vec<Bar>,
    /// Legend rows (label, colour), shown under the bars.
    pub legend: Vec<(String, String)>,
    /// Room right of the longest bar for its note, px.
    pub note_width: f64,
}

const BAR_LABEL_W: f64 = 200.0;
const BAR_ROW: f64 = 26.0;
const BAR_THICK: f64 = 17.0;

impl BarChart {
    /// The `<svg>` element.
    pub fn to_svg(&self) -> String {
        let max_total = self
            .bars
            .iter()
            .map(|b| b.segments.iter().map(|g| g.value.max(0.0)).sum::<f64>())
            .fold(0.0, f64::max);
        let fmt = self.fmt;
        let axis = Axis::linear(&self.axis_title, 0.0, max_total, &fmt);
        let legend_rows = self.legend.len().div_ceil(3);
        let f = Frame {
            x0: BAR_LABEL_W,
            x1: WIDTH - self.note_width,
            y0: MARGIN_TOP,
            y1: MARGIN_TOP + self.bars.len().max(1) as f64 * BAR_ROW + 6.0,
        };
        let h = f.y1 + 46.0 + legend_rows as f64 * LEGEND_ROW + 4.0;
        let id = esc(&self.id);
        let mut s = String::new();
        open_svg(&mut s, &id, &self.title, WIDTH, h);
        let px = |v: f64| {
            axis.frac(v)
                .map(|t| f.x0 + t * (f.x1 - f.x0))
                .unwrap_or(f.x0)
        };
        s.push_str("<g class=\"grid\">");
        for t in &axis.ticks {
            let x = px(t.value);
            let _ = write!(
                s,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>",
                f.y0, f.y1
            );
        }
        s.push_str("</g><g class=\"ticks\">");
        for t in &axis.ticks {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                px(t.value),
                f.y1 + 17.0,
                esc(&t.label)
            );
        }
        s.push_str("</g>");
        let _ = write!(
            s,
            "<line class=\"axis\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/>",
            f.x0, f.y0, f.x0, f.y1
        );
        axis_titles(&mut s, &f, &axis.title, "");
        s.push_str("<g class=\"bars\">");
        for (i, b) in self.bars.iter().enumerate() {
            let top = f.y0 + 4.0 + i as f64 * BAR_ROW;
            let mid = top + BAR_THICK / 2.0;
            let mut label_x = f.x0 - 8.0;
            if let Some(c) = &b.swatch {
                // The swatch sits between the label and the bar.
                let _ = write!(
                    s,
                    "<rect class=\"swatch\" x=\"{:.1}\" y=\"{:.1}\" width=\"11\" height=\"11\" fill=\"{}\"/>",
                    f.x0 - 19.0,
                    mid - 5.5,
                    esc(c)
                );
                label_x = f.x0 - 25.0;
            }
            let _ = write!(
                s,
                "<text x=\"{label_x:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                mid + 4.0,
                esc(&b.label)
            );
            let mut acc = 0.0;
            for g in &b.segments {
                if g.value <= 0.0 {
                    continue;
                }
                let (a, z) = (px(acc), px(acc + g.value));
                acc += g.value;
                let _ = write!(
                    s,
                    "<rect x=\"{a:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{BAR_THICK:.1}\" fill=\"{}\"><title>{}</title></rect>",
                    (z - a).max(0.5),
                    esc(&g.color),
                    esc(&g.title)
                );
            }
            let _ = write!(
                s,
                "<text class=\"note\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                px(acc) + 6.0,
                mid + 4.0,
                esc(&b.note)
            );
        }
        s.push_str("</g><g class=\"legend\">");
        let col_w = (WIDTH - 40.0) / 3.0;
        for (i, (label, color)) in self.legend.iter().enumerate() {
            let x = 20.0 + (i % 3) as f64 * col_w;
            let y = f.y1 + 56.0 + (i / 3) as f64 * LEGEND_ROW;
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/>",
                y - 6.0,
                esc(color)
            );
            legend_text(&mut s, x + 18.0, y, label);
        }
        s.push_str("</g></svg>");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(v: f64) -> String {
        format!("{v}")
    }

    #[test]
    fn linear_ticks_are_round_and_cover_the_data() {
        let a = Axis::linear("y", 0.0, 7.3, &plain);
        assert_eq!(a.lo, 0.0);
        assert!(a.hi >= 7.3);
        let labels: Vec<&str> = a.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "2", "4", "6", "8"]);
    }

    #[test]
    fn log_ticks_are_decades_or_125() {
        let wide = Axis::log10("y", 30.0, 40_000.0, &plain);
        let v: Vec<f64> = wide.ticks.iter().map(|t| t.value).collect();
        assert_eq!(v, [100.0, 1000.0, 10_000.0]);
        let narrow = Axis::log10("y", 3.0, 90.0, &plain);
        let v: Vec<f64> = narrow.ticks.iter().map(|t| t.value).collect();
        assert_eq!(v, [2.0, 5.0, 10.0, 20.0, 50.0, 100.0]);
    }

    #[test]
    fn auto_switches_to_log_beyond_the_ratio() {
        assert_eq!(Axis::auto("y", &[1.0, 10.0], &plain).scale, Scale::Linear);
        assert_eq!(Axis::auto("y", &[1.0, 100.0], &plain).scale, Scale::Log10);
    }

    #[test]
    fn nines_axis_places_percentiles_at_integer_nines() {
        let a = Axis::nines("p", 4);
        let labels: Vec<&str> = a.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["50%", "90%", "99%", "99.9%", "99.99%"]);
        // x(50%) = log10(2), x(90%) = 1, x(99.99%) = 4.
        let f = a.frac(90.0).unwrap();
        assert!((f - (1.0 - 2f64.log10()) / (4.0 - 2f64.log10())).abs() < 1e-9);
        assert_eq!(a.frac(100.0), None);
    }

    #[test]
    fn dense_points_are_decimated_but_ends_kept() {
        let pts = (0..1000).map(|i| (i as f64 * 0.01, 5.0));
        let kept = decimate(pts);
        assert_eq!(kept.first(), Some(&(0.0, 5.0)));
        assert_eq!(kept.last(), Some(&(9.99, 5.0)));
        assert!(kept.len() <= 21, "{} points kept", kept.len());
    }

    #[test]
    fn crowded_tick_labels_are_thinned() {
        let labels = [(0.0, "1"), (10.0, "15"), (40.0, "16"), (45.0, "17")];
        let kept: Vec<&str> = thin(&labels, label_width).iter().map(|l| l.1).collect();
        assert_eq!(kept, ["1", "16"]);
    }

    #[test]
    fn text_is_escaped() {
        let c = LineChart {
            id: "c1".into(),
            title: "a<b & \"c\"".into(),
            x: Axis::threads("threads", &[1, 2]),
            y: Axis::linear("y", 0.0, 1.0, &plain),
            series: vec![Series::new(
                "<script>",
                "#000",
                vec![(1.0, 0.5), (2.0, 0.7)],
            )],
            keys: vec![],
            bands: vec![],
            hlines: vec![],
        };
        let svg = c.to_svg();
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("a&lt;b &amp; &quot;c&quot;"));
    }

    fn chart_with(series: Vec<Series>, bands: Vec<Band>, hlines: Vec<HLine>) -> String {
        LineChart {
            id: "c".into(),
            title: "t".into(),
            x: Axis::threads("threads", &[1, 2]),
            y: Axis::linear("y", 0.0, 10.0, &plain),
            series,
            keys: vec![
                Key::Band("#eee".into(), "two\nrows".into()),
                Key::Rule("#444".into(), Dash::Dashed, "floor".into()),
            ],
            bands,
            hlines,
        }
        .to_svg()
    }

    #[test]
    fn whiskers_have_caps_and_are_cut_with_an_arrow_off_the_axis() {
        let mut s = Series::new("a", "#123456", vec![(1.0, 5.0), (2.0, 6.0)]);
        s.ranges.push(Range {
            x: 1.0,
            lo: 4.0,
            hi: 6.0,
            title: "inside".into(),
        });
        s.ranges.push(Range {
            x: 2.0,
            lo: 5.0,
            hi: 1000.0,
            title: "off the top".into(),
        });
        let svg = chart_with(vec![s], vec![], vec![]);
        assert_eq!(svg.matches("<g class=\"range\"").count(), 2);
        // The first: a stem and two caps; the second: a stem, an arrow
        // at the top, a cap at the bottom.
        let first = &svg[svg.find("<title>inside</title>").unwrap()..];
        let first = &first[..first.find("</g>").unwrap()];
        assert_eq!(first.matches("<line").count(), 3);
        let second = &svg[svg.find("<title>off the top</title>").unwrap()..];
        let second = &second[..second.find("</g>").unwrap()];
        assert_eq!(second.matches("<path").count(), 1);
        assert_eq!(second.matches("<line").count(), 2);
        // The arrow's apex is on the frame's top edge.
        assert!(second.contains(&format!(",{MARGIN_TOP:.1} L")), "{second}");
    }

    #[test]
    fn bands_clamp_to_the_frame_and_rules_and_two_row_keys_draw() {
        let band = Band {
            lo: f64::NEG_INFINITY,
            hi: 2.0,
            fill: "#eee".into(),
            title: "unresolved".into(),
        };
        let rule = HLine {
            y: 0.0,
            color: "#444".into(),
            dash: Dash::Dashed,
            title: "the floor".into(),
        };
        let svg = chart_with(vec![], vec![band], vec![rule]);
        // The band runs from the bottom of the frame up to y = 2 of 10.
        let bottom = LINE_HEIGHT - MARGIN_BOTTOM;
        let h = (bottom - MARGIN_TOP) * 0.2;
        assert!(
            svg.contains(&format!(
                "y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#eee\"",
                bottom - h,
                WIDTH - MARGIN_RIGHT - MARGIN_LEFT
            )),
            "{svg}"
        );
        assert!(svg.contains("class=\"rule\""));
        assert!(svg.contains(">two</text>") && svg.contains(">rows</text>"));
        // A rule off the axis is not drawn.
        let off = HLine {
            y: -5.0,
            color: "#444".into(),
            dash: Dash::Solid,
            title: String::new(),
        };
        assert!(!chart_with(vec![], vec![], vec![off]).contains("class=\"rule\""));
    }
}
