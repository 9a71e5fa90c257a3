//! One application cell, measured in its child process: the process was
//! started with `POOLBENCH_GLOBAL=SUBJECT` (and `POOLBENCH_GEOMETRY`), so
//! the subject serves every allocation of it (see `subjects::global`).
//!
//! The program runs once while a sampler thread records RSS over time; a
//! snapshot is taken at the program's peak (RSS, our subjects' accounting,
//! the references' own counters) and another at the end. The figures go
//! into the same [`RunMetrics`] as a synthetic cell's, with the program's
//! unit of work in place of operations: `ops` are units (trees, words,
//! strings, documents), `duration_s` the measured part of the program
//! (input generation and the result check excluded), `unit` and `checksum`
//! set. Programs do not report requested live bytes, so there is no
//! fragmentation ratio, and no latency pass.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::AppError;
use crate::measure::memory;
use crate::results::{Accounting, Fragmentation, GilCounters, Load, Memory, RunMetrics};
use crate::subjects::global as switch;

/// Runs program `app` (at `size`, default its own) on `threads` threads
/// under the process's global subject, and measures it.
pub fn measure(app: &str, size: Option<u64>, threads: usize) -> Result<RunMetrics, AppError> {
    let active = switch::active();
    let info = super::info(app).ok_or_else(|| AppError::Unknown(app.to_string()))?;
    let size = size.unwrap_or(info.default_size);
    let snapshot = || {
        let rss = memory::rss_bytes();
        let stats = active.stats.map(|s| Accounting::from(&s.stats()));
        let own = crate::subjects::reference::own_counters(active.name);
        (rss, stats, own)
    };
    let origin = Instant::now();
    let baseline = memory::rss_bytes();
    let stop = AtomicBool::new(false);
    let cpu0 = memory::cpu_seconds();
    let load_start = memory::loadavg();
    let mut at_peak = None;
    let (result, timeline) = std::thread::scope(|s| {
        let sampler = s.spawn(|| memory::sample(&stop, origin, &|| 0));
        let r = super::run_with_peak(info.name, size, threads, &mut || {
            at_peak = Some(snapshot());
        });
        stop.store(true, std::sync::atomic::Ordering::Release);
        sampler.thread().unpark();
        (r, sampler.join().unwrap_or_default())
    });
    let run = result?;
    let cpu1 = memory::cpu_seconds();
    let (rss_end, stats_end, _) = snapshot();
    let (rss_peak, stats_peak, own) = at_peak.unwrap_or_else(snapshot);
    let secs = run.elapsed.as_secs_f64();
    Ok(RunMetrics {
        ops: run.units,
        ops_per_thread: run.units / threads.max(1) as u64,
        duration_s: secs,
        ops_per_sec: run.units_per_sec(),
        cpu_user_s: cpu1.0 - cpu0.0,
        cpu_sys_s: cpu1.1 - cpu0.1,
        memory: Memory {
            rss_timeline: timeline,
            rss_baseline_bytes: baseline,
            peak_rss_bytes: memory::peak_rss_bytes(),
            rss_after_drain_bytes: rss_end,
            requested_live_bytes: 0,
            rss_at_end_bytes: rss_peak,
            fragmentation: Fragmentation {
                ratio: None,
                note: Some("an application program does not report the bytes it has live".into()),
                own_ratio: None,
            },
            accounting_at_peak: stats_peak,
            accounting_at_end: stats_end,
            own_counters: own,
        },
        gil: active.gil.map(|g| {
            let s = g.gil_stats();
            GilCounters {
                acquisitions: s.acquisitions,
                contended: s.contended,
                switches: s.switches,
                switch_interval_us: g.switch_interval().as_micros() as u64,
            }
        }),
        load: Load {
            loadavg_start: load_start,
            loadavg_end: memory::loadavg(),
            ..Default::default()
        },
        unit: Some(info.unit.to_string()),
        checksum: Some(run.checksum),
        measured_span_s: Some((
            run.measured_from
                .saturating_duration_since(origin)
                .as_secs_f64(),
            run.measured_to
                .saturating_duration_since(origin)
                .as_secs_f64(),
        )),
        ..Default::default()
    })
}
