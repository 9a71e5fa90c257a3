//! The chart sections of one workload: throughput, latency, memory,
//! fragmentation.
//!
//! Each builder turns a [`Group`]'s cells into a [`SectionView`] with at
//! least one chart. Choices that shape what a reader sees:
//! - throughput is plotted against threads on a log2 axis ticked at the
//!   thread counts run, y on log scale when the values span more than
//!   [`super::chart::LOG_RATIO`]; repeats appear as min–max bars; the `null`
//!   subject's per-op time is reported as the harness's own cost;
//! - latency and memory would need one chart per thread count to show
//!   everything; the report shows the extremes (1 thread and the most
//!   threads) for latency and the most threads for memory, where
//!   contention and footprint are largest; the summary table carries every
//!   thread count;
//! - fragmentation bars use the accounting our subjects report (exactly
//!   partitioning the mapped bytes), and a ratio bar for every subject that
//!   reports one.

use crate::results::CellMetrics;

use super::chart::{Axis, Bar, BarChart, Dash, Key, LineChart, Marker, Segment, Series, Shape};
use super::format::{self, bytes, ns, sig3, throughput_unit};
use super::group::Group;
use super::palette;
use super::view::{ChartView, MiniTable, SectionView};

const MIB: f64 = 1024.0 * 1024.0;

/// Throughput vs threads.
pub fn throughput(g: &Group) -> SectionView {
    let threads = g.threads();
    let mut all = Vec::new();
    for c in &g.cells {
        if let Some(m) = c.metrics() {
            all.push(m.ops_per_sec.median);
            all.push(m.ops_per_sec.high);
        }
    }
    let unit = throughput_unit(all.iter().copied().fold(0.0, f64::max));
    let scaled: Vec<f64> = all.iter().map(|v| v / unit.div).collect();
    let y = Axis::auto(
        &format!("throughput ({})", unit.name),
        &scaled,
        &format::tick,
    );
    let mut series = Vec::new();
    for subject in g.subjects() {
        let mut s = Series::new(subject, palette::color(subject), Vec::new());
        s.dots = true;
        for &t in &threads {
            if let Some(m) = g.metrics(subject, t) {
                let e = m.ops_per_sec;
                s.points.push((t as f64, e.median / unit.div));
                if e.n > 1 {
                    s.ranges
                        .push((t as f64, e.low / unit.div, e.high / unit.div));
                }
            }
        }
        s.title = format!("{subject}: {}", points_text(&s.points, unit.name));
        series.push(s);
    }
    let mut notes = Vec::new();
    let null_costs: Vec<String> = threads
        .iter()
        .filter_map(|&t| {
            let m = g.metrics("null", t)?;
            (m.ops_per_sec.median > 0.0).then(|| {
                format!(
                    "{} at {t} thread{}",
                    ns(m.ns_per_op.median),
                    if t == 1 { "" } else { "s" }
                )
            })
        })
        .collect();
    if null_costs.is_empty() {
        notes.push(
            "The null subject did not run here, so the harness's own cost per operation is not known for this workload."
                .into(),
        );
    } else {
        notes.push(format!(
            "Harness cost: the null subject (the same loop, no allocator work) spends {} per operation per thread; every subject's time per operation includes it.",
            null_costs.join(", ")
        ));
    }
    if series.iter().any(|s| !s.ranges.is_empty()) {
        notes.push("Vertical bars: the interval of the median over repeats (95% from 6 repeats on, else the range of the repeats); points: the median.".into());
    }
    for &t in &threads {
        notes.extend(g.failures_at(t));
    }
    let chart = LineChart {
        id: format!("{}-throughput-chart", g.id),
        title: format!("{}: throughput vs threads", g.title()),
        x: Axis::threads("threads", &threads),
        y,
        series,
        keys: Vec::new(),
    };
    SectionView {
        id: format!("{}-throughput", g.id),
        kind: "throughput".into(),
        title: "Throughput vs threads".into(),
        intro: "Operations (allocations, frees and reallocations) per second across all threads, higher is better.".into(),
        charts: vec![ChartView {
            title: chart.title.clone(),
            svg: chart.to_svg(),
        }],
        notes,
        table: None,
    }
}

