//! RSS over time at the most threads, with peak and after-drain marks.

use super::{threads_text, MIB};
use crate::report::chart::{Axis, Key, LineChart, Marker, Series, Shape};
use crate::report::format::{self, bytes, sig3};
use crate::report::group::Group;
use crate::report::interval;
use crate::report::palette;
use crate::report::view::{ChartView, MiniTable, SectionView};

/// RSS over time at the most threads.
///
/// Cells of fast and slow subjects run for very different times (the
/// `null` subject finishes in a blink, `gil` at many threads can take ten
/// times longer than `sharded`), so on a shared seconds axis the fast ones
/// are squeezed into the left edge. The x axis is therefore each cell's
/// progress (% of its own sampled run); the table gives the durations.
/// Timelines, drain and baseline are the median repeat's.
pub fn memory(g: &Group) -> SectionView {
    let t = g.max_threads();
    let mut series = Vec::new();
    let mut rows = Vec::new();
    let mut max_rss: f64 = 0.0;
    for subject in g.subjects() {
        let Some(m) = g.metrics(subject, t) else {
            continue;
        };
        let Some(r) = m.representative() else {
            continue;
        };
        let mem = &r.memory;
        let last_t = mem.rss_timeline.last().map(|s| s.t_s).unwrap_or(0.0);
        let peak = &m.peak_rss_bytes;
        let peak_i = interval::text(peak, bytes);
        rows.push(vec![
            subject.to_string(),
            if last_t > 0.0 {
                format!("{} s", sig3(last_t))
            } else {
                "—".into()
            },
            bytes(mem.rss_baseline_bytes as f64),
            if peak_i.is_empty() {
                bytes(peak.median)
            } else {
                format!("{} {peak_i}", bytes(peak.median))
            },
            bytes(mem.rss_after_drain_bytes as f64),
            bytes(mem.requested_live_bytes as f64),
        ]);
        if mem.rss_timeline.is_empty() || last_t <= 0.0 {
            continue;
        }
        let points: Vec<(f64, f64)> = mem
            .rss_timeline
            .iter()
            .map(|s| (100.0 * s.t_s / last_t, s.rss_bytes as f64 / MIB))
            .collect();
        let (peak_x, sampled_peak) = points.iter().copied().fold(
            (0.0, f64::NEG_INFINITY),
            |a, p| if p.1 > a.1 { p } else { a },
        );
        let peak = (mem.peak_rss_bytes as f64 / MIB).max(sampled_peak);
        let drained = mem.rss_after_drain_bytes as f64 / MIB;
        max_rss = max_rss.max(peak).max(drained);
        let mut s = Series::new(subject, palette::color(subject), points);
        s.title = format!(
            "{subject}: RSS over {} s, {}",
            sig3(last_t),
            threads_text(t)
        );
        s.markers.push(Marker {
            x: peak_x,
            y: peak,
            shape: Shape::Dot,
            title: format!("{subject} peak RSS {}", bytes(mem.peak_rss_bytes as f64)),
        });
        s.markers.push(Marker {
            x: 100.0,
            y: drained,
            shape: Shape::Square,
            title: format!(
                "{subject} after drain {}",
                bytes(mem.rss_after_drain_bytes as f64)
            ),
        });
        series.push(s);
    }
    let mut notes = g.failures_at(t);
    let mut charts = Vec::new();
    if series.is_empty() {
        notes.push(format!(
            "No RSS timeline was recorded at {}.",
            threads_text(t)
        ));
    } else {
        let chart = LineChart {
            id: format!("{}-rss", g.id),
            title: format!("{}: RSS over time, {}", g.title(), threads_text(t)),
            x: Axis::linear(
                "progress through the cell (% of its run)",
                0.0,
                100.0,
                &format::tick,
            ),
            y: Axis::linear("resident set (MiB)", 0.0, max_rss, &format::tick),
            series,
            keys: vec![
                Key::Marker(Shape::Dot, "peak RSS".into()),
                Key::Marker(Shape::Square, "after drain".into()),
            ],
            bands: Vec::new(),
            hlines: Vec::new(),
        };
        charts.push(ChartView {
            title: format!("RSS over time · {}", threads_text(t)),
            svg: chart.to_svg(),
        });
    }
    notes.push("Lines, baseline and after-drain figures are the median repeat's; peak RSS is the median over repeats with its interval. Peak is the process's getrusage maximum, which the sampler may miss between samples; after drain is RSS once every block was freed. Each line spans its own cell's run: see the durations above.".into());
    SectionView {
        id: format!("{}-memory", g.id),
        kind: "memory".into(),
        title: "Memory over time".into(),
        intro: format!("Resident set size of each cell's process, sampled while it ran, at {}. Lower is better; after drain shows what the allocator keeps.", threads_text(t)),
        charts,
        notes,
        tables: if rows.is_empty() {
            Vec::new()
        } else {
            vec![MiniTable {
                caption: String::new(),
                head: ["subject", "sampled for", "baseline", "peak RSS", "after drain", "requested live at end"]
                    .map(String::from)
                    .to_vec(),
                text_last: false,
                rows,
            }]
        },
    }
}
