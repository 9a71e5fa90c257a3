//! Line charts: series with interval whiskers and markers, shaded bands
//! and reference lines under them, and a legend column on the right.

use std::fmt::Write;

use super::{
    axis_titles, esc, legend_text, marker, open_svg, Axis, Frame, Shape, LINE_HEIGHT,
    MARGIN_BOTTOM, MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, WIDTH,
};

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

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(v: f64) -> String {
        format!("{v}")
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
