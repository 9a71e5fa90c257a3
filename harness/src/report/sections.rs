//! The chart sections of one workload: throughput, latency, memory,
//! fragmentation.
//!
//! Each builder turns a [`Group`]'s cells into a [`SectionView`] with its
//! charts, tables and notes. Choices that shape what a reader sees:
//! - throughput is plotted against threads on a log2 axis ticked at the
//!   thread counts run; every median carries its interval as a whisker
//!   (named as `interval` names it: a 95% CI only from 6 repeats on); the
//!   `null` subject is drawn dashed as the floor, and a second chart shows
//!   each subject's time per operation above that floor (what the
//!   allocator itself costs), with the floor as the zero line;
//! - latency and memory would need one chart per thread count to show
//!   everything; the report shows the extremes (1 thread and the most
//!   threads) for latency and the most threads for memory, where
//!   contention and footprint are largest; the tables carry every thread
//!   count;
//! - latency charts shade the band below the clock's resolution;
//!   percentiles inside it are not numbers and are drawn dotted inside the
//!   band, never at a value; a subject without samples of a kind is named
//!   in the notes with the reason, never silently left out;
//! - fragmentation has one definition (resident bytes above the cell's
//!   baseline over requested live bytes), shown only where the run
//!   recorded a ratio, with the run's note where it did not; our
//!   allocators' exact accounting and the references' own counters sit
//!   beside it as cross-checks.

use crate::results::{CellMetrics, Estimate, Latency, FLOOR_SUBJECT};
use crate::stats;

use super::chart::{
    Axis, Band, Bar, BarChart, Dash, HLine, Key, LineChart, Marker, Range, Segment, Series, Shape,
};
use super::format::{self, bytes, ns, sig3, throughput_unit};
use super::group::Group;
use super::interval;
use super::palette;
use super::view::{ChartView, MiniTable, SectionView};

const MIB: f64 = 1024.0 * 1024.0;
/// Fill of the band below the clock's resolution.
const UNRESOLVED_FILL: &str = "#ececec";
/// Whiskers may widen a value axis to this factor beyond the medians;
/// beyond it they are cut at the frame (with an arrowhead), so one wild
/// repeat does not flatten every line.
const AXIS_SLACK: f64 = 3.0;

fn threads_text(t: usize) -> String {
    format!("{t} thread{}", if t == 1 { "" } else { "s" })
}

/// The values a value axis should cover: the medians, and the interval
/// ends within [`AXIS_SLACK`] of them.
fn axis_values(estimates: &[(f64, f64, f64)]) -> Vec<f64> {
    let medians: Vec<f64> = estimates
        .iter()
        .map(|e| e.0)
        .filter(|v| v.is_finite())
        .collect();
    let hi = medians.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lo = medians.iter().copied().fold(f64::INFINITY, f64::min);
    let span = (hi - lo).abs().max(hi.abs() * 0.05);
    let mut out = medians.clone();
    for &(_, l, h) in estimates {
        for v in [l, h] {
            let inside = if lo > 0.0 {
                v >= lo / AXIS_SLACK && v <= hi * AXIS_SLACK
            } else {
                v >= lo - AXIS_SLACK * span && v <= hi + AXIS_SLACK * span
            };
            if v.is_finite() && inside {
                out.push(v);
            }
        }
    }
    out
}

/// A whisker for an estimate at `x`, in the plotted unit (`div`).
fn whisker(
    x: f64,
    e: &Estimate,
    div: f64,
    what: &str,
    fmt: impl Fn(f64) -> String + Copy,
) -> Option<Range> {
    interval::has_interval(e).then(|| Range {
        x,
        lo: e.low / div,
        hi: e.high / div,
        title: format!("{what}: {}", interval::title(e, fmt)),
    })
}

