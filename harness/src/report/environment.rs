//! The environment block: where and how the run happened, and the
//! warnings a reader needs before trusting the figures (oversubscribed
//! thread counts, a debug build).

use crate::results::RunResults;

use super::view::EnvView;

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
    let mut rows = vec![
        ("CPU".to_string(), dash(&e.cpu_model)),
        ("logical cores".to_string(), e.logical_cores.to_string()),
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
        (
            "clock".to_string(),
            format!(
                "{}, {:.4} ns/tick, {:.1} ns per reading",
                dash(&r.clock.source),
                r.clock.ns_per_tick,
                r.clock.overhead_ns
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

    let mut warnings = Vec::new();
    let mut over: Vec<usize> = r
        .cells
        .iter()
        .map(|c| c.threads)
        .filter(|&t| e.logical_cores > 0 && t > e.logical_cores)
        .collect();
    over.sort_unstable();
    over.dedup();
    if !over.is_empty() {
        warnings.push(format!(
            "Oversubscribed: cells at {} threads ran on {} logical core{}. Threads then share cores, so lock hand-offs and spinning involve the scheduler; compare those cells with care.",
            over.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", "),
            e.logical_cores,
            if e.logical_cores == 1 { "" } else { "s" }
        ));
    }
    if e.profile == "debug" {
        warnings.push(
            "Debug build: figures from an unoptimised binary say little about the allocators."
                .into(),
        );
    }
    EnvView { rows, warnings }
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
        assert!(environment(&r).warnings.is_empty());
    }
}
