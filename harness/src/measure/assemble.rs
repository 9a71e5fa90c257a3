//! A cell's figures, assembled from what its phases measured.
//!
//! Nothing here measures: op counts come from the tapes (the operations
//! between where each worker's measured phase started and where it
//! stopped), latencies from the workers' histograms, memory from the
//! driver's snapshots. Fragmentation has one definition for every subject:
//! resident bytes above the cell's baseline (read after the harness's own
//! buffers were allocated and written) over requested live bytes, at the
//! end of the measured phase — shown only where it means something.

use std::collections::BTreeMap;
use std::time::Duration;

use allocator::GilStats;

use super::clock::Clock;
use super::latency::{self, OpKind, Recorder, Scale};
use super::worker::Worker;
use crate::results::{
    Accounting, Fragmentation, GilCounters, Load, Memory, OpCounts, RssSample, RunMetrics,
    Sampling, Verification,
};
use crate::spec::tape::{Counts, Tape};
use crate::spec::workload::Checked;
use crate::subjects::Subject;

/// Below this many requested live bytes a fragmentation ratio measures an
/// allocator's fixed costs (a thread cache, a first segment), not how it
/// packs blocks.
pub const MIN_LIVE_FOR_RATIO: u64 = 1 << 20;

/// Memory as the driver saw it at the end of the measured phase.
#[derive(Default)]
pub struct Snapshot {
    pub live_bytes: u64,
    pub rss: u64,
    pub stats: Option<allocator::Stats>,
    pub own: BTreeMap<String, u64>,
}

impl Snapshot {
    /// Reads memory now, with `live_bytes` requested live.
    pub fn take(subject: &dyn Subject, live_bytes: u64) -> Snapshot {
        Snapshot {
            live_bytes,
            rss: super::memory::rss_bytes(),
            stats: subject.stats(),
            own: subject.own_counters(),
        }
    }
}

/// What the phases measured, raw.
#[derive(Default)]
pub struct Measured {
    pub probe_ops: u64,
    pub probe_rate_per_thread: f64,
    pub ops_per_thread: u64,
    pub duration: Duration,
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    pub steal_fraction: Option<f64>,
    pub others_busy_fraction: Option<f64>,
    pub loadavg_start: Option<f64>,
    pub loadavg_end: Option<f64>,
    pub gil: Option<(GilStats, GilStats)>,
    pub snapshot: Snapshot,
    pub latency_ops: u64,
    pub latency_duration: Duration,
    pub verify_ops: u64,
    pub rss_after_drain: u64,
    pub accounting_at_end: Option<allocator::Stats>,
    pub timeline: Vec<RssSample>,
    pub rss_baseline: u64,
    pub peak_rss: u64,
    pub drained: u64,
}

fn op_counts(c: &Counts) -> OpCounts {
    OpCounts {
        allocs: c.allocs,
        frees_local: c.frees_local,
        frees_remote: c.frees_remote,
        reallocs: c.reallocs,
        bytes_requested: c.bytes_requested,
    }
}

/// The fragmentation ratio, or why there is none.
fn fragmentation(w: &Checked, tapes: &[Tape], m: &Measured) -> Fragmentation {
    let live = m.snapshot.live_bytes;
    let own_ratio = m
        .snapshot
        .stats
        .as_ref()
        .filter(|_| live > 0)
        .map(|s| s.held() as f64 / live as f64);
    let touch = w.touch_bytes.bytes_for(usize::MAX);
    let max_size = tapes.iter().map(|t| t.max_size).max().unwrap_or(0);
    let note = if live < MIN_LIVE_FOR_RATIO {
        Some(format!(
            "{live} bytes requested live at the end of the measured phase, below {MIN_LIVE_FOR_RATIO}: \
             the ratio would measure fixed costs, not packing"
        ))
    } else if touch < max_size {
        Some(format!(
            "blocks are written only in their first {touch} bytes (touch_bytes) and reach \
             {max_size} bytes: pages never written are not resident, so RSS undercounts them"
        ))
    } else {
        None
    };
    if let Some(note) = note {
        return Fragmentation {
            ratio: None,
            note: Some(note),
            own_ratio,
        };
    }
    let above = m.snapshot.rss.saturating_sub(m.rss_baseline);
    let ratio = above as f64 / live as f64;
    if ratio < 1.0 {
        return Fragmentation {
            ratio: None,
            note: Some(format!(
                "resident bytes above the baseline ({above}) are fewer than the bytes requested live \
                 ({live}): memory resident at the baseline was reused, so the ratio is not meaningful"
            )),
            own_ratio,
        };
    }
    Fragmentation {
        ratio: Some(ratio),
        note: None,
        own_ratio,
    }
}

