//! Fragmentation: the one ratio where it means something, why not
//! elsewhere, and the cross-checks beside it (our accounting, the
//! references' own counters).

use super::{threads_text, MIB};
use crate::report::chart::{Bar, BarChart, Segment};
use crate::report::format::{self, bytes};
use crate::report::group::Group;
use crate::report::interval;
use crate::report::palette;
use crate::report::view::{ChartView, MiniTable, SectionView};

/// The accounting categories, in stacking order, with their colours.
const CATEGORIES: &[(&str, &str)] = &[
    ("allocated blocks", "#3B6FB6"),
    ("available blocks", "#9CC3E6"),
    ("empty pools", "#F2B35B"),
    ("pool headers", "#8E6CC0"),
    ("quantization", "#E0605A"),
    ("arena alignment", "#7F8C8D"),
];

/// A subject's own counters as text, by its own names (all in bytes).
fn own_counters_text(c: &std::collections::BTreeMap<String, u64>) -> String {
    if c.is_empty() {
        return "—".into();
    }
    c.iter()
        .map(|(k, v)| format!("{k} {}", bytes(*v as f64)))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// Fragmentation: the one ratio where it means something, and the
/// cross-checks beside it.
pub fn fragmentation(g: &Group) -> SectionView {
    let t = g.max_threads();
    let mut bars = Vec::new();
    let mut ratio_bars = Vec::new();
    let mut notes = g.failures_at(t);
    for subject in g.subjects() {
        let Some(m) = g.metrics(subject, t) else {
            continue;
        };
        let Some(r) = m.representative() else {
            continue;
        };
        let color = palette::color(subject).to_string();
        for (phase, acct) in [
            ("at peak", &r.memory.accounting_at_peak),
            ("after drain", &r.memory.accounting_at_end),
        ] {
            let Some(a) = acct else { continue };
            let vals = [
                a.allocated_blocks,
                a.available_blocks,
                a.empty_pools,
                a.pool_headers,
                a.quantization,
                a.arena_alignment,
            ];
            bars.push(Bar {
                label: format!("{subject} · {phase}"),
                swatch: Some(color.clone()),
                segments: vals
                    .iter()
                    .zip(CATEGORIES)
                    .map(|(v, (name, c))| Segment {
                        value: *v as f64 / MIB,
                        color: c.to_string(),
                        title: format!("{subject} {phase}: {name} {}", bytes(*v as f64)),
                    })
                    .collect(),
                note: bytes(a.mapped as f64),
            });
        }
        if let Some(e) = m.fragmentation.filter(|e| e.median.is_finite()) {
            let i = interval::text(&e, format::times);
            ratio_bars.push(Bar {
                label: subject.to_string(),
                swatch: Some(color.clone()),
                segments: vec![Segment {
                    value: e.median,
                    color: color.clone(),
                    title: format!("{subject}: {}", interval::title(&e, format::times)),
                }],
                note: if i.is_empty() {
                    format::times(e.median)
                } else {
                    format!("{} {i}", format::times(e.median))
                },
            });
        }
    }
    let (table, missing) = fragmentation_table(g);
    notes.extend(missing);
    let mut charts = Vec::new();
    if !ratio_bars.is_empty() {
        let chart = BarChart {
            id: format!("{}-fragmentation-chart", g.id),
            title: format!("{}: fragmentation, {}", g.title(), threads_text(t)),
            axis_title: "resident above baseline ÷ requested live (×)".into(),
            fmt: format::tick,
            bars: ratio_bars,
            legend: Vec::new(),
            note_width: 150.0,
        };
        charts.push(ChartView {
            title: format!("Fragmentation · {}", threads_text(t)),
            svg: chart.to_svg(),
        });
    }
    if bars.is_empty() {
        notes.push(format!(
            "No subject here reports pool accounting at {} (only our pool allocators do).",
            threads_text(t)
        ));
    } else {
        let chart = BarChart {
            id: format!("{}-accounting", g.id),
            title: format!(
                "{}: where mapped memory goes, {}",
                g.title(),
                threads_text(t)
            ),
            axis_title: "bytes mapped (MiB)".into(),
            fmt: format::tick,
            bars,
            legend: CATEGORIES
                .iter()
                .map(|(n, c)| (n.to_string(), c.to_string()))
                .collect(),
            note_width: 90.0,
        };
        charts.push(ChartView {
            title: format!("Our accounting of mapped bytes · {}", threads_text(t)),
            svg: chart.to_svg(),
        });
    }
    SectionView {
        id: format!("{}-fragmentation", g.id),
        kind: "fragmentation".into(),
        title: "Fragmentation".into(),
        intro: format!(
            "One definition for every subject: resident bytes above the cell's baseline (RSS with the harness's own buffers already allocated and touched) divided by the bytes requested live, at the end of the measured phase. 1× is perfect, lower is better. Shown only where enough bytes are live for the ratio to mean something; the notes say why not elsewhere. Cross-checks: our pool allocators partition every mapped byte the way CPython's sys._debugmallocstats() does (the categories add up exactly to the bytes mapped), and the reference allocators report their own counters. Charts at {}; the table has every cell.",
            threads_text(t)
        ),
        charts,
        notes,
        tables: vec![table],
    }
}

/// Every cell's fragmentation with its cross-checks, and a note for each
/// cell without a ratio saying why.
fn fragmentation_table(g: &Group) -> (MiniTable, Vec<String>) {
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for t in g.threads() {
        for subject in g.subjects() {
            let Some(m) = g.metrics(subject, t) else {
                continue;
            };
            let Some(r) = m.representative() else {
                continue;
            };
            let mem = &r.memory;
            let ratio = match m.fragmentation.filter(|e| e.median.is_finite()) {
                Some(e) => {
                    let i = interval::text(&e, format::times);
                    format!("{} {i}", format::times(e.median))
                        .trim_end()
                        .to_string()
                }
                None => {
                    missing.push((
                        format!("{subject} at {}", threads_text(t)),
                        mem.fragmentation
                            .note
                            .clone()
                            .unwrap_or_else(|| "the run recorded none".into()),
                    ));
                    "— (see the notes)".into()
                }
            };
            rows.push(vec![
                subject.to_string(),
                t.to_string(),
                bytes(mem.requested_live_bytes as f64),
                bytes(mem.rss_at_end_bytes.saturating_sub(mem.rss_baseline_bytes) as f64),
                ratio,
                mem.fragmentation
                    .own_ratio
                    .map_or("—".into(), format::times),
                own_counters_text(&mem.own_counters),
            ]);
        }
    }
    let table = MiniTable {
        caption: "Every cell at the end of its measured phase (the median repeat; the ratio is the median over repeats). Our accounting: bytes our allocator holds from the OS by its own books ÷ requested live. Own counters: the subject's statistics by its own names (jemalloc's stats.*, glibc's mallinfo2, the null subject's bump pointer).".into(),
        head: [
            "subject",
            "threads",
            "requested live",
            "resident above baseline",
            "fragmentation",
            "our accounting",
            "own counters",
        ]
        .map(String::from)
        .to_vec(),
        text_last: true,
        rows,
    };
    (table, group_notes(missing))
}

/// One note per reason why cells have no ratio: notes that differ only in
/// their figures (each cell's live bytes, which the table shows) are
/// said once, for all their cells.
fn group_notes(missing: Vec<(String, String)>) -> Vec<String> {
    let shape = |note: &str| -> String {
        note.chars()
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .collect()
    };
    let mut groups: Vec<(String, Vec<String>, String)> = Vec::new();
    for (cell, note) in missing {
        let key = shape(&note);
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => g.1.push(cell),
            None => groups.push((key, vec![cell], note)),
        }
    }
    groups
        .into_iter()
        .map(|(_, cells, note)| {
            if cells.len() == 1 {
                format!("No fragmentation ratio for {}: {note}.", cells[0])
            } else {
                format!(
                    "No fragmentation ratio for {}: {note} (the figures are {}'s; the others alike, see the table).",
                    cells.join(", "),
                    cells[0]
                )
            }
        })
        .collect()
}