fn points_text(points: &[(f64, f64)], unit: &str) -> String {
    points
        .iter()
        .map(|(t, v)| format!("{t}t {} {unit}", sig3(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Percentile points of one latency kind, as (percentile, ns).
fn latency_points(m: &CellMetrics, kind: &str) -> Option<Vec<(f64, f64)>> {
    let lat = m.latency.get(kind)?;
    if lat.count == 0 {
        return None;
    }
    let src = if lat.distribution.is_empty() {
        &lat.percentiles
    } else {
        &lat.distribution
    };
    let pts: Vec<(f64, f64)> = src
        .iter()
        .filter(|p| p.percentile >= 50.0 && p.percentile < 100.0 && p.ns > 0.0)
        .map(|p| (p.percentile, p.ns))
        .collect();
    (!pts.is_empty()).then_some(pts)
}

/// How many nines the axis needs: at least 4 (99.99%), more if the data
/// go further, at most 6.
fn nines_needed(series: &[Series]) -> u32 {
    let top = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(0.0, f64::max);
    let n = -(1.0 - top / 100.0).log10();
    if n.is_finite() {
        (n - 1e-6).ceil().clamp(4.0, 6.0) as u32
    } else {
        4
    }
}

/// One latency kind drawn in a panel, with its line style and the
/// legend key for that style (empty: no key needed).
struct Layer {
    kind: &'static str,
    dash: Dash,
    key: &'static str,
}

/// Latency panels: frees overlay local (solid) and remote (dashed).
const PANELS: &[(&str, &[Layer])] = &[
    (
        "alloc",
        &[Layer {
            kind: "alloc",
            dash: Dash::Solid,
            key: "",
        }],
    ),
    (
        "free",
        &[
            Layer {
                kind: "free_local",
                dash: Dash::Solid,
                key: "local free",
            },
            Layer {
                kind: "free_remote",
                dash: Dash::Dashed,
                key: "remote free",
            },
        ],
    ),
    (
        "realloc",
        &[Layer {
            kind: "realloc",
            dash: Dash::Solid,
            key: "",
        }],
    ),
    (
        "GIL wait",
        &[Layer {
            kind: "gil_wait",
            dash: Dash::Solid,
            key: "",
        }],
    ),
];

/// Latency percentile distributions, HdrHistogram style.
pub fn latency(g: &Group) -> SectionView {
    let threads = g.threads();
    let mut shown = vec![threads.first().copied().unwrap_or(1)];
    if g.max_threads() != shown[0] {
        shown.push(g.max_threads());
    }
    let mut charts = Vec::new();
    let mut notes = Vec::new();
    for &t in &shown {
        for &(panel, kinds) in PANELS {
            let mut series = Vec::new();
            let mut keys = Vec::new();
            for subject in g.subjects() {
                let Some(m) = g.metrics(subject, t) else {
                    continue;
                };
                for &Layer { kind, dash, key } in kinds {
                    if let Some(points) = latency_points(m, kind) {
                        let mut s = Series::new(subject, palette::color(subject), points);
                        s.dash = dash;
                        s.title = format!("{subject} {kind}, {t} threads");
                        series.push(s);
                        if !key.is_empty()
                            && !keys
                                .iter()
                                .any(|k| matches!(k, Key::Line(d, _) if *d == dash))
                        {
                            keys.push(Key::Line(dash, key.to_string()));
                        }
                    }
                }
            }
            if series.is_empty() {
                continue;
            }
            // A style key is only worth a legend row when both styles appear.
            if keys.len() < 2 {
                keys.clear();
            }
            let values: Vec<f64> = series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .collect();
            let y = Axis::auto("latency", &values, &format::ns_tick);
            let x = Axis::nines("percentile", nines_needed(&series));
            let chart = LineChart {
                id: format!("{}-lat-{}-t{t}", g.id, super::group::slug(panel)),
                title: format!(
                    "{}: {panel} latency, {t} thread{}",
                    g.title(),
                    if t == 1 { "" } else { "s" }
                ),
                x,
                y,
                series,
                keys,
            };
            charts.push(ChartView {
                title: format!(
                    "{panel} latency · {t} thread{}",
                    if t == 1 { "" } else { "s" }
                ),
                svg: chart.to_svg(),
            });
        }
        notes.extend(g.failures_at(t));
    }
    if let Some(r) = g
        .cells
        .iter()
        .find_map(|c| c.metrics().and_then(|m| m.representative()))
    {
        if r.sampling.one_in > 0 {
            notes.push(format!(
                "One operation in {} on average was timed, at random intervals, in a latency pass of its own; the clock's overhead ({} per reading pair) is subtracted, and percentiles closer to it than its resolution ({}) are marked as below resolution.",
                r.sampling.one_in,
                ns(r.clock.overhead_ns),
                ns(r.clock.resolution_ns)
            ));
        }
    }
    SectionView {
        id: format!("{}-latency", g.id),
        kind: "latency".into(),
        title: "Latency distribution".into(),
        intro: format!(
            "Time per operation by percentile, lower is better. The x axis is HdrHistogram's: each step right is one more nine (90%, 99%, 99.9%, …), so the tail gets the room. Shown at {}; the summary table has every thread count.",
            shown
                .iter()
                .map(|t| format!("{t} thread{}", if *t == 1 { "" } else { "s" }))
                .collect::<Vec<_>>()
                .join(" and ")
        ),
        charts,
        notes,
        table: None,
    }
}

/// RSS over time at the most threads.
///
/// Cells of fast and slow subjects run for very different times (the
/// `null` subject finishes in a blink, `gil` at many threads can take ten
/// times longer than `sharded`), so on a shared seconds axis the fast ones
/// are squeezed into the left edge. The x axis is therefore each cell's
/// progress (% of its own sampled run); the table gives the durations.
pub fn memory(g: &Group) -> SectionView {
    let t = g.max_threads();
    let mut series = Vec::new();
    let mut rows = Vec::new();
    let mut max_rss: f64 = 0.0;
    for subject in g.subjects() {
        let Some(r) = g.metrics(subject, t).and_then(|m| m.representative()) else {
            continue;
        };
        let mem = &r.memory;
        let last_t = mem.rss_timeline.last().map(|s| s.t_s).unwrap_or(0.0);
        rows.push(vec![
            subject.to_string(),
            if last_t > 0.0 {
                format!("{} s", sig3(last_t))
            } else {
                "—".into()
            },
            bytes(mem.rss_baseline_bytes as f64),
            bytes(mem.peak_rss_bytes as f64),
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
        s.title = format!("{subject}: RSS over {} s, {t} threads", sig3(last_t));
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
        notes.push(format!("No RSS timeline was recorded at {t} threads."));
    } else {
        let chart = LineChart {
            id: format!("{}-rss", g.id),
            title: format!("{}: RSS over time, {t} threads", g.title()),
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
        };
        charts.push(ChartView {
            title: format!("RSS over time · {t} threads"),
            svg: chart.to_svg(),
        });
    }
    notes.push("Peak is the process's getrusage maximum, which the sampler may miss between samples; after drain is RSS once every block was freed. Each line spans its own cell's run: see the durations above.".into());
    SectionView {
        id: format!("{}-memory", g.id),
        kind: "memory".into(),
        title: "Memory over time".into(),
        intro: format!("Resident set size of each cell's process, sampled while it ran, at {t} threads. Lower is better; after drain shows what the allocator keeps."),
        charts,
        notes,
        table: (!rows.is_empty()).then(|| MiniTable {
            head: ["subject", "sampled for", "baseline", "peak RSS", "after drain", "requested live at end"]
                .map(String::from)
                .to_vec(),
            rows,
        }),
    }
}

/// The accounting categories, in stacking order, with their colours.
const CATEGORIES: &[(&str, &str)] = &[
    ("allocated blocks", "#3B6FB6"),
    ("available blocks", "#9CC3E6"),
    ("empty pools", "#F2B35B"),
    ("pool headers", "#8E6CC0"),
    ("quantization", "#E0605A"),
    ("arena alignment", "#7F8C8D"),
];

/// Fragmentation: accounting breakdown and ratios.
pub fn fragmentation(g: &Group) -> SectionView {
    let t = g.max_threads();
    let mut bars = Vec::new();
    let mut ratio_bars = Vec::new();
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
        if let Some(f) = m.fragmentation.map(|e| e.median).filter(|f| f.is_finite()) {
            ratio_bars.push(Bar {
                label: subject.to_string(),
                swatch: Some(color.clone()),
                segments: vec![Segment {
                    value: f,
                    color: color.clone(),
                    title: format!("{subject}: {}", format::times(f)),
                }],
                note: format::times(f),
            });
        }
    }
    let mut charts = Vec::new();
    let mut notes = g.failures_at(t);
    if bars.is_empty() {
        notes.push(format!(
            "No subject here reports pool accounting at {t} threads (only our pool allocators do)."
        ));
    } else {
        let chart = BarChart {
            id: format!("{}-accounting", g.id),
            title: format!("{}: where mapped memory goes, {t} threads", g.title()),
            axis_title: "bytes mapped (MiB)".into(),
            fmt: format::tick,
            bars,
            legend: CATEGORIES
                .iter()
                .map(|(n, c)| (n.to_string(), c.to_string()))
                .collect(),
        };
        charts.push(ChartView {
            title: format!("Accounting of mapped bytes · {t} threads"),
            svg: chart.to_svg(),
        });
    }
    if ratio_bars.is_empty() {
        notes.push(format!(
            "No subject reported a fragmentation ratio at {t} threads."
        ));
    } else {
        let chart = BarChart {
            id: format!("{}-fragmentation-chart", g.id),
            title: format!("{}: fragmentation ratio, {t} threads", g.title()),
            axis_title: "memory held ÷ bytes requested live, at peak (×)".into(),
            fmt: format::tick,
            bars: ratio_bars,
            legend: Vec::new(),
        };
        charts.push(ChartView {
            title: format!("Fragmentation ratio · {t} threads"),
            svg: chart.to_svg(),
        });
    }
    SectionView {
        id: format!("{}-fragmentation", g.id),
        kind: "fragmentation".into(),
        title: "Fragmentation".into(),
        intro: format!(
            "Our pool allocators partition every mapped byte the way CPython's sys._debugmallocstats() does; the categories add up exactly to the bytes mapped. The ratio (lower is better, 1× is perfect) covers every subject that reports one. At {t} threads."
        ),
        charts,
        notes,
        table: None,
    }
}
