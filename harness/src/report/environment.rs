//! The environment block: where and how the run happened, what this
//! machine allows (the selfcheck), and the warnings a reader needs before
//! trusting the figures: `LD_PRELOAD` or a non-glibc malloc, a busy
//! machine, cells below the floor, few repeats, oversubscribed thread
//! counts, a debug build, an interrupted run.

use crate::results::RunResults;

use super::format::{ns, pct_change};
use super::view::EnvView;

/// The calibration error beyond which the selfcheck says the machine's
/// figures are off (DESIGN.md §5: within 10%).
const CALIBRATION_TOLERANCE: f64 = 0.10;

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// Rows and warnings for the report's environment block.
pub fn environment(r: &RunResults) -> EnvView {
    let e = &r.environment;
    let dash = |s: &str| {
        if s.is_empty() {
            "—".to_string()
        } else {
            s.to_string()
        }
    };
    let cores = e.logical_cores;
    let mut rows = vec![
        ("CPU".to_string(), dash(&e.cpu_model)),
        ("logical cores".to_string(), cores.to_string()),
        ("OS".to_string(), dash(&e.os)),
        ("kernel".to_string(), dash(&e.kernel)),
        ("host".to_string(), dash(&e.hostname)),
        ("rustc".to_string(), dash(&e.rustc)),
        ("build profile".to_string(), dash(&e.profile)),
        (
            "commit".to_string(),
            e.git_commit
                .clone()
                .unwrap_or_else(|| "unknown (not a git checkout)".into()),
        ),
        ("poolbench".to_string(), dash(&r.poolbench_version)),
        ("repeats per cell".to_string(), r.repeats.to_string()),
        (
            "LD_PRELOAD".to_string(),
            e.ld_preload.clone().unwrap_or_else(|| "not set".into()),
        ),
        (
            "malloc resolves to".to_string(),
            e.malloc_library.clone().unwrap_or_else(|| "unknown".into()),
        ),
        ("threads pinned".to_string(), yes_no(e.pinned)),
        (
            "load average at start".to_string(),
            e.load_at_start
                .map_or("unknown".into(), |l| format!("{l:.2} (1 minute, {cores} logical cores)")),
        ),
        (
            "clock".to_string(),
            format!(
                "{}, {:.4} ns/tick; overhead {} per reading pair (subtracted from every latency), resolution {}",
                dash(&r.clock.source),
                r.clock.ns_per_tick,
                ns(r.clock.overhead_ns),
                ns(r.clock.resolution_ns)
            ),
        ),
    ];
    if !e.crate_versions.is_empty() {
        rows.push((
            "crate versions".to_string(),
            e.crate_versions
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    rows.push(("started".to_string(), dash(&r.started_at)));
    rows.push(("finished".to_string(), dash(&r.finished_at)));

    let mut selfcheck = Vec::new();
    let mut warnings = Vec::new();
    // Warnings that change what a figure means, shown first and in red.
    let mut alerts = Vec::new();
    if r.partial {
        warnings
            .push("Interrupted run: the results file holds only the cells that finished.".into());
    }
    if let Some(p) = &e.ld_preload {
        alerts.push(format!(
            "LD_PRELOAD={p} was set: malloc resolved to {}, so the \"system\" subject measured that library, not glibc's malloc, and every cell's process had it loaded.",
            e.malloc_library.as_deref().unwrap_or("an unknown library")
        ));
    } else if let Some(lib) = e
        .malloc_library
        .as_deref()
        .filter(|l| !l.contains("libc.so"))
    {
        alerts.push(format!(
            "malloc resolved to {lib}, not the C library: the \"system\" subject measured that library."
        ));
    }
    if let Some(l) = e
        .load_at_start
        .filter(|l| cores > 0 && *l > 0.5 * cores as f64)
    {
        warnings.push(format!(
            "The machine was busy when the run started: load average {l:.2} on {cores} logical cores. Figures vary more than on a quiet machine."
        ));
    }
    let ok: Vec<_> = r
        .cells
        .iter()
        .filter_map(|c| Some((c, c.metrics()?)))
        .collect();
    let busy: Vec<String> = ok
        .iter()
        .filter(|(_, m)| m.runs.iter().any(|run| run.load.high()))
        .map(|(c, _)| c.key())
        .collect();
    if !busy.is_empty() {
        warnings.push(format!(
            "The machine was busy (other processes used over 25% of the CPU time, or the hypervisor stole over 5%) during at least one repeat of {} of {} cells: their figures mix in other work. They are marked busy in the tables.",
            busy.len(),
            ok.len()
        ));
    }
    let below: Vec<String> = ok
        .iter()
        .filter(|(_, m)| m.below_floor)
        .map(|(c, _)| c.key())
        .collect();
    if !below.is_empty() {
        alerts.push(format!(
            "{} cell{} ran faster than the null subject (the floor) beyond the noise: {}. Such a figure measures the harness, or the subject is broken.",
            below.len(),
            if below.len() == 1 { "" } else { "s" },
            below.join(", ")
        ));
    }
    if r.repeats < 6 && !ok.is_empty() {
        warnings.push(format!(
            "{} repeat{} per cell: intervals are the range of the repeats, which holds the median with {:.0}% probability, not 95% confidence intervals (those need 6 repeats; use --repeat 6).",
            r.repeats,
            if r.repeats == 1 { "" } else { "s" },
            if r.repeats > 1 {
                100.0 * (1.0 - 2.0 * 0.5f64.powi(r.repeats as i32))
            } else {
                0.0
            }
        ));
    }
    match &e.selfcheck {
        Some(s) => {
            selfcheck.push(("clock overhead".to_string(), ns(s.clock_overhead_ns)));
            selfcheck.push(("clock resolution".to_string(), ns(s.clock_resolution_ns)));
            selfcheck.push((
                "harness floor (1 thread)".to_string(),
                if s.floor_ns_per_op.is_empty() {
                    "—".into()
                } else {
                    s.floor_ns_per_op
                        .iter()
                        .map(|(k, v)| format!("{k} {}", ns(*v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ));
            selfcheck.push((
                "calibration error".to_string(),
                format!(
                    "{:.1}% (a subject that spins {} per call)",
                    s.calibration_error * 100.0,
                    ns(s.calibration_spin_ns)
                ),
            ));
            selfcheck.push((
                "run-to-run spread".to_string(),
                format!("{:.0}% (max − min over the median, a short cell repeated)", s.spread * 100.0),
            ));
            if s.calibration_error > CALIBRATION_TOLERANCE {
                warnings.push(format!(
                    "The selfcheck's calibration subject measured {} off its known cost (more than {:.0}%): on this machine the figures are not accurate to better than that.",
                    pct_change(s.calibration_error).trim_start_matches('+'),
                    CALIBRATION_TOLERANCE * 100.0
                ));
            }
        }
        None => selfcheck.push((
            "selfcheck".to_string(),
            "not recorded with this run (poolbench selfcheck measures the clock, the harness floor per preset, the calibration error and the run-to-run spread)".to_string(),
        )),
    }
    let mut over: Vec<usize> = r
        .cells
        .iter()
        .map(|c| c.threads)
        .filter(|&t| cores > 0 && t > cores)
        .collect();
    over.sort_unstable();
    over.dedup();
    if !over.is_empty() {
        warnings.push(format!(
            "Oversubscribed: cells at {} threads ran on {} logical core{}. Threads then share cores, so lock hand-offs and spinning involve the scheduler; compare those cells with care.",
            over.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", "),
            cores,
            if cores == 1 { "" } else { "s" }
        ));
    }
    if e.profile == "debug" {
        warnings.push(
            "Debug build: figures from an unoptimised binary say little about the allocators."
                .into(),
        );
    }
    EnvView {
        rows,
        selfcheck,
        alerts,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn oversubscription_is_flagged_only_when_threads_exceed_cores() {
        let mut r = fixture::run_results();
        let v = environment(&r);
        assert!(v
            .warnings
            .iter()
            .any(|w| w.contains("cells at 4 threads ran on 2 logical cores")));
        r.environment.logical_cores = 4;
        assert!(!environment(&r)
            .warnings
            .iter()
            .any(|w| w.starts_with("Oversubscribed")));
    }

    #[test]
    fn preload_busy_cells_few_repeats_and_selfcheck_are_shown() {
        let mut r = fixture::run_results();
        let v = environment(&r);
        let row = |v: &EnvView, k: &str| v.rows.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(row(&v, "LD_PRELOAD"), "not set");
        assert_eq!(row(&v, "threads pinned"), "no");
        assert!(v.alerts.is_empty(), "{:?}", v.alerts);
        assert!(
            v.warnings
                .iter()
                .any(|w| w.contains("during at least one repeat of 1 of 35 cells")),
            "{:?}",
            v.warnings
        );
        assert!(v
            .warnings
            .iter()
            .any(|w| w.starts_with("3 repeats per cell") && w.contains("75%")));
        let sc = |k: &str| v.selfcheck.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(
            sc("calibration error"),
            "3.1% (a subject that spins 50.0 ns per call)"
        );
        assert!(sc("harness floor (1 thread)").starts_with("larson-small 2.50 ns"));

        r.environment.ld_preload = Some("/usr/lib/libjemalloc.so.2".into());
        r.environment.malloc_library = Some("/usr/lib/libjemalloc.so.2".into());
        r.environment.selfcheck.as_mut().unwrap().calibration_error = 0.2;
        r.repeats = 6;
        r.environment.load_at_start = Some(3.0);
        let v = environment(&r);
        assert!(v.alerts[0].starts_with("LD_PRELOAD=/usr/lib/libjemalloc.so.2 was set"));
        assert!(
            v.warnings
                .iter()
                .any(|w| w.contains("20.0% off its known cost")),
            "{:?}",
            v.warnings
        );
        assert!(v
            .warnings
            .iter()
            .any(|w| w.contains("load average 3.00 on 2 logical cores")));
        assert!(!v.warnings.iter().any(|w| w.contains("repeats per cell")));

        r.environment.selfcheck = None;
        r.environment.ld_preload = None;
        let v = environment(&r);
        assert!(v.alerts[0].starts_with("malloc resolved to /usr/lib/libjemalloc.so.2"));
        assert!(v.selfcheck[0].1.starts_with("not recorded"));
    }
}