/// Throughput vs threads, and time per operation above the floor.
pub fn throughput(g: &Group) -> SectionView {
    let threads = g.threads();
    let ok = || g.cells.iter().filter_map(|c| Some((*c, c.metrics()?)));
    let max = ok().map(|(_, m)| m.ops_per_sec.median).fold(0.0, f64::max);
    let unit = throughput_unit(max);
    let div = unit.div;
    let fmt = move |v: f64| format!("{} {}", sig3(v / div), unit.name);
    let y = Axis::auto(
        &format!("throughput ({})", unit.name),
        &axis_values(
            &ok()
                .map(|(_, m)| {
                    let e = m.ops_per_sec;
                    (e.median / div, e.low / div, e.high / div)
                })
                .collect::<Vec<_>>(),
        ),
        &format::tick,
    );
    let mut series = Vec::new();
    for subject in g.subjects() {
        let floor = subject == FLOOR_SUBJECT;
        let legend = if floor { "null (floor)" } else { subject };
        let mut s = Series::new(legend, palette::color(subject), Vec::new());
        s.dots = true;
        if floor {
            s.dash = Dash::Dashed;
        }
        for &t in &threads {
            if let Some(m) = g.metrics(subject, t) {
                let e = m.ops_per_sec;
                if e.median.is_nan() || e.median <= 0.0 {
                    continue;
                }
                s.points.push((t as f64, e.median / div));
                let what = format!("{subject} at {}", threads_text(t));
                s.ranges.extend(whisker(t as f64, &e, div, &what, fmt));
            }
        }
        s.title = format!("{subject}: {}", points_text(&s.points, unit.name));
        if !s.points.is_empty() {
            series.push(s);
        }
    }
    let mut charts = vec![ChartView {
        title: format!("{}: throughput vs threads", g.title()),
        svg: LineChart {
            id: format!("{}-throughput-chart", g.id),
            title: format!("{}: throughput vs threads", g.title()),
            x: Axis::threads("threads", &threads),
            y,
            series,
            keys: Vec::new(),
            bands: Vec::new(),
            hlines: Vec::new(),
        }
        .to_svg(),
    }];
    if let Some(chart) = above_floor_chart(g) {
        charts.push(chart);
    }

    let mut notes = Vec::new();
    let floors: Vec<String> = threads
        .iter()
        .filter_map(|&t| {
            let m = g.metrics(FLOOR_SUBJECT, t)?;
            (m.ns_per_op.median > 0.0).then(|| {
                let i = interval::text(&m.ns_per_op, ns);
                format!(
                    "{}{} at {}",
                    ns(m.ns_per_op.median),
                    if i.is_empty() {
                        String::new()
                    } else {
                        format!(" {i}")
                    },
                    threads_text(t)
                )
            })
        })
        .collect();
    if floors.is_empty() {
        notes.push(
            "The null subject did not run here, so the floor (poolbench's own cost per operation) is unknown for this workload and nothing is subtracted."
                .into(),
        );
    } else {
        notes.push(format!(
            "The floor: the null subject (the same loop with the cheapest allocator possible) spends {} per operation per thread; every subject's time per operation includes it. The second chart subtracts it: what the allocator itself costs.",
            floors.join(", ")
        ));
    }
    let estimates: Vec<&Estimate> = ok().map(|(_, m)| &m.ops_per_sec).collect();
    if let Some(d) = interval::describe_all(estimates.iter().copied()) {
        if estimates.iter().any(|e| interval::has_interval(e)) {
            notes.push(format!(
                "Points: medians. Whiskers: {d}. A whisker reaching off the chart is cut at its edge with an arrowhead (hover it for the figures)."
            ));
        } else {
            notes.push(format!("Points: {d}."));
        }
    }
    for (c, m) in ok() {
        if m.below_floor {
            notes.push(format!(
                "{} at {} ran faster than the floor beyond the noise: its figure measures the harness, or the subject is broken.",
                c.subject,
                threads_text(c.threads)
            ));
        }
    }
    for &t in &threads {
        notes.extend(g.failures_at(t));
    }
    SectionView {
        id: format!("{}-throughput", g.id),
        kind: "throughput".into(),
        title: "Throughput vs threads".into(),
        intro: "Operations (allocations, frees and reallocations) per second across all threads, higher is better.".into(),
        charts,
        notes,
        tables: Vec::new(),
    }
}

