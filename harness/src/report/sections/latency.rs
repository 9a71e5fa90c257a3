//! Latency percentile distributions with the clock's resolution drawn,
//! every subject with samples in its chart (the others named with the
//! reason), and how every cell was sampled.

use crate::results::{CellMetrics, Latency};
use crate::stats;

use super::threads_text;
use crate::report::chart::{Axis, Band, Dash, Key, LineChart, Scale, Series};
use crate::report::format::{self, ns};
use crate::report::group::{slug, Group};
use crate::report::palette;
use crate::report::view::{ChartView, MiniTable, SectionView};

/// Fill of the band below the clock's resolution.
const UNRESOLVED_FILL: &str = "#ececec";

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
                let mid = if y.lo > 0.0 && y.scale != Scale::Linear {
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
                id: format!("{}-lat-{}-t{t}", g.id, slug(panel.name)),
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
