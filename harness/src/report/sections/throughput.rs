//! Throughput vs threads with its intervals and the floor, and each
//! subject's time per operation above the floor.

use crate::results::{Estimate, FLOOR_SUBJECT};

use super::{axis_values, threads_text, whisker};
use crate::report::chart::{Axis, Dash, HLine, Key, LineChart, Series};
use crate::report::format::{self, ns, sig3, throughput_unit};
use crate::report::group::Group;
use crate::report::interval;
use crate::report::palette;
use crate::report::view::{ChartView, SectionView};

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