/// Each subject's time per operation above the floor, vs threads; `None`
/// when the run measured no floor here.
fn above_floor_chart(g: &Group) -> Option<ChartView> {
    let threads = g.threads();
    let mut series = Vec::new();
    let mut all = Vec::new();
    for subject in g.subjects() {
        if subject == FLOOR_SUBJECT {
            continue;
        }
        let mut s = Series::new(subject, palette::color(subject), Vec::new());
        s.dots = true;
        for &t in &threads {
            let Some(e) = g.metrics(subject, t).and_then(|m| m.above_floor_ns_per_op) else {
                continue;
            };
            if !e.median.is_finite() {
                continue;
            }
            all.push((e.median, e.low, e.high));
            s.points.push((t as f64, e.median));
            let what = format!("{subject} at {}, above the floor", threads_text(t));
            s.ranges.extend(whisker(t as f64, &e, 1.0, &what, ns));
        }
        s.title = format!(
            "{subject} above the floor: {}",
            s.points
                .iter()
                .map(|(t, v)| format!("{t}t {}", ns(*v)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if !s.points.is_empty() {
            series.push(s);
        }
    }
    if series.is_empty() {
        return None;
    }
    let mut values = axis_values(&all);
    values.push(0.0);
    let lo = values.iter().copied().fold(0.0, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    let title = format!("{}: time per operation above the floor", g.title());
    Some(ChartView {
        title: title.clone(),
        svg: LineChart {
            id: format!("{}-above-floor-chart", g.id),
            title,
            x: Axis::threads("threads", &threads),
            y: Axis::linear("ns per op above the floor", lo, hi, &format::ns_tick),
            series,
            keys: vec![Key::Rule(
                "#444".into(),
                Dash::Dashed,
                "floor (null)".into(),
            )],
            bands: Vec::new(),
            hlines: vec![HLine {
                y: 0.0,
                color: "#444".into(),
                dash: Dash::Dashed,
                title: "the floor: the null subject's time per operation".into(),
            }],
        }
        .to_svg(),
    })
}

fn points_text(points: &[(f64, f64)], unit: &str) -> String {
    points
        .iter()
        .map(|(t, v)| format!("{t}t {} {unit}", sig3(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One latency kind drawn in a panel, with its line style and the
/// legend key for that style (empty: no key needed).
struct Layer {
    kind: &'static str,
    dash: Dash,
    key: &'static str,
}

/// A latency panel: its name, the kinds it overlays, and whether its
/// samples are clock pairs around an operation (GIL waits are not: the
/// clock's resolution band does not apply).
struct Panel {
    name: &'static str,
    layers: &'static [Layer],
    clocked: bool,
}

/// Latency panels: frees overlay local (solid) and remote (dashed).
const PANELS: &[Panel] = &[
    Panel {
        name: "alloc",
        layers: &[Layer {
            kind: "alloc",
            dash: Dash::Solid,
            key: "",
        }],
        clocked: true,
    },
    Panel {
        name: "free",
        layers: &[
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
        clocked: true,
    },
    Panel {
        name: "realloc",
        layers: &[Layer {
            kind: "realloc",
            dash: Dash::Solid,
            key: "",
        }],
        clocked: true,
    },
    Panel {
        name: "GIL wait",
        layers: &[Layer {
            kind: "gil_wait",
            dash: Dash::Solid,
            key: "",
        }],
        clocked: false,
    },
];

/// A latency distribution split at the clock's resolution: percentiles
/// with a value, and those below the resolution (no value to plot).
struct Split {
    resolved: Vec<(f64, f64)>,
    unresolved: Vec<f64>,
}

fn split(lat: &Latency) -> Option<Split> {
    if lat.count == 0 {
        return None;
    }
    // The nines axis cannot place the 100th percentile: a distribution
    // with nothing below it (a handful of samples) falls back to the fixed
    // percentiles, so no subject with samples goes undrawn.
    let plottable = |v: &[crate::results::Percentile]| {
        v.iter()
            .any(|p| p.percentile >= 50.0 && p.percentile < 100.0)
    };
    let src = if plottable(&lat.distribution) {
        &lat.distribution
    } else {
        &lat.percentiles
    };
    let mut out = Split {
        resolved: Vec::new(),
        unresolved: Vec::new(),
    };
    for p in src
        .iter()
        .filter(|p| p.percentile >= 50.0 && p.percentile < 100.0)
    {
        if p.below_resolution {
            out.unresolved.push(p.percentile);
        } else if p.ns > 0.0 {
            out.resolved.push((p.percentile, p.ns));
        }
    }
    (!out.resolved.is_empty() || !out.unresolved.is_empty()).then_some(out)
}

/// How many nines the axis needs: at least 4 (99.99%), more if the data
/// go further, at most 6.
fn nines_needed(top: f64) -> u32 {
    let n = -(1.0 - top / 100.0).log10();
    if n.is_finite() {
        (n - 1e-6).ceil().clamp(4.0, 6.0) as u32
    } else {
        4
    }
}

/// The median over a cell's repeats of their clock's resolution, ns.
fn resolution_of(m: &CellMetrics) -> Option<f64> {
    stats::median(
        &m.runs
            .iter()
            .map(|r| r.clock.resolution_ns)
            .collect::<Vec<_>>(),
    )
    .filter(|r| *r > 0.0)
}

/// Why a subject's cell has no samples of a panel's kinds; `None` when
/// the panel does not concern the subject (GIL waits of a subject without
/// a GIL).
fn no_samples_reason(m: &CellMetrics, panel: &Panel, threads: usize) -> Option<String> {
    let runs = &m.runs;
    if runs.is_empty() {
        return Some("its repeats were not kept".into());
    }
    if runs.iter().all(|r| r.sampling.one_in == 0) {
        return Some("no latency pass ran".into());
    }
    let performed: u64 = runs
        .iter()
        .map(|r| {
            let c = &r.counts;
            match panel.name {
                "alloc" => c.allocs,
                "free" => c.frees_local + c.frees_remote,
                "realloc" => c.reallocs,
                _ => r.gil.as_ref().map_or(0, |g| g.contended),
            }
        })
        .sum();
    if panel.name == "GIL wait" {
        if runs.iter().all(|r| r.gil.is_none()) {
            return None;
        }
        return Some(if performed == 0 {
            format!("never waited for the GIL at {}", threads_text(threads))
        } else {
            "waited for the GIL, but no wait was recorded".into()
        });
    }
    Some(if performed == 0 {
        format!("the workload performed no {}s", panel.name)
    } else {
        format!(
            "no {} was timed although the cell performed {performed} (sampled one in {} on average)",
            panel.name,
            runs[0].sampling.one_in
        )
    })
}

/// Latency percentile distributions, HdrHistogram style, with the
/// clock's resolution drawn; and the sampling of every cell.
pub fn latency(g: &Group) -> SectionView {
    let threads = g.threads();
    let mut shown = vec![threads.first().copied().unwrap_or(1)];
    if g.max_threads() != shown[0] {
        shown.push(g.max_threads());
    }
    let mut charts = Vec::new();
    let mut notes = Vec::new();
    for &t in &shown {
        for panel in PANELS {
            let mut series = Vec::new();
            let mut unresolved: Vec<(&str, Vec<f64>, Dash)> = Vec::new();
            let mut keys = Vec::new();
            let mut missing = Vec::new();
            let mut resolutions = Vec::new();
            let mut top: f64 = 0.0;
            for subject in g.subjects() {
                let Some(m) = g.metrics(subject, t) else {
                    continue;
                };
                let mut drawn = false;
                for &Layer { kind, dash, key } in panel.layers {
                    let Some(sp) = m.latency.get(kind).and_then(split) else {
                        continue;
                    };
                    drawn = true;
                    resolutions.extend(resolution_of(m));
                    top = sp
                        .resolved
                        .iter()
                        .map(|p| p.0)
                        .chain(sp.unresolved.iter().copied())
                        .fold(top, f64::max);
                    if !sp.resolved.is_empty() {
                        let mut s = Series::new(subject, palette::color(subject), sp.resolved);
                        s.dash = dash;
                        s.title = format!("{subject} {kind}, {}", threads_text(t));
                        series.push(s);
                    }
                    if !sp.unresolved.is_empty() {
                        unresolved.push((subject, sp.unresolved, dash));
                    }
                    if !key.is_empty()
                        && !keys
                            .iter()
                            .any(|k| matches!(k, Key::Line(d, _) if *d == dash))
                    {
                        keys.push(Key::Line(dash, key.to_string()));
                    }
                }
                if !drawn {
                    if let Some(why) = no_samples_reason(m, panel, t) {
                        missing.push(format!("{subject}: {why}"));
                    }
                }
            }
            if series.is_empty() && unresolved.is_empty() {
                // Nobody's samples: say why only when some subject should
                // have had them.
                let relevant: Vec<&String> = missing
                    .iter()
                    .filter(|w| !w.contains("the workload performed no"))
                    .collect();
                if !relevant.is_empty() {
                    notes.push(format!(
                        "No {} latency at {}: {}.",
                        panel.name,
                        threads_text(t),
                        missing.join("; ")
                    ));
                }
                continue;
            }
            if !missing.is_empty() {
                notes.push(format!(
                    "Not in the {} latency chart at {}: {}.",
                    panel.name,
                    threads_text(t),
                    missing.join("; ")
                ));
            }
            // A style key is worth a legend row unless every line is solid.
            if keys.iter().all(|k| matches!(k, Key::Line(Dash::Solid, _))) {
                keys.clear();
            }
            let resolution = if panel.clocked {
                stats::median(&resolutions)
            } else {
                None
            };
            let mut values: Vec<f64> = series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .collect();
            if let Some(r) = resolution {
                // Room for the band under the resolution.
                values.push(r);
                values.push(r * 0.4);
            }
            let y = Axis::auto("latency", &values, &format::ns_tick);
            let mut bands = Vec::new();
            if let Some(r) = resolution {
                bands.push(Band {
                    lo: f64::NEG_INFINITY,
                    hi: r,
                    fill: UNRESOLVED_FILL.into(),
                    title: format!(
                        "below the clock's resolution ({}): latencies here are not resolved",
                        ns(r)
                    ),
                });
                keys.push(Key::Band(
                    UNRESOLVED_FILL.into(),
                    format!("clock can't\nresolve < {}", format::ns_tick(r)),
                ));
                // Unresolved percentiles: dotted, inside the band, at no
                // value (the band's middle).
                let mid = if y.lo > 0.0 && y.scale != super::chart::Scale::Linear {
                    (y.lo * r).sqrt()
                } else {
                    (y.lo.max(0.0) + r) / 2.0
                };
                for (subject, ps, _) in &unresolved {
                    let mut s = Series::new(
                        subject,
                        palette::color(subject),
                        ps.iter().map(|&p| (p, mid)).collect(),
                    );
                    s.dash = Dash::Dotted;
                    s.width = 2.5;
                    s.title = format!(
                        "{subject}: percentiles {}–{} below the clock's resolution",
                        format::percentile(ps[0]),
                        format::percentile(ps[ps.len() - 1])
                    );
                    series.push(s);
                }
                if !unresolved.is_empty() {
                    keys.push(Key::Line(Dash::Dotted, "unresolved\npercentiles".into()));
                }
            }
            let x = Axis::nines("percentile", nines_needed(top));
            let chart = LineChart {
                id: format!("{}-lat-{}-t{t}", g.id, super::group::slug(panel.name)),
                title: format!("{}: {} latency, {}", g.title(), panel.name, threads_text(t)),
                x,
                y,
                series,
                keys,
                bands,
                hlines: Vec::new(),
            };
            charts.push(ChartView {
                title: format!("{} latency · {}", panel.name, threads_text(t)),
                svg: chart.to_svg(),
            });
        }
        notes.extend(g.failures_at(t));
    }
    notes.push(
        "Each cell's latencies come from a latency pass of its own, timing operations at random intervals (one in N on average: see the table), with the clock's overhead subtracted. The pass runs slower than the measured phase by the perturbation shown: what timing some operations costs the others. Percentiles closer to the overhead than the clock's resolution are not numbers: they are drawn dotted in the grey band and shown as < res in the tables."
            .into(),
    );
    SectionView {
        id: format!("{}-latency", g.id),
        kind: "latency".into(),
        title: "Latency distribution".into(),
        intro: format!(
            "Time per operation by percentile, lower is better. The x axis is HdrHistogram's: each step right is one more nine (90%, 99%, 99.9%, …), so the tail gets the room. Charts at {}; the table has every cell.",
            shown
                .iter()
                .map(|t| threads_text(*t))
                .collect::<Vec<_>>()
                .join(" and ")
        ),
        charts,
        notes,
        tables: vec![sampling_table(g)],
    }
}

/// How every cell's latencies were sampled.
fn sampling_table(g: &Group) -> MiniTable {
    let mut rows = Vec::new();
    for t in g.threads() {
        for subject in g.subjects() {
            let Some(m) = g.metrics(subject, t) else {
                continue;
            };
            let one_in: Vec<f64> = m
                .runs
                .iter()
                .map(|r| f64::from(r.sampling.one_in))
                .filter(|v| *v > 0.0)
                .collect();
            let samples = m
                .latency
                .iter()
                .filter(|(_, l)| l.count > 0)
                .map(|(k, l)| format!("{} {}", k.replace('_', " "), l.count))
                .collect::<Vec<_>>()
                .join(" · ");
            let perturbation: Vec<f64> = m
                .runs
                .iter()
                .filter_map(|r| r.sampling.perturbation)
                .collect();
            let overhead = stats::median(
                &m.runs
                    .iter()
                    .map(|r| r.clock.overhead_ns)
                    .collect::<Vec<_>>(),
            );
            rows.push(vec![
                subject.to_string(),
                t.to_string(),
                stats::median(&one_in).map_or("no latency pass".into(), |v| format!("1 in {v:.0}")),
                perturbation_text(&perturbation),
                overhead.map_or("—".into(), ns),
                resolution_of(m).map_or("—".into(), ns),
                if samples.is_empty() {
                    "—".into()
                } else {
                    samples
                },
            ]);
        }
    }
    MiniTable {
        caption: "How each cell's latencies were sampled (over all its repeats).".into(),
        head: [
            "subject",
            "threads",
            "timed",
            "latency pass slower by",
            "clock overhead subtracted",
            "clock resolution",
            "samples by kind",
        ]
        .map(String::from)
        .to_vec(),
        text_last: true,
        rows,
    }
}

/// The median perturbation over repeats and their range; a negative one
/// (the timed pass ran faster) can only be noise, and says so.
fn perturbation_text(values: &[f64]) -> String {
    let Some(m) = stats::median(values) else {
        return "—".into();
    };
    let mut s = format::pct_change(m);
    if values.len() > 1 {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        s.push_str(&format!(
            " [{}, {}]",
            format::pct_change(lo),
            format::pct_change(hi)
        ));
    }
    if m < 0.0 {
        s.push_str(" (faster: noise)");
    }
    s
}

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
