//! Horizontal bar charts, stacked when a bar has several segments.

use std::fmt::Write;

use super::{axis_titles, esc, legend_text, open_svg, Axis, Frame, LEGEND_ROW, MARGIN_TOP, WIDTH};

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