/// The child's report of one cell run.
pub fn run_metrics(
    subject: &dyn Subject,
    w: &Checked,
    (clock, pinned): (Clock, bool),
    tapes: &[Tape],
    workers: &[Worker<'_>],
    m: Measured,
) -> RunMetrics {
    let mut counts = Counts::default();
    for (t, wk) in tapes.iter().zip(workers) {
        let c = t.counts_from(wk.measured_from, m.ops_per_thread);
        counts.add_times(&c, 1);
    }
    let ops = counts.ops();
    let secs = m.duration.as_secs_f64();
    let ops_per_sec = if secs > 0.0 { ops as f64 / secs } else { 0.0 };

    let mut recorder = Recorder::new();
    for wk in workers {
        recorder.merge(&wk.recorder);
    }
    let scale = Scale {
        ns_per_unit: clock.ns_per_tick(),
        overhead_ns: clock.overhead_ns(),
        resolution_ns: clock.resolution_ns(),
    };
    let mut lat = BTreeMap::new();
    for kind in [
        OpKind::Alloc,
        OpKind::FreeLocal,
        OpKind::FreeRemote,
        OpKind::Realloc,
    ] {
        let h = recorder.histogram(kind);
        if !h.is_empty() {
            lat.insert(kind.name().to_string(), latency::summarise(h, scale));
        }
    }
    let gw = recorder.histogram(OpKind::GilWait);
    if !gw.is_empty() {
        lat.insert(
            OpKind::GilWait.name().to_string(),
            latency::summarise(gw, Scale::NS),
        );
    }
    let lat_secs = m.latency_duration.as_secs_f64();
    let perturbation = (m.latency_ops > 0 && lat_secs > 0.0 && ops_per_sec > 0.0).then(|| {
        let lat_rate = (m.latency_ops * w.threads as u64) as f64 / lat_secs;
        ops_per_sec / lat_rate - 1.0
    });

    let frag = fragmentation(w, tapes, &m);
    let gil = m.gil.map(|(a, b)| GilCounters {
        acquisitions: b.acquisitions.saturating_sub(a.acquisitions),
        contended: b.contended.saturating_sub(a.contended),
        switches: b.switches.saturating_sub(a.switches),
        switch_interval_us: w.switch_interval_us,
    });
    RunMetrics {
        ops,
        ops_per_thread: m.ops_per_thread,
        duration_s: secs,
        ops_per_sec,
        cpu_user_s: m.cpu_user_s,
        cpu_sys_s: m.cpu_sys_s,
        worker_cpu_s: workers.iter().map(|wk| wk.measured_cpu_ns).sum::<u64>() as f64 * 1e-9,
        probe_ops_per_sec: m.probe_rate_per_thread * w.threads as f64,
        warmup_ops: tapes.first().map_or(0, |t| t.prefix.len() as u64) + m.probe_ops,
        cycle_ops: tapes.first().map_or(0, |t| t.cycle.len() as u64),
        counts: op_counts(&counts),
        latency: lat,
        sampling: Sampling {
            one_in: if m.latency_ops > 0 {
                w.latency_sample_one_in
            } else {
                0
            },
            ops_per_thread: m.latency_ops,
            perturbation,
        },
        memory: Memory {
            rss_timeline: m.timeline,
            rss_baseline_bytes: m.rss_baseline,
            peak_rss_bytes: m.peak_rss,
            rss_after_drain_bytes: m.rss_after_drain,
            requested_live_bytes: m.snapshot.live_bytes,
            rss_at_end_bytes: m.snapshot.rss,
            fragmentation: frag,
            accounting_at_peak: m.snapshot.stats.as_ref().map(Accounting::from),
            accounting_at_end: m.accounting_at_end.as_ref().map(Accounting::from),
            own_counters: m.snapshot.own,
        },
        verification: Verification {
            enabled: m.verify_ops > 0,
            ops_per_thread: m.verify_ops,
            blocks_checked: workers.iter().map(|wk| wk.checked).sum(),
        },
        gil,
        load: Load {
            loadavg_start: m.loadavg_start,
            loadavg_end: m.loadavg_end,
            steal_fraction: m.steal_fraction,
            others_busy_fraction: m.others_busy_fraction,
            pinned,
        },
        drained_blocks: m.drained,
        clock: clock.info(),
        subject_params: subject.params(),
        unit: None,
        checksum: None,
        measured_span_s: None,
        program: None,
    }
}
